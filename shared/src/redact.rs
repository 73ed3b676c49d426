//! Secret masking: every secret value becomes `***` wherever it would be written.
//!
//! The reference copies secrets into journals (an action that echoes a token leaves it in
//! `stdout`). Ours never does: what the engine journals or logs passes through a `Redactor`
//! built from the run's resolved secrets. Tolerances still see the real values; only what
//! leaves the engine is masked. Masking applies to values written by users and activities
//! (the experiment, outputs, errors), never to the journal's own keys, statuses or timestamps,
//! so a short secret cannot corrupt the journal's structure. Each secret is also masked in its
//! URL-encoded forms, which is how it appears inside request URLs.

use serde_json::Value;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .flat_map(|s| {
                let form: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let path = form.replace('+', "%20");
                [s, form, path]
            })
            .collect();
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

    /// A journal entry with its activity, output and error masked.
    pub fn run(&self, mut run: crate::model::Run) -> crate::model::Run {
        if self.secrets.is_empty() {
            return run;
        }
        self.value(&mut run.activity);
        self.value(&mut run.output);
        if let Some(lines) = &mut run.exception {
            for line in lines.iter_mut() {
                *line = self.text(line);
            }
        }
        run
    }

    /// Mask in place, in every string of the value (map keys are names, not secrets).
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
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
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
            json!({"stdout": "user *** and ***\n", "list": ["***"], "tok": 1, "n": 5})
        );
        assert_eq!(r.text("Bearer tok-123"), "Bearer ***");
    }

    #[test]
    fn url_encoded_forms_are_masked() {
        let r = Redactor::new(vec!["s3cr3t tok/en".into()]);
        assert_eq!(
            r.text("GET /health?token=s3cr3t+tok%2Fen"),
            "GET /health?token=***"
        );
        assert_eq!(
            r.text("GET /health?token=s3cr3t%20tok%2Fen"),
            "GET /health?token=***"
        );
    }

    #[test]
    fn runs_are_masked_but_keep_their_shape() {
        let r = Redactor::new(vec!["node".into(), "hunter2".into()]);
        let run = crate::model::Run {
            activity: json!({"name": "echo", "arguments": ["hunter2"]}),
            output: json!({"status": 0, "stdout": "hunter2 on node\n"}),
            start: "2026-01-01T00:00:00.000000+00:00".into(),
            status: crate::model::RunStatus::Succeeded,
            end: String::new(),
            duration: 0.0,
            exception: Some(vec!["failed for hunter2\n".into()]),
            tolerance_met: None,
        };
        let run = r.run(run);
        assert_eq!(run.activity["arguments"][0], "***");
        assert_eq!(run.output, json!({"status": 0, "stdout": "*** on ***\n"}));
        assert_eq!(run.exception.unwrap()[0], "failed for ***\n");
    }

    #[test]
    fn numeric_secrets_are_masked_too() {
        let r = Redactor::new(vec!["4242".into()]);
        let mut v = json!({"pin": 4242, "other": 42});
        r.value(&mut v);
        assert_eq!(v, json!({"pin": "***", "other": 42}));
    }
}
