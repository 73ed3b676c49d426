//! Unknown keys: every mapping of an experiment held against the keys the Chaos Toolkit's
//! specification (and this broker's extension) gives it. The reference ignores a key it does
//! not know, so a misspelled `steady-state-hypotesis` or `tolerence` silently drops a check;
//! here each one is a located warning, with "did you mean" when a known key is near.
//!
//! Pure: one table of key sets per level (`LEVELS`), one walk over the document.

use super::Problem;
use serde_json::{Map, Value};

/// The experiment's top level.
pub const EXPERIMENT: &[&str] = &[
    "version",
    "title",
    "description",
    "tags",
    "contributions",
    "configuration",
    "secrets",
    "extensions",
    "controls",
    "runtime",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
];
pub const HYPOTHESIS: &[&str] = &["title", "probes", "controls"];
pub const ACTIVITY: &[&str] = &[
    "type",
    "name",
    "provider",
    "tolerance",
    "pauses",
    "background",
    "timeout",
    "controls",
    "dry",
];
/// A step naming another activity (`tolerance` in a hypothesis).
pub const REF: &[&str] = &["ref", "tolerance", "controls"];
pub const PAUSES: &[&str] = &["before", "after"];
pub const PYTHON: &[&str] = &["type", "module", "func", "arguments", "secrets"];
pub const PROCESS: &[&str] = &["type", "path", "arguments", "timeout", "secrets"];
pub const HTTP: &[&str] = &[
    "type",
    "url",
    "method",
    "headers",
    "arguments",
    "timeout",
    "expected_status",
    "verify_tls",
    "max_retries",
    "secrets",
];
pub const REGEX: &[&str] = &["type", "pattern", "target"];
pub const JSONPATH: &[&str] = &["type", "path", "expect", "target", "count"];
pub const RANGE: &[&str] = &["type", "range", "target"];
pub const CONFIG_ENV: &[&str] = &["type", "key", "default", "env_var_type"];
pub const SECRET_ENV: &[&str] = &["type", "key", "default", "env_var_type"];
pub const SECRET_VAULT: &[&str] = &["type", "path", "key", "version"];
pub const CONTROL: &[&str] = &["name", "provider", "scope", "automatic"];
pub const CONTROL_PROVIDER: &[&str] = &["type", "module", "arguments", "secrets"];
pub const RUNTIME: &[&str] = &["hypothesis", "rollbacks"];
pub const RUNTIME_HYPOTHESIS: &[&str] = &["strategy", "frequency", "fail_fast"];
pub const RUNTIME_ROLLBACKS: &[&str] = &["strategy"];
/// The `experiment-broker` extension (docs/guard-rails.md); other extensions are free-form.
pub const BROKER_EXTENSION: &[&str] = &[
    "name",
    "max_targets",
    "max_percent",
    "allow_empty",
    "actions",
    "locks",
    "stop_conditions",
    "stop_condition_interval",
    "unreadable_grace_intervals",
    "allow_unguarded_python",
    "seed",
    "strict",
];

/// Every level, by the name the docs use for it (docs/compatibility.md lists them).
pub const LEVELS: &[(&str, &[&str])] = &[
    ("experiment", EXPERIMENT),
    ("steady-state-hypothesis", HYPOTHESIS),
    ("activity", ACTIVITY),
    ("ref", REF),
    ("pauses", PAUSES),
    ("python provider", PYTHON),
    ("process provider", PROCESS),
    ("http provider", HTTP),
    ("regex tolerance", REGEX),
    ("jsonpath tolerance", JSONPATH),
    ("range tolerance", RANGE),
    ("env configuration", CONFIG_ENV),
    ("env secret", SECRET_ENV),
    ("vault secret", SECRET_VAULT),
    ("control", CONTROL),
    ("control provider", CONTROL_PROVIDER),
    ("runtime", RUNTIME),
    ("runtime.hypothesis", RUNTIME_HYPOTHESIS),
    ("runtime.rollbacks", RUNTIME_ROLLBACKS),
    ("experiment-broker extension", BROKER_EXTENSION),
];

