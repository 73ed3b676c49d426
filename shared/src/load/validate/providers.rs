//! An activity's provider: its type, and the fields of a `process` (an executable, found on
//! PATH when asked), an `http` call and a `python` function.

use super::{Validator, join, kind_of};
use crate::model::*;
use serde_json::{Map, Value};

impl Validator<'_> {
    pub(super) fn provider(&mut self, value: Option<&Value>, path: &str) -> Option<Provider> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            self.problem(
                path,
                "missing",
                "a provider mapping with a type: python, process or http",
            );
            return None;
        };
        let Some(map) = value.as_object() else {
            self.problem(
                path,
                format!("is {}", kind_of(value)),
                "a provider mapping with a type: python, process or http",
            );
            return None;
        };
        match map.get("type").and_then(Value::as_str) {
            Some("process") => self.process(map, path).map(Provider::Process),
            Some("http") => self.http(map, path).map(Provider::Http),
            Some("python") => self.python(map, path).map(Provider::Python),
            Some(other) => {
                self.problem(
                    join(path, "type"),
                    format!("unknown provider type '{other}'"),
                    "python, process or http",
                );
                None
            }
            None => {
                self.problem(join(path, "type"), "missing", "python, process or http");
                None
            }
        }
    }

    pub(super) fn process(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Option<ProcessProvider> {
        let exe = self.required_str(map, path, "path", "the path or name of an executable");
        let arguments = match map.get("arguments") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(v @ (Value::String(_) | Value::Array(_) | Value::Object(_))) => v.clone(),
            Some(other) => {
                self.defer(
                    join(path, "arguments"),
                    format!("is {} (`chaos run` stops on it)", kind_of(other)),
                    "a string, a list or a mapping",
                );
                Value::Array(Vec::new())
            }
        };
        let timeout = match map.get("timeout") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.defer(
                    join(path, "timeout"),
                    format!("is {} (`chaos run` stops on it)", kind_of(other)),
                    "a number of seconds",
                );
                None
            }
        };
        let exe = exe?;
        if self.checks.check_executables
            && crate::providers::process::find_executable(&exe).is_none()
        {
            self.problem(
                join(path, "path"),
                format!("`{exe}` cannot be found"),
                "an executable file, absolute or on PATH",
            );
        }
        Some(ProcessProvider {
            path: exe,
            arguments,
            timeout,
        })
    }

    pub(super) fn http(&mut self, map: &Map<String, Value>, path: &str) -> Option<HttpProvider> {
        let url = self.required_str(map, path, "url", "the URL to call");
        let method = match map.get("method") {
            None | Some(Value::Null) => "GET".to_string(),
            Some(Value::String(m)) if !m.is_empty() => m.to_ascii_uppercase(),
            Some(other) => {
                self.defer(
                    join(path, "method"),
                    format!("is {} (`chaos run` stops on it)", kind_of(other)),
                    "an HTTP method such as GET or POST",
                );
                "GET".to_string()
            }
        };
        let headers = match map.get("headers") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(other) => {
                self.problem(
                    join(path, "headers"),
                    format!("is {}", kind_of(other)),
                    "a mapping of header names to values",
                );
                Value::Null
            }
        };
        let timeout = match map.get("timeout") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Number(_)) => v.clone(),
            Some(Value::String(s)) if s.starts_with("${") => Value::String(s.clone()),
            Some(v @ Value::Array(pair))
                if pair.len() == 2 && pair.iter().all(Value::is_number) =>
            {
                v.clone()
            }
            Some(other) => {
                self.defer(
                    join(path, "timeout"),
                    format!("is {other} (`chaos run` stops on it)"),
                    "a number of seconds or [connect, read]",
                );
                Value::Null
            }
        };
        let expected_status = match map.get("expected_status") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (100..600).contains(&s)) => {
                n.as_u64().map(|s| s as u16)
            }
            Some(other) => {
                self.warn(
                    join(path, "expected_status"),
                    format!("is {other} (ignored; the Chaos Toolkit has no expected_status)"),
                    "an HTTP status code (100-599)",
                );
                None
            }
        };
        let verify_tls = match map.get("verify_tls") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    join(path, "verify_tls"),
                    format!("is {}", kind_of(other)),
                    "true or false",
                );
                true
            }
        };
        let arguments = map.get("arguments").cloned().unwrap_or(Value::Null);
        let max_retries = match map.get("max_retries") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|r| r <= 100) => {
                n.as_u64().unwrap_or(0) as u32
            }
            Some(other) => {
                self.problem(
                    join(path, "max_retries"),
                    format!("is {other}"),
                    "a number of retries from 0 to 100",
                );
                0
            }
        };
        Some(HttpProvider {
            url: Value::String(url?),
            method,
            headers,
            arguments,
            timeout,
            expected_status,
            verify_tls,
            max_retries,
        })
    }

    pub(super) fn python(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Option<PythonProvider> {
        let module = self.required_str(map, path, "module", "a dotted Python module path");
        let func = self.required_str(map, path, "func", "the name of a function in the module");
        let arguments = match map.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.problem(
                    join(path, "arguments"),
                    format!("is {}", kind_of(other)),
                    "a mapping of argument names to values",
                );
                Map::new()
            }
        };
        let secrets = match map.get("secrets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            Some(other) => {
                self.warn(
                    join(path, "secrets"),
                    format!("is {} (no secrets are passed)", kind_of(other)),
                    "a list of secret scope names",
                );
                Vec::new()
            }
        };
        Some(PythonProvider {
            module: module?,
            func: func?,
            arguments,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{check, one_provider};
    use serde_json::json;

    #[test]
    fn provider_types() {
        check(vec![
            (
                one_provider(json!("process")),
                vec![("method[0].provider", "is a string")],
            ),
            (
                one_provider(json!({"path": "true"})),
                vec![("method[0].provider.type", "missing")],
            ),
            (
                one_provider(json!({"type": "grpc"})),
                vec![("method[0].provider.type", "unknown provider type 'grpc'")],
            ),
        ]);
    }

    #[test]
    fn process_fields() {
        check(vec![
            (
                one_provider(
                    json!({"type": "process", "path": "true", "arguments": "-x", "timeout": 3}),
                ),
                vec![],
            ),
            (
                one_provider(json!({"type": "process", "path": "true", "arguments": ["-x"]})),
                vec![],
            ),
            (
                one_provider(json!({"type": "process"})),
                vec![("method[0].provider.path", "missing")],
            ),
            (
                one_provider(json!({"type": "process", "path": "true", "arguments": 3})),
                vec![(
                    "method[0].provider.arguments",
                    "at run: is an integer (`chaos run` stops on it)",
                )],
            ),
            (
                one_provider(json!({"type": "process", "path": "true", "timeout": "3"})),
                vec![(
                    "method[0].provider.timeout",
                    "at run: is a string (`chaos run` stops on it)",
                )],
            ),
        ]);
    }

    #[test]
    fn http_fields() {
        let http = |extra: serde_json::Value| {
            let mut p = json!({"type": "http", "url": "http://127.0.0.1/"});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            one_provider(p)
        };
        check(vec![
            (
                http(
                    json!({"method": "post", "headers": {"a": "b"}, "timeout": [1, 2],
                    "expected_status": 204, "verify_tls": false, "max_retries": 100}),
                ),
                vec![],
            ),
            (http(json!({"timeout": "${t}"})), vec![]),
            (
                one_provider(json!({"type": "http"})),
                vec![("method[0].provider.url", "missing")],
            ),
            (
                http(json!({"method": ""})),
                vec![(
                    "method[0].provider.method",
                    "at run: is a string (`chaos run` stops on it)",
                )],
            ),
            (
                http(json!({"headers": ["a"]})),
                vec![("method[0].provider.headers", "is a list")],
            ),
            (
                http(json!({"timeout": [1]})),
                vec![(
                    "method[0].provider.timeout",
                    "at run: is [1] (`chaos run` stops on it)",
                )],
            ),
            (
                http(json!({"timeout": "5"})),
                vec![(
                    "method[0].provider.timeout",
                    "at run: is \"5\" (`chaos run` stops on it)",
                )],
            ),
            (
                http(json!({"expected_status": 600})),
                vec![(
                    "method[0].provider.expected_status",
                    "warning: is 600 (ignored; the Chaos Toolkit has no expected_status)",
                )],
            ),
            (
                http(json!({"verify_tls": "no"})),
                vec![("method[0].provider.verify_tls", "is a string")],
            ),
            (
                http(json!({"max_retries": 101})),
                vec![("method[0].provider.max_retries", "is 101")],
            ),
        ]);
    }

    #[test]
    fn python_fields() {
        check(vec![
            (
                one_provider(json!({"type": "python", "module": "m", "func": "f",
                    "arguments": {"a": 1}, "secrets": ["s"]})),
                vec![],
            ),
            (
                one_provider(json!({"type": "python"})),
                vec![
                    ("method[0].provider.module", "missing"),
                    ("method[0].provider.func", "missing"),
                ],
            ),
            (
                one_provider(
                    json!({"type": "python", "module": "m", "func": "f", "arguments": [1]}),
                ),
                vec![("method[0].provider.arguments", "is a list")],
            ),
            (
                one_provider(json!({"type": "python", "module": "m", "func": "f", "secrets": "s"})),
                vec![(
                    "method[0].provider.secrets",
                    "warning: is a string (no secrets are passed)",
                )],
            ),
        ]);
    }
}
