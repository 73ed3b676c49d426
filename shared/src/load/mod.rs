//! Files → validated `Experiment`s, with every problem located (file, line, column, field).
//!
//! Two stages, as ripgrep's lowargs → hiargs: `document` turns text into a JSON value and a
//! map of where each field sits; `validate` turns the value into typed structs and collects
//! problems; this module reads the file, attaches locations, and checks what needs the outside
//! world (Python signatures, via one interpreter run for the whole file, bounded by the
//! signature timeout). Loading is synchronous; async callers go through `off_runtime`.

pub mod config;
pub mod document;
pub mod faults;
pub mod problem;
pub mod revert;
pub mod suite;
pub mod validate;
pub mod vars;

pub use problem::{Problem, Problems};
pub use vars::Vars;

use crate::model::{Experiment, Provider};
use crate::providers::Providers;
use crate::providers::python::{SignatureCheck, SignatureError, seconds};
use document::{Document, Format};
use std::path::Path;

/// Read, parse and validate an experiment file.
pub fn load_experiment(
    path: &Path,
    vars: &Vars,
    providers: &Providers,
) -> Result<Experiment, Problems> {
    let text = document::read_text(path, "the experiment").map_err(|p| Problems(vec![p]))?;
    load_experiment_text(
        &text,
        Format::detect(path, &text),
        Some(path),
        vars,
        providers,
    )
}

/// Run a loader on the blocking pool. Loading may wait on Python (importing modules to check
/// signatures, up to the signature timeout) and parse large files; an async caller (the
/// worker's runtime is single-threaded) goes on serving its other jobs meanwhile: their
/// heartbeats keep their leases. A loader that panics becomes a problem, not a lost job.
pub async fn off_runtime<T, F>(load: F) -> Result<T, Problems>
where
    F: FnOnce() -> Result<T, Problems> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(load).await.unwrap_or_else(|e| {
        Err(Problems(vec![Problem::new(
            "",
            format!("loading the experiment stopped unexpectedly: {e}"),
        )]))
    })
}

/// Parse and validate experiment text; `origin` names it in problems.
pub fn load_experiment_text(
    text: &str,
    format: Format,
    origin: Option<&Path>,
    vars: &Vars,
    providers: &Providers,
) -> Result<Experiment, Problems> {
    let mut doc = parse_located(text, format, origin)?;
    let checks = validate::Checks {
        vars,
        check_executables: true,
    };
    let result = validate::validate(&doc.value, &checks);
    let (experiment, mut problems) = match result {
        Ok(e) => (Some(e), Vec::new()),
        Err(problems) => (None, problems),
    };
    if let Some(e) = &experiment {
        problems.extend(faults::problems(
            e,
            |a| providers.native(a).is_some_and(|n| n.fault),
            |a| providers.native(a).is_some(),
        ));
        problems.extend(python_problems(e, providers));
    }
    match experiment {
        Some(e) if problems.is_empty() => Ok(e),
        _ => Err(locate_all(problems, &mut doc, origin)),
    }
}

/// Parse a document; a syntax error comes back located and naming `origin`.
pub(crate) fn parse_located(
    text: &str,
    format: Format,
    origin: Option<&Path>,
) -> Result<Document, Problems> {
    document::parse(text, format).map_err(|mut p| {
        p.file = origin.map(Path::to_path_buf);
        Problems(vec![p])
    })
}

/// Name the file, attach each problem's line and column, and sort them in reading order.
pub(crate) fn locate_all(
    problems: Vec<Problem>,
    doc: &mut Document,
    origin: Option<&Path>,
) -> Problems {
    doc.ensure_spans();
    let mut located: Vec<Problem> = problems
        .into_iter()
        .map(|mut p| {
            p.file = origin.map(Path::to_path_buf);
            if p.line.is_none()
                && let Some((line, col)) = doc.locate(&p.field)
            {
                p = p.at(line, col);
            }
            p
        })
        .collect();
    located.sort_by_key(|p| (p.line.unwrap_or(0), p.column.unwrap_or(0)));
    Problems(located)
}

