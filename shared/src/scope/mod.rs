//! `${name}` substitution with Chaos Toolkit's rules, and the `Scope` of values it draws on.
//!
//! Both the engine (pauses, tolerances, titles, the broker extension) and the providers (their
//! arguments, URLs, headers, the `/bin/sh` line of a `process`) substitute, so this module sits
//! below both and names neither.
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
//!
//! One addition: configuration keys whose values came from probes (dynamic configuration) are
//! marked, and `shell_arguments` quotes their values for the `/bin/sh` command line of a
//! string-form `process` activity (`shellquote`); every other value is substituted as
//! the reference does.

pub mod shellquote;

use crate::pyvalue::py_str;
use serde_json::{Map, Value};
use shellquote::ShellLexer;
use std::collections::BTreeSet;

/// The values `${name}` can refer to: configuration first, then each secret scope in order.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub configuration: Map<String, Value>,
    pub secrets: Map<String, Value>,
    /// Configuration keys whose values a probe returned (data from the system under test).
    pub dynamic: BTreeSet<String>,
}

/// Where substituted text goes: the plain string, or a shell line quoting probe values.
trait Sink {
    fn text(&mut self, text: &str);
    fn value(&mut self, name: &str, value: &Value) -> Result<(), String>;
}

impl Sink for String {
    fn text(&mut self, text: &str) {
        self.push_str(text);
    }
    fn value(&mut self, _: &str, value: &Value) -> Result<(), String> {
        self.push_str(&py_str(value));
        Ok(())
    }
}

/// A `/bin/sh` line: probe values quoted for the spot they land in, the rest as written.
struct ShellLine<'a> {
    out: String,
    lexer: ShellLexer,
    dynamic: &'a BTreeSet<String>,
}

impl Sink for ShellLine<'_> {
    fn text(&mut self, text: &str) {
        self.out.push_str(text);
        self.lexer.feed(text);
    }
    fn value(&mut self, name: &str, value: &Value) -> Result<(), String> {
        let text = py_str(value);
        if !self.dynamic.contains(name) {
            self.text(&text);
            return Ok(());
        }
        let quoted = self.lexer.quote(&text).map_err(|why| {
            format!(
                "`${{{name}}}` comes from a probe and cannot be quoted safely for the shell where it appears: {why}"
            )
        })?;
        self.out.push_str(&quoted);
        Ok(())
    }
}

impl Scope {
    pub fn new(configuration: Map<String, Value>, secrets: Map<String, Value>) -> Self {
        Self {
            configuration,
            secrets,
            dynamic: BTreeSet::new(),
        }
    }

    /// Mark `keys` as values returned by probes.
    pub fn with_dynamic(mut self, keys: BTreeSet<String>) -> Self {
        self.dynamic = keys;
        self
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
        let mut out = String::with_capacity(text.len());
        let rendered = self.render(text, &mut out);
        debug_assert!(rendered.is_ok(), "a plain string sink never fails");
        out
    }

    /// The string `arguments` of a `process` activity, substituted for the `/bin/sh` line that
    /// starts with `prefix` (the executable and a space). Values from probes are shell-quoted
    /// for their spot; everything else is substituted as `substitute_str` does (a whole
    /// `${name}` keeps its type). `Err` when a probe value sits where it cannot be quoted.
    pub fn shell_arguments(&self, prefix: &str, text: &str) -> Result<Value, String> {
        let mut line = ShellLine {
            out: String::new(),
            lexer: ShellLexer::default(),
            dynamic: &self.dynamic,
        };
        line.lexer.feed(prefix);
        if let Some(name) = whole_braced_reference(text)
            && let Some(v) = self.lookup(name)
        {
            if !(v.is_string() && self.dynamic.contains(name)) {
                return Ok(v.clone());
            }
            line.value(name, v)?;
            return Ok(Value::String(line.out));
        }
        if !text.contains('$') {
            return Ok(Value::String(text.to_string()));
        }
        self.render(text, &mut line)?;
        Ok(Value::String(line.out))
    }

