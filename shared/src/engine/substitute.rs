//! `${name}` substitution with Chaos Toolkit's rules.
//!
//! The reference uses Python's `string.Template.safe_substitute` over a chain of the
//! configuration followed by every secret scope, with one twist: a string that is exactly one
//! `${name}` is replaced by the referenced value itself, keeping its type. The rules, all kept:
//!
//! - `${name}` alone → the value, typed (an int stays an int, a map stays a map);
//! - `${name}` or `$name` inside a longer string → Python's `str()` of the value;
//! - unknown names are left as written; `$$` becomes `$`; a lone `$` stays;
//! - names are ASCII `[_a-zA-Z][_a-zA-Z0-9]*`;
//! - substitution recurses into lists and maps (values only, never keys).

use crate::pyvalue::py_str;
use serde_json::{Map, Value};

/// The values `${name}` can refer to: configuration first, then each secret scope in order.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub configuration: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

impl Scope {
    pub fn new(configuration: Map<String, Value>, secrets: Map<String, Value>) -> Self {
        Self {
            configuration,
            secrets,
        }
    }

    /// True when there is nothing to substitute from; the reference then leaves process and
    /// python arguments untouched (so `$$` stays `$$` there).
    pub fn is_empty(&self) -> bool {
        self.configuration.is_empty() && self.secrets.is_empty()
    }

    /// Python's `ChainMap(configuration, *secrets.values())[key]`.
    pub fn lookup(&self, key: &str) -> Option<&Value> {
        if let Some(v) = self.configuration.get(key) {
            return Some(v);
        }
        self.secrets
            .values()
            .filter_map(Value::as_object)
            .find_map(|scope| scope.get(key))
    }

    /// Substitute recursively in a value.
    pub fn substitute(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => self.substitute_str(s),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Substitute in one string; returns the typed value when the string is exactly `${name}`.
    pub fn substitute_str(&self, text: &str) -> Value {
        if let Some(name) = whole_braced_reference(text)
            && let Some(v) = self.lookup(name)
        {
            return v.clone();
        }
        Value::String(self.interpolate(text))
    }

    /// `safe_substitute`: always a string.
    pub fn interpolate(&self, text: &str) -> String {
        if !text.contains('$') {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            out.push_str(&text[copied..i]);
            let rest = &text[i + 1..];
            let (replacement, consumed) = if rest.starts_with('$') {
                ("$".to_string(), 2)
            } else if let Some(name) = rest.strip_prefix('{').and_then(|r| {
                let len = identifier_len(r);
                (len > 0 && r[len..].starts_with('}')).then(|| &r[..len])
            }) {
                let token_len = name.len() + 3;
                match self.lookup(name) {
                    Some(v) => (py_str(v), token_len),
                    None => (text[i..i + token_len].to_string(), token_len),
                }
            } else {
                let len = identifier_len(rest);
                if len > 0 {
                    let name = &rest[..len];
                    match self.lookup(name) {
                        Some(v) => (py_str(v), len + 1),
                        None => (text[i..i + len + 1].to_string(), len + 1),
                    }
                } else {
                    ("$".to_string(), 1)
                }
            };
            out.push_str(&replacement);
            i += consumed;
            copied = i;
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// Length of the ASCII identifier at the start of `s` (0 when there is none).
fn identifier_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0] == b'_' || b[0].is_ascii_alphabetic()) {
        return 0;
    }
    b.iter()
        .take_while(|c| **c == b'_' || c.is_ascii_alphanumeric())
        .count()
}

/// `Some(name)` when `text` is exactly `${name}`.
pub fn whole_braced_reference(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    (identifier_len(inner) == inner.len() && !inner.is_empty()).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let config = json!({"port": 8080, "host": "db", "ratio": 2.5, "on": true, "map": {"a": 1}, "shadow": "config"});
        let secrets =
            json!({"db": {"password": "s3cr3t", "shadow": "secret"}, "other": {"token": "t"}});
        Scope::new(
            config.as_object().unwrap().clone(),
            secrets.as_object().unwrap().clone(),
        )
    }

    #[test]
    fn whole_reference_keeps_type() {
        let s = scope();
        assert_eq!(s.substitute_str("${port}"), json!(8080));
        assert_eq!(s.substitute_str("${on}"), json!(true));
        assert_eq!(s.substitute_str("${map}"), json!({"a": 1}));
        assert_eq!(s.substitute_str("${password}"), json!("s3cr3t"));
    }

    #[test]
    fn embedded_reference_is_python_str() {
        let s = scope();
        assert_eq!(
            s.substitute_str("http://${host}:${port}"),
            json!("http://db:8080")
        );
        assert_eq!(s.substitute_str("r=${ratio} ${on}"), json!("r=2.5 True"));
        assert_eq!(s.substitute_str("m=${map}"), json!("m={'a': 1}"));
        assert_eq!(s.substitute_str("$host:$port"), json!("db:8080"));
        assert_eq!(
            s.substitute_str("$port"),
            json!("8080"),
            "only the braced form keeps the type"
        );
    }

    #[test]
    fn unknown_and_escapes_follow_safe_substitute() {
        let s = scope();
        assert_eq!(s.substitute_str("${nope}"), json!("${nope}"));
        assert_eq!(
            s.substitute_str("a ${nope} $nope"),
            json!("a ${nope} $nope")
        );
        assert_eq!(s.substitute_str("cost $$5"), json!("cost $5"));
        assert_eq!(
            s.substitute_str("lone $ and ${bad-name}"),
            json!("lone $ and ${bad-name}")
        );
        assert_eq!(s.substitute_str("trailing $"), json!("trailing $"));
    }

    #[test]
    fn configuration_shadows_secrets() {
        assert_eq!(scope().substitute_str("${shadow}"), json!("config"));
    }

    #[test]
    fn recursion_into_containers() {
        let s = scope();
        let v = json!({"url": "${host}", "list": ["${port}", {"k": "x${port}"}], "n": 1, "${host}": "key untouched"});
        assert_eq!(
            s.substitute(&v),
            json!({"url": "db", "list": [8080, {"k": "x8080"}], "n": 1, "${host}": "key untouched"})
        );
    }

    #[test]
    fn empty_scope_reports_empty() {
        assert!(Scope::default().is_empty());
        assert!(!scope().is_empty());
    }
}