/// Python activities: native ones are checked against their declared parameters, the others
/// against the real function's signature, as the reference does.
fn python_problems(e: &Experiment, providers: &Providers) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut checks = Vec::new();
    let mut fields = Vec::new();
    let unguarded_allowed = faults::unguarded_python_allowed(e).unwrap_or(false);
    for (field, activity) in activities_with_paths(e) {
        let Provider::Python(p) = &activity.provider else {
            continue;
        };
        let provider_field = format!("{field}.provider");
        // a tolerance probe is always handed the checked output as `value`
        let mut arguments: Vec<String> = p.arguments.keys().cloned().collect();
        if field.ends_with(".tolerance") && !arguments.iter().any(|a| a == "value") {
            arguments.push("value".into());
        }
        if let Some(native) = providers.registry.get(&p.module, &p.func) {
            for message in native.check_arguments(arguments.iter()) {
                problems.push(
                    Problem::new(format!("{provider_field}.arguments"), message).expected(format!(
                        "the parameters of {}: {}",
                        p.key(),
                        native
                            .params
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            continue;
        }
        if crate::providers::is_guarded_module(&p.module) && !unguarded_allowed {
            continue; // refused by `faults::problems`; never imported
        }
        fields.push(provider_field);
        checks.push(SignatureCheck {
            module: p.module.clone(),
            func: p.func.clone(),
            arguments,
            activity_name: activity.name.clone(),
            activity_type: activity.kind.as_str().to_string(),
        });
    }
    let (results, failure) = match providers
        .python
        .check_signatures(&checks, &providers.env_overlay)
    {
        Ok(results) => (results, None),
        Err(SignatureError::TimedOut {
            checked,
            at,
            timeout,
        }) => (checked, Some((at, timeout))),
        Err(SignatureError::Unavailable(reason)) => {
            for (field, check) in fields.iter().zip(&checks) {
                problems.push(
                    Problem::new(
                        field.clone(),
                        format!(
                            "`{}.{}` has no native implementation and {reason}",
                            check.module, check.func
                        ),
                    )
                    .expected(
                        "a native activity or a Python interpreter with the module installed",
                    ),
                );
            }
            return problems;
        }
    };
    for ((field, problem), check) in fields.iter().zip(results).zip(&checks) {
        if let Some(message) = problem {
            problems.push(signature_problem(field, check, message));
        }
    }
    if let Some((at, timeout)) = failure
        && let (Some(field), Some(check)) = (fields.get(at), checks.get(at))
    {
        problems.push(timeout_problem(
            field,
            check,
            timeout,
            checks.len() - at - 1,
        ));
    }
    problems
}

/// What the bridge said about one activity, at the field it concerns.
fn signature_problem(field: &str, check: &SignatureCheck, message: String) -> Problem {
    if message.starts_with("could not find Python module")
        || message.contains("does not expose a function")
    {
        return Problem::new(
            field,
            format!(
                "no native activity is registered as `{}.{}`, and in Python {message}",
                check.module, check.func
            ),
        )
        .expected("a native activity, or the Python module installed for the interpreter on PATH");
    }
    let field = match quoted_argument(&message) {
        Some(arg) if check.arguments.iter().any(|a| a == arg) => {
            format!("{field}.arguments.{arg}")
        }
        _ => field.to_string(),
    };
    Problem::new(field, message).expected("arguments that match the function's signature")
}

/// The check still running when the signature timeout ran out; `unchecked` python activities
/// came after it.
fn timeout_problem(
    field: &str,
    check: &SignatureCheck,
    timeout: std::time::Duration,
    unchecked: usize,
) -> Problem {
    let later = match unchecked {
        0 => String::new(),
        1 => "; 1 later python activity was not checked".into(),
        n => format!("; {n} later python activities were not checked"),
    };
    Problem::new(
        field,
        format!(
            "checking `{module}.{func}` against its signature did not finish within the \
             signature timeout of {secs} s (importing `{module}` hangs or is too slow), so it \
             was stopped{later}",
            module = check.module,
            func = check.func,
            secs = seconds(timeout),
        ),
    )
    .expected(
        "a module that imports within the signature timeout (--signature-timeout or \
         BROKER_SIGNATURE_TIMEOUT, in seconds)",
    )
}

/// `argument 'nope' is not part...` → `nope`.
fn quoted_argument(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("argument '")?;
    rest.split_once('\'').map(|(name, _)| name)
}

/// Every activity with the field path it was declared at.
fn activities_with_paths<'a>(e: &'a Experiment) -> Vec<(String, &'a crate::model::Activity)> {
    use crate::model::{Step, Tolerance};
    let mut out = Vec::new();
    let mut push_steps = |prefix: &str, steps: &'a [Step]| {
        for (i, step) in steps.iter().enumerate() {
            if let Step::Activity(a) = step {
                let field = format!("{prefix}[{i}]");
                if let Some(Tolerance::Probe(p)) = &a.tolerance {
                    out.push((format!("{field}.tolerance"), p.as_ref()));
                }
                out.push((field, a.as_ref()));
            }
        }
    };
    if let Some(h) = &e.hypothesis {
        push_steps("steady-state-hypothesis.probes", &h.probes);
    }
    push_steps("method", &e.method);
    push_steps("rollbacks", &e.rollbacks);
    for (key, a) in &e.config_probes {
        out.push((format!("configuration.{key}"), a));
    }
    out
}

#[cfg(test)]
mod signature_tests {
    use super::*;
    use crate::providers::registry::Registry;
    use std::time::{Duration, Instant};

    /// Providers whose Python finds the modules in `dir`, checked within `timeout`.
    fn providers(dir: &Path, timeout: Duration) -> Providers {
        let mut p = Providers::new(Registry::new());
        p.env_overlay
            .insert("PYTHONPATH".into(), dir.display().to_string());
        p.python.set_signature_timeout(timeout);
        p
    }

    fn action(name: &str, module: &str, func: &str, args: &str) -> String {
        format!(
            "  - type: action\n    name: {name}\n    provider:\n      type: python\n      module: {module}\n      func: {func}\n      arguments: {{{args}}}\n"
        )
    }

    fn load(text: &str, providers: &Providers) -> Vec<(String, Option<u32>, String)> {
        let origin = Path::new("exp.yaml");
        match load_experiment_text(
            text,
            Format::Yaml,
            Some(origin),
            &Vars::default(),
            providers,
        ) {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .0
                .into_iter()
                .map(|p| {
                    assert_eq!(p.file.as_deref(), Some(origin));
                    (p.field.clone(), p.line, p.to_string())
                })
                .collect(),
        }
    }

    #[test]
    fn each_signature_problem_is_located_at_its_activity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sigmod.py"), "def f(a, b=1):\n    pass\n").unwrap();
        let text = format!(
            "title: t\ndescription: d\nmethod:\n{}{}{}{}",
            action("fine", "sigmod", "f", "a: 1"),
            action("nomod", "no_such_module_here", "f", ""),
            action("nofunc", "sigmod", "g", ""),
            action("extra", "sigmod", "f", "a: 1, c: 2"),
        );
        let problems = load(&text, &providers(dir.path(), Duration::from_secs(30)));
        let fields: Vec<(&str, Option<u32>)> =
            problems.iter().map(|(f, l, _)| (f.as_str(), *l)).collect();
        assert_eq!(
            fields,
            [
                ("method[1].provider", Some(13)),
                ("method[2].provider", Some(20)),
                ("method[3].provider.arguments.c", Some(31)),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[0]
                .2
                .contains("could not find Python module 'no_such_module_here'")
        );
        assert!(
            problems[1]
                .2
                .contains("does not expose a function called 'g'")
        );
        assert!(
            problems[2]
                .2
                .contains("argument 'c' is not part of the function signature")
        );
    }

    #[test]
    fn a_signature_check_past_its_timeout_is_a_located_problem_of_the_hanging_import() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("quick.py"), "def f():\n    pass\n").unwrap();
        std::fs::write(
            dir.path().join("hangs.py"),
            "import time\ntime.sleep(600)\ndef f():\n    pass\n",
        )
        .unwrap();
        let text = format!(
            "title: t\ndescription: d\nmethod:\n{}{}{}",
            action("quick", "quick", "f", ""),
            action("hanging", "hangs", "f", ""),
            action("after", "quick", "f", ""),
        );
        let started = Instant::now();
        let problems = load(&text, &providers(dir.path(), Duration::from_millis(1500)));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let (field, line, message) = &problems[0];
        assert_eq!((field.as_str(), *line), ("method[1].provider", Some(13)));
        for part in [
            "checking `hangs.f` against its signature did not finish within the signature timeout of 1.5 s",
            "importing `hangs`",
            "1 later python activity was not checked",
            "--signature-timeout",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }
}
