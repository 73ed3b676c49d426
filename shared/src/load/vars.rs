//! `--var KEY[:TYPE]=VALUE` and `--var-file FILE`, as `chaos run` reads them.
//!
//! `--var` sets configuration values (`:int`, `:float`, `:bool`, `:json`, `:bytes`, `:str`
//! convert them). A JSON or YAML var file holds `configuration` and `secrets` mappings (other
//! keys are ignored with a warning); a `.env` file (anything else) sets environment variables,
//! `KEY=VALUE` with the value taken as written (quotes included, as in the reference; an
//! `export ` prefix is allowed). They are kept as an overlay instead of mutating the process
//! environment, so several runs in one process never see each other's.

use super::document::{self, Format};
use super::problem::{Problem, Problems};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Values supplied from outside the experiment.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Overrides for `configuration` entries (a value or a whole `{type: env}` definition).
    pub configuration: Map<String, Value>,
    /// Overrides for whole secret scopes.
    pub secrets: Map<String, Value>,
    /// Environment variables from `.env` files, seen before the process environment.
    pub env: BTreeMap<String, String>,
}

impl Vars {
    /// The environment as the experiment sees it: `.env` overlay first, then the process.
    pub fn env_get(&self, key: &str) -> Option<String> {
        self.env
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
    }

    /// Apply one `--var` argument.
    pub fn add_var(&mut self, arg: &str) -> Result<(), Problem> {
        let (key, value) = parse_var(arg)?;
        self.configuration.insert(key, value);
        Ok(())
    }