/// The known key nearest to `key`, if it is near enough to be a misspelling: at most one edit
/// for short keys, two from 7 characters on (an edit: a character inserted, removed, changed,
/// or two neighbours swapped).
pub fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = if key.chars().count() >= 7 { 2 } else { 1 };
    known
        .iter()
        .map(|k| (edit_distance(&key.to_ascii_lowercase(), k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// Every key of the experiment the specification does not know, as a warning at the key.
pub fn unknown_keys(doc: &Value) -> Vec<Problem> {
    let mut w = Walk(Vec::new());
    if let Value::Object(root) = doc {
        w.experiment(root);
    }
    w.0
}

struct Walk(Vec<Problem>);

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Walk {
    fn check(&mut self, map: &Map<String, Value>, path: &str, level: &str, known: &[&str]) {
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let message = match did_you_mean(key, known) {
                Some(near) => format!(
                    "unknown key `{key}` in the {level}: did you mean `{near}`? (the Chaos \
                     Toolkit ignores it)"
                ),
                None => {
                    format!("unknown key `{key}` in the {level} (the Chaos Toolkit ignores it)")
                }
            };
            let expected = format!("one of {}", known.join(", "));
            self.0
                .push(Problem::new(join(path, key), message).expected(expected));
        }
    }

    fn experiment(&mut self, root: &Map<String, Value>) {
        self.check(root, "", "experiment", EXPERIMENT);
        if let Some(Value::Object(h)) = root.get("steady-state-hypothesis") {
            let path = "steady-state-hypothesis";
            self.check(h, path, "steady-state-hypothesis", HYPOTHESIS);
            self.steps(h.get("probes"), &join(path, "probes"));
            self.controls(h.get("controls"), &join(path, "controls"));
        }
        self.steps(root.get("method"), "method");
        self.steps(root.get("rollbacks"), "rollbacks");
        self.controls(root.get("controls"), "controls");
        if let Some(Value::Object(config)) = root.get("configuration") {
            for (key, entry) in config {
                let path = format!("configuration.{key}");
                let Value::Object(e) = entry else { continue };
                match e.get("type").and_then(Value::as_str) {
                    Some("env") => self.check(e, &path, "env configuration", CONFIG_ENV),
                    Some("probe") => self.activity(e, &path),
                    _ => {}
                }
            }
        }
        if let Some(Value::Object(scopes)) = root.get("secrets") {
            for (scope, secrets) in scopes {
                let Value::Object(secrets) = secrets else {
                    continue;
                };
                for (name, secret) in secrets {
                    let path = format!("secrets.{scope}.{name}");
                    let Value::Object(s) = secret else { continue };
                    match s.get("type").and_then(Value::as_str) {
                        Some("env") => self.check(s, &path, "env secret", SECRET_ENV),
                        Some("vault") => self.check(s, &path, "vault secret", SECRET_VAULT),
                        _ => {}
                    }
                }
            }
        }
        if let Some(Value::Object(runtime)) = root.get("runtime") {
            self.check(runtime, "runtime", "runtime", RUNTIME);
            if let Some(Value::Object(h)) = runtime.get("hypothesis") {
                self.check(
                    h,
                    "runtime.hypothesis",
                    "runtime.hypothesis",
                    RUNTIME_HYPOTHESIS,
                );
            }
            if let Some(Value::Object(r)) = runtime.get("rollbacks") {
                self.check(
                    r,
                    "runtime.rollbacks",
                    "runtime.rollbacks",
                    RUNTIME_ROLLBACKS,
                );
            }
        }
        if let Some(Value::Array(extensions)) = root.get("extensions") {
            for (i, ext) in extensions.iter().enumerate() {
                if let Value::Object(e) = ext
                    && e.get("name").and_then(Value::as_str) == Some("experiment-broker")
                {
                    let path = format!("extensions[{i}]");
                    self.check(e, &path, "experiment-broker extension", BROKER_EXTENSION);
                }
            }
        }
    }

    fn steps(&mut self, steps: Option<&Value>, path: &str) {
        let Some(Value::Array(items)) = steps else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let Value::Object(step) = item else { continue };
            let path = format!("{path}[{i}]");
            if step.contains_key("ref") {
                self.check(step, &path, "ref", REF);
                self.tolerance(step.get("tolerance"), &join(&path, "tolerance"));
            } else {
                self.activity(step, &path);
            }
        }
    }

    fn activity(&mut self, a: &Map<String, Value>, path: &str) {
        self.check(a, path, "activity", ACTIVITY);
        if let Some(Value::Object(p)) = a.get("provider") {
            let provider = join(path, "provider");
            match p.get("type").and_then(Value::as_str) {
                Some("python") => self.check(p, &provider, "python provider", PYTHON),
                Some("process") => self.check(p, &provider, "process provider", PROCESS),
                Some("http") => self.check(p, &provider, "http provider", HTTP),
                _ => {}
            }
        }
        if let Some(Value::Object(p)) = a.get("pauses") {
            self.check(p, &join(path, "pauses"), "pauses", PAUSES);
        }
        self.tolerance(a.get("tolerance"), &join(path, "tolerance"));
        self.controls(a.get("controls"), &join(path, "controls"));
    }

    fn tolerance(&mut self, tolerance: Option<&Value>, path: &str) {
        let Some(Value::Object(t)) = tolerance else {
            return;
        };
        match t.get("type").and_then(Value::as_str) {
            Some("probe") => self.activity(t, path),
            Some("regex") => self.check(t, path, "regex tolerance", REGEX),
            Some("jsonpath") => self.check(t, path, "jsonpath tolerance", JSONPATH),
            Some("range") => self.check(t, path, "range tolerance", RANGE),
            _ => {}
        }
    }

    fn controls(&mut self, controls: Option<&Value>, path: &str) {
        let Some(Value::Array(items)) = controls else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let Value::Object(c) = item else { continue };
            let path = format!("{path}[{i}]");
            self.check(c, &path, "control", CONTROL);
            if let Some(Value::Object(p)) = c.get("provider") {
                self.check(
                    p,
                    &join(&path, "provider"),
                    "control provider",
                    CONTROL_PROVIDER,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn near_misses_get_the_key_they_miss() {
        for (key, known, expected) in [
            (
                "steady-state-hypotesis",
                EXPERIMENT,
                Some("steady-state-hypothesis"),
            ),
            ("tolerence", ACTIVITY, Some("tolerance")),
            ("rollback", EXPERIMENT, Some("rollbacks")),
            ("Title", EXPERIMENT, Some("title")),
            ("mehtod", EXPERIMENT, Some("method")),
            ("argument", PYTHON, Some("arguments")),
            ("fucn", PYTHON, Some("func")),
            ("nme", ACTIVITY, Some("name")),
            ("owner", EXPERIMENT, None),
            ("x", PAUSES, None),
            ("retries", HTTP, None),
            ("patern", REGEX, Some("pattern")),
        ] {
            assert_eq!(did_you_mean(key, known), expected, "{key}");
        }
    }

    #[test]
    fn every_level_has_a_set_and_no_set_repeats_a_key() {
        for (level, keys) in LEVELS {
            let mut sorted = keys.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), keys.len(), "{level} repeats a key");
        }
        assert_eq!(LEVELS.len(), 20);
    }

    fn fields(doc: Value) -> Vec<(String, String)> {
        unknown_keys(&doc)
            .into_iter()
            .map(|p| (p.field, p.message))
            .collect()
    }

    #[test]
    fn unknown_keys_are_found_at_every_level() {
        let doc = json!({
            "title": "t", "description": "d", "steady-state-hypotesis": {},
            "steady-state-hypothesis": {"title": "h", "probs": [], "probes": [
                {"type": "probe", "name": "p", "tolerence": true,
                 "provider": {"type": "python", "module": "m", "func": "f", "argument": {}}},
                {"ref": "p", "tolerance": {"type": "regex", "pattern": "x", "taget": "stdout"}}]},
            "method": [{"type": "action", "name": "a", "pauses": {"befor": 1},
                "provider": {"type": "process", "path": "true", "timout": 3},
                "controls": [{"name": "c", "provider": {"type": "python", "modul": "m"}}]}],
            "rollbacks": [{"type": "action", "name": "r", "tolerance": {"type": "range",
                "range": [1, 2], "targt": "x"},
                "provider": {"type": "http", "url": "u", "verify": false}}],
            "configuration": {"c": {"type": "env", "key": "K", "defualt": 1},
                "p": {"type": "probe", "name": "p", "provider": {"type": "python",
                    "module": "m", "func": "f", "arguments": {"any": 1}}, "tolerance": true}},
            "secrets": {"s": {"k": {"type": "env", "key": "K", "typo": 1}}},
            "runtime": {"hypothesis": {"strategy": "default", "frequncy": 1}, "rollback": {}},
            "extensions": [{"name": "other", "free": 1},
                {"name": "experiment-broker", "max_target": 1, "strict": true}],
        });
        let found: Vec<String> = fields(doc).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            found,
            [
                "steady-state-hypotesis",
                "steady-state-hypothesis.probs",
                "steady-state-hypothesis.probes[0].tolerence",
                "steady-state-hypothesis.probes[0].provider.argument",
                "steady-state-hypothesis.probes[1].tolerance.taget",
                "method[0].provider.timout",
                "method[0].pauses.befor",
                "method[0].controls[0].provider.modul",
                "rollbacks[0].provider.verify",
                "rollbacks[0].tolerance.targt",
                "configuration.c.defualt",
                "secrets.s.k.typo",
                "runtime.rollback",
                "runtime.hypothesis.frequncy",
                "extensions[1].max_target",
            ]
        );
    }

    #[test]
    fn the_message_says_what_is_near_and_that_the_reference_ignores_it() {
        let found = fields(json!({"title": "t", "steady-state-hypotesis": {}}));
        assert_eq!(
            found[0].1,
            "unknown key `steady-state-hypotesis` in the experiment: did you mean \
             `steady-state-hypothesis`? (the Chaos Toolkit ignores it)"
        );
    }
}
