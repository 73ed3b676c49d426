//! Secret masking: every secret value becomes `***` wherever it would be written.
//!
//! The reference copies secrets into journals (an action that echoes a token leaves it in
//! `stdout`). Ours never does: the journal, log lines and events pass through a `Redactor`
//! built from the run's resolved secrets. Tolerances still see the real values; only what
//! leaves the engine is masked.

use serde_json::Value;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Mask in place, in every string and map key of the value.
    pub fn value(&self, value: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            Value::String(s) if self.secrets.iter().any(|sec| s.contains(sec.as_str())) => {
                *s = self.text(s)
            }
            Value::Number(n) => {
                let text = n.to_string();
                if self.secrets.contains(&text) {
                    *value = Value::String(MASK.to_string());
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => {
                let masked: serde_json::Map<String, Value> = std::mem::take(map)
                    .into_iter()
                    .map(|(k, mut v)| {
                        self.value(&mut v);
                        (self.text(&k), v)
                    })
                    .collect();
                *map = masked;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_everywhere_longest_first() {
        let r = Redactor::new(vec!["tok".into(), "tok-123".into(), "".into()]);
        let mut v =
            json!({"stdout": "user tok-123 and tok\n", "list": ["tok-123"], "tok": 1, "n": 5});
        r.value(&mut v);
        assert_eq!(
            v,
            json!({"stdout": "user *** and ***\n", "list": ["***"], "***": 1, "n": 5})
        );
        assert_eq!(r.text("Bearer tok-123"), "Bearer ***");
    }

    #[test]
    fn numeric_secrets_are_masked_too() {
        let r = Redactor::new(vec!["4242".into()]);
        let mut v = json!({"pin": 4242, "other": 42});
        r.value(&mut v);
        assert_eq!(v, json!({"pin": "***", "other": 42}));
    }
}