    /// Apply one `--var-file`; later files override earlier ones.
    pub fn add_file(&mut self, path: &Path) -> Result<(), Problems> {
        let located = |mut p: Problem| {
            p.file = Some(path.to_path_buf());
            p
        };
        let text = document::read_text(path, "var file").map_err(|p| Problems(vec![p]))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let format = match ext {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        };
        let Some(format) = format else {
            return self
                .add_dotenv(&text)
                .map_err(|p| Problems(p.into_iter().map(located).collect()));
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let mut doc = document::parse(&text, format).map_err(|p| Problems(vec![located(p)]))?;
        doc.ensure_spans();
        let Value::Object(root) = std::mem::take(&mut doc.value) else {
            return Err(Problems(vec![located(
                Problem::new("", "a var file must be a mapping")
                    .expected("`configuration` and/or `secrets` keys"),
            )]));
        };
        let mut problems = Vec::new();
        for (key, value) in root {
            let target = match key.as_str() {
                "configuration" => &mut self.configuration,
                "secrets" => &mut self.secrets,
                other => {
                    // the reference ignores other keys; say so rather than stay silent
                    let at = doc
                        .span(other)
                        .map(|(l, c)| format!(":{l}:{c}"))
                        .unwrap_or_default();
                    tracing::warn!(
                        "{}{at}: ignoring `{other}` (a var file holds `configuration` and `secrets`)",
                        path.display()
                    );
                    continue;
                }
            };
            match value {
                Value::Object(entries) => target.extend(entries),
                _ => problems.push(located(Problem::new(key.as_str(), "must be a mapping"))),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }

    fn add_dotenv(&mut self, text: &str) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            match line.split_once('=') {
                // as the reference: the value is taken as written, quotes included
                Some((k, v)) if !k.trim().is_empty() => {
                    self.env.insert(k.trim().to_string(), v.to_string());
                }
                _ => problems.push(
                    Problem::new("", "not a KEY=VALUE line")
                        .expected("KEY=VALUE")
                        .at(n + 1, 1),
                ),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// `KEY[:TYPE]=VALUE` → (key, typed value).
pub fn parse_var(arg: &str) -> Result<(String, Value), Problem> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(Problem::new("--var", format!("`{arg}` has no `=`"))
            .expected("KEY=VALUE or KEY:TYPE=VALUE"));
    };
    let (key, ty) = match key.rsplit_once(':') {
        Some((k, t)) => (k, Some(t)),
        None => (key, None),
    };
    if key.is_empty() {
        return Err(
            Problem::new("--var", format!("`{arg}` has an empty key")).expected("KEY=VALUE")
        );
    }
    let value = convert_to_type(ty, raw).map_err(|e| Problem::new(format!("--var {key}"), e))?;
    Ok((key.to_string(), value))
}

/// The reference's `convert_to_type`, used by `--var` and `env_var_type`.
pub fn convert_to_type(ty: Option<&str>, raw: &str) -> Result<Value, String> {
    match ty {
        None | Some("str" | "string") => Ok(Value::String(raw.to_string())),
        Some("int" | "integer") => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Some("float" | "number") => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{raw}` is not a number")),
        // JSON has no bytes; the text is the closest faithful value
        Some("bytes") => Ok(Value::String(raw.to_string())),
        Some("bool") => Ok(Value::Bool(!matches!(
            raw.to_ascii_lowercase().as_str(),
            "false" | "0" | "no"
        ))),
        Some("json") if raw.is_empty() => Ok(Value::String(String::new())),
        Some("json") => serde_json::from_str(raw).map_err(|e| format!("`{raw}` is not JSON: {e}")),
        Some(other) => Err(format!(
            "unknown type `{other}` (expected str, int, float, bool, bytes or json)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    #[test]
    fn var_types_convert() {
        assert_eq!(parse_var("a=1").unwrap(), ("a".into(), json!("1")));
        assert_eq!(parse_var("a:int=7").unwrap(), ("a".into(), json!(7)));
        assert_eq!(parse_var("a:float=2.5").unwrap(), ("a".into(), json!(2.5)));
        assert_eq!(parse_var("a:bool=no").unwrap(), ("a".into(), json!(false)));
        assert_eq!(parse_var("a:bool=yes").unwrap(), ("a".into(), json!(true)));
        assert_eq!(
            parse_var("a:json={\"x\":[1]}").unwrap(),
            ("a".into(), json!({"x": [1]}))
        );
        assert_eq!(
            parse_var("url=http://h/?q=1").unwrap(),
            ("url".into(), json!("http://h/?q=1"))
        );
        assert!(
            parse_var("novalue")
                .unwrap_err()
                .to_string()
                .contains("KEY=VALUE")
        );
        assert!(
            parse_var("a:int=x")
                .unwrap_err()
                .to_string()
                .contains("not an integer")
        );
        assert!(
            parse_var("a:uuid=x")
                .unwrap_err()
                .to_string()
                .contains("unknown type")
        );
    }

    #[test]
    fn var_files_json_yaml_and_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("v.json");
        std::fs::write(
            &j,
            r#"{"configuration": {"a": 1}, "secrets": {"s": {"k": "v"}}}"#,
        )
        .unwrap();
        let y = dir.path().join("v.yaml");
        std::fs::write(&y, "configuration:\n  a: 2\n  b: x\n").unwrap();
        let e = dir.path().join("v.env");
        let mut f = std::fs::File::create(&e).unwrap();
        writeln!(f, "# comment\nEB_TEST_ONE=1\nexport EB_TEST_TWO=\"two\"\n").unwrap();
        let mut vars = Vars::default();
        vars.add_file(&j).unwrap();
        vars.add_file(&y).unwrap();
        vars.add_file(&e).unwrap();
        assert_eq!(
            vars.configuration,
            json!({"a": 2, "b": "x"}).as_object().unwrap().clone()
        );
        assert_eq!(vars.secrets["s"], json!({"k": "v"}));
        assert_eq!(vars.env_get("EB_TEST_ONE").as_deref(), Some("1"));
        assert_eq!(
            vars.env_get("EB_TEST_TWO").as_deref(),
            Some("\"two\""),
            "quotes are kept, as in the reference"
        );
    }

    #[test]
    fn bad_var_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = dir.path().join("bad.env");
        std::fs::write(&e, "OK=1\nnot a pair\n").unwrap();
        let err = Vars::default().add_file(&e).unwrap_err().to_string();
        assert!(err.contains("bad.env:2:1"), "{err}");
        let y = dir.path().join("bad.yaml");
        std::fs::write(&y, "configuration: [1]\n").unwrap();
        let err = Vars::default().add_file(&y).unwrap_err().to_string();
        assert!(
            err.contains("bad.yaml: configuration: must be a mapping"),
            "{err}"
        );
    }

    #[test]
    fn unknown_var_file_keys_are_ignored_like_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("extra.yaml");
        std::fs::write(&y, "description: x\nconfiguration:\n  a: 1\n").unwrap();
        let mut vars = Vars::default();
        vars.add_file(&y).unwrap();
        assert_eq!(vars.configuration["a"], 1);
    }
}