    /// `safe_substitute` into `out`.
    fn render(&self, text: &str, out: &mut impl Sink) -> Result<(), String> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            out.text(&text[copied..i]);
            let rest = &text[i + 1..];
            let (name, consumed) = if rest.starts_with('$') {
                (None, 2)
            } else if let Some(name) = rest.strip_prefix('{').and_then(|r| {
                let len = identifier_len(r);
                (len > 0 && r[len..].starts_with('}')).then(|| &r[..len])
            }) {
                (Some(name), name.len() + 3)
            } else {
                let len = identifier_len(rest);
                if len > 0 {
                    (Some(&rest[..len]), len + 1)
                } else {
                    (None, 1)
                }
            };
            match name.map(|n| (n, self.lookup(n))) {
                Some((name, Some(v))) => out.value(name, v)?,
                Some((_, None)) => out.text(&text[i..i + consumed]),
                None => out.text("$"),
            }
            i += consumed;
            copied = i;
        }
        out.text(&text[copied..]);
        Ok(())
    }
}

/// Every secret string value, to be masked wherever it would be written.
pub fn secret_values(secrets: &Map<String, Value>) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(m) => m.values().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    secrets.values().for_each(|v| collect(v, &mut out));
    // longest first, so a secret containing another is masked whole
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
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

/// The names `text` refers to as `${name}` (`braced`) and as `$name` (not braced), in order;
/// `$$` is an escaped dollar, not a reference.
pub fn references(text: &str) -> Vec<(&str, bool)> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            rest = r;
            continue;
        }
        if let Some(r) = after.strip_prefix('{') {
            let len = identifier_len(r);
            if len > 0 && r[len..].starts_with('}') {
                names.push((&r[..len], true));
                rest = &r[len + 1..];
                continue;
            }
        }
        let len = identifier_len(after);
        if len > 0 {
            names.push((&after[..len], false));
        }
        rest = &after[len..];
    }
    names
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
    fn references_are_found_as_substitution_finds_them() {
        assert_eq!(
            references("a ${x} $y $$z ${bad-name} $ ${_u1}x"),
            vec![("x", true), ("y", false), ("_u1", true)]
        );
        assert!(references("no dollars").is_empty());
    }

    fn with_probe_value(value: &str) -> Scope {
        let config = json!({"probed": value, "operator": "a; b", "n": 3});
        Scope::new(config.as_object().unwrap().clone(), Map::new())
            .with_dynamic(["probed".to_string()].into())
    }

    #[test]
    fn probe_values_are_shell_quoted_and_operator_values_are_not() {
        let s = with_probe_value("x; touch m");
        let shell = |text: &str| s.shell_arguments("/bin/echo ", text).unwrap();
        assert_eq!(shell("${probed}"), json!("'x; touch m'"));
        assert_eq!(shell("-n $probed!"), json!("-n 'x; touch m'!"));
        assert_eq!(shell("'${probed}'"), json!("'x; touch m'"));
        assert_eq!(shell("\"${probed}\""), json!("\"x; touch m\""));
        assert_eq!(
            shell("${operator} ${n} $$ ${nope}"),
            json!("a; b 3 $ ${nope}"),
            "operator values are substituted raw, as the reference does"
        );
        assert_eq!(shell("${n}"), json!(3), "a whole reference keeps its type");
        let s = with_probe_value("it's");
        assert_eq!(
            s.shell_arguments("/bin/echo ", "${probed}").unwrap(),
            json!(r"'it'\''s'")
        );
        let err = s.shell_arguments("/bin/echo ", "`${probed}`").unwrap_err();
        assert!(err.contains("`${probed}` comes from a probe"), "{err}");
    }

    #[test]
    fn plain_substitution_ignores_the_probe_mark() {
        let s = with_probe_value("x; touch m");
        assert_eq!(s.substitute_str("${probed}"), json!("x; touch m"));
        assert_eq!(s.interpolate("a $probed"), "a x; touch m");
    }

    #[test]
    fn empty_scope_reports_empty() {
        assert!(Scope::default().is_empty());
        assert!(!scope().is_empty());
    }
}
