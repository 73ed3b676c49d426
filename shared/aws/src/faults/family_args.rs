//! Reading the arguments the AWS-resource fault families (`ec2::iam_role`, `az`, `ebs`, `fis`)
//! share: text and whole seconds, each problem naming the argument (`text` for `k8s` too).

use serde_json::{Map, Value};

/// A string argument; absent, null and empty are `None`.
pub fn text(args: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(v) => Err(format!("{name}: expected a string, got {v}")),
    }
}

/// A string argument that must be there.
pub fn required(args: &Map<String, Value>, name: &str) -> Result<String, String> {
    text(args, name)?.ok_or_else(|| format!("{name} is missing: expected a string"))
}

/// Whole seconds from 0 to a day: a number or a string of digits; `default` when absent.
pub fn seconds(args: &Map<String, Value>, name: &str, default: u64) -> Result<u64, String> {
    let bad =
        |v: &Value| format!("{name}: expected a whole number of seconds up to 86400, got {v}");
    let n = match args.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    n.filter(|n| *n <= 86_400)
        .ok_or_else(|| bad(args.get(name).unwrap_or(&Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn arguments_are_read_or_named_in_the_error() {
        let a = args(
            json!({"s": " x ", "e": "", "n": 3, "d": "12", "neg": -1, "big": 86401, "f": 1.5}),
        );
        assert_eq!(text(&a, "s").unwrap().as_deref(), Some("x"));
        assert_eq!(text(&a, "e").unwrap(), None);
        assert!(
            text(&a, "n")
                .unwrap_err()
                .starts_with("n: expected a string")
        );
        assert!(
            required(&a, "missing")
                .unwrap_err()
                .contains("missing is missing")
        );
        assert_eq!(seconds(&a, "n", 10).unwrap(), 3);
        assert_eq!(seconds(&a, "d", 10).unwrap(), 12);
        assert_eq!(seconds(&a, "absent", 10).unwrap(), 10);
        for bad in ["neg", "big", "f", "s"] {
            assert!(seconds(&a, bad, 1).unwrap_err().starts_with(bad), "{bad}");
        }
    }
}
