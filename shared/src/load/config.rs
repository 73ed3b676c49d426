//! Configuration and secrets → the values `${name}` resolves to.
//!
//! Static resolution only (plain values, `{type: env}` with `default` and `env_var_type`,
//! overrides from `--var`/`--var-file`); `{type: probe}` entries are left in place for the
//! engine, which runs them (dynamic configuration). Used by validation (a missing environment
//! variable makes an experiment invalid, as in the reference) and by the engine.

use super::problem::Problem;
use super::vars::{Vars, convert_to_type};
use serde_json::{Map, Value};

// the fault library masks what this returns

/// Resolve `configuration`; `--var` overrides win, and overrides for undeclared keys are added
/// (the reference silently drops those; a user passing `--var x=1` expects `${x}` to work).
pub fn resolve_configuration(
    config: &Map<String, Value>,
    vars: &Vars,
) -> Result<Map<String, Value>, Vec<Problem>> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    for (key, declared) in config {
        let value = vars.configuration.get(key).unwrap_or(declared);
        match env_definition(value) {
            Some(def) => match resolve_env(def, vars) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(p) => problems.push(Problem {
                    field: format!("configuration.{key}"),
                    ..p
                }),
            },
            None => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in &vars.configuration {
        if !out.contains_key(key) && !config.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Resolve `secrets` (scopes of secrets, inline or `{type: env}`); a `--var-file` scope replaces
/// the declared one.
pub fn resolve_secrets(
    secrets: &Map<String, Value>,
    vars: &Vars,
) -> Result<Map<String, Value>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (scope, declared) in secrets {
        if let Some(v) = vars.secrets.get(scope).filter(|v| !v.is_null()) {
            out.insert(scope.clone(), v.clone());
            continue;
        }
        out.insert(
            scope.clone(),
            resolve_secret(declared, &format!("secrets.{scope}"), vars, &mut problems),
        );
    }
    for (scope, value) in &vars.secrets {
        out.entry(scope.clone()).or_insert_with(|| value.clone());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn resolve_secret(value: &Value, field: &str, vars: &Vars, problems: &mut Vec<Problem>) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    match map.get("type").and_then(Value::as_str) {
        Some("env") => {
            let key = map.get("key").and_then(Value::as_str).unwrap_or_default();
            match vars.env_get(key) {
                Some(v) => Value::String(v),
                None => {
                    problems.push(
                        Problem::new(
                            field,
                            format!(
                                "secret refers to environment variable `{key}`, which is not set"
                            ),
                        )
                        .expected(format!("`{key}` in the environment or a .env --var-file")),
                    );
                    Value::Null
                }
            }
        }
        Some("vault") => {
            problems.push(
                Problem::new(field, "vault secrets are not supported by this broker yet")
                    .expected("an inline value or {type: env, key: NAME}"),
            );
            Value::Null
        }
        _ => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        resolve_secret(v, &format!("{field}.{k}"), vars, problems),
                    )
                })
                .collect(),
        ),
    }
}

fn env_definition(value: &Value) -> Option<&Map<String, Value>> {
    value
        .as_object()
        .filter(|m| m.get("type").and_then(Value::as_str) == Some("env"))
}

fn resolve_env(def: &Map<String, Value>, vars: &Vars) -> Result<Value, Problem> {
    let key = def.get("key").and_then(Value::as_str).unwrap_or_default();
    let ty = def.get("env_var_type").and_then(Value::as_str);
    match vars.env_get(key) {
        Some(raw) => convert_to_type(ty, &raw)
            .map_err(|e| Problem::new("", format!("environment variable `{key}`: {e}"))),
        None => match def.get("default") {
            // the reference converts the default too when it is a string
            Some(Value::String(s)) => {
                convert_to_type(ty, s).map_err(|e| Problem::new("", format!("default: {e}")))
            }
            Some(other) => Ok(other.clone()),
            None => Err(Problem::new(
                "",
                format!("refers to environment variable `{key}`, which is not set"),
            )
            .expected(format!("`{key}` in the environment, a `default`, or --var"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn env_plain_default_and_types() {
        let mut vars = Vars::default();
        vars.env.insert("EB_CFG_NUM".into(), "42".into());
        vars.env.insert("EB_CFG_S".into(), "hello".into());
        let config = obj(json!({
            "plain": "p",
            "s": {"type": "env", "key": "EB_CFG_S"},
            "n": {"type": "env", "key": "EB_CFG_NUM", "env_var_type": "int"},
            "d": {"type": "env", "key": "EB_CFG_UNSET_XYZ", "default": "dflt"},
            "probe": {"type": "probe", "name": "p", "provider": {"type": "process", "path": "true"}}
        }));
        let out = resolve_configuration(&config, &vars).unwrap();
        assert_eq!(out["plain"], json!("p"));
        assert_eq!(out["s"], json!("hello"));
        assert_eq!(out["n"], json!(42));
        assert_eq!(out["d"], json!("dflt"));
        assert_eq!(
            out["probe"]["type"],
            json!("probe"),
            "dynamic entries are left for the engine"
        );
    }

    #[test]
    fn missing_env_is_a_problem_unless_overridden() {
        let config = obj(json!({"needed": {"type": "env", "key": "EB_CFG_UNSET_XYZ"}}));
        let err = resolve_configuration(&config, &Vars::default()).unwrap_err();
        assert_eq!(err[0].field, "configuration.needed");
        assert!(err[0].message.contains("EB_CFG_UNSET_XYZ"));
        let mut vars = Vars::default();
        vars.add_var("needed=given").unwrap();
        vars.add_var("extra:int=3").unwrap();
        let out = resolve_configuration(&config, &vars).unwrap();
        assert_eq!(out["needed"], json!("given"));
        assert_eq!(out["extra"], json!(3));
    }

    #[test]
    fn secrets_inline_env_and_override() {
        let mut vars = Vars::default();
        vars.env.insert("EB_SECRET_TOK".into(), "tok".into());
        let secrets = obj(
            json!({"app": {"token": {"type": "env", "key": "EB_SECRET_TOK"}, "user": "u"}, "db": {"pw": "x"}}),
        );
        vars.secrets.insert("db".into(), json!({"pw": "from-file"}));
        let out = resolve_secrets(&secrets, &vars).unwrap();
        assert_eq!(out["app"], json!({"token": "tok", "user": "u"}));
        assert_eq!(out["db"], json!({"pw": "from-file"}));
        assert_eq!(
            crate::scope::secret_values(&out),
            vec!["from-file".to_string(), "tok".into(), "u".into()]
        );
    }

    #[test]
    fn missing_secret_env_names_the_field() {
        let secrets = obj(json!({"app": {"token": {"type": "env", "key": "EB_SECRET_UNSET_XYZ"}}}));
        let err = resolve_secrets(&secrets, &Vars::default()).unwrap_err();
        assert_eq!(err[0].field, "secrets.app.token");
    }
}
