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

use crate::model::Experiment;
use crate::providers::Providers;
use crate::providers::python::{SignatureCheck, SignatureError, seconds};
use document::{Document, Format};
use std::path::Path;

/// Read, parse and validate an experiment file, to run it.
pub fn load_experiment(
    path: &Path,
    vars: &Vars,
    providers: &Providers,
) -> Result<Experiment, Problems> {
    load_file(path, vars, providers, Purpose::Run)
}

/// Read, parse and validate an experiment file for the reference's verdict (`validate`):
/// what the reference only stops on when it runs is a warning here.
pub fn validate_experiment(
    path: &Path,
    vars: &Vars,
    providers: &Providers,
) -> Result<Experiment, Problems> {
    load_file(path, vars, providers, Purpose::Validate)
}

/// Why a file is loaded: what the reference accepts at validation but stops on when it runs
/// (`validate::Validated::deferred`) is a problem to a run and a warning to `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Run,
    Validate,
}

fn load_file(
    path: &Path,
    vars: &Vars,
    providers: &Providers,
    purpose: Purpose,
) -> Result<Experiment, Problems> {
    let text = document::read_text(path, "the experiment").map_err(|p| Problems(vec![p]))?;
    let format = Format::detect(path, &text);
    load_for(&text, format, Some(path), vars, providers, purpose)
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

/// Parse and validate experiment text; `origin` names it in problems. The experiment comes
/// back with its warnings (`Experiment::warnings`), located: what is found beyond the
/// reference's verdict never makes it invalid (see `strict_problems`).
pub fn load_experiment_text(
    text: &str,
    format: Format,
    origin: Option<&Path>,
    vars: &Vars,
    providers: &Providers,
) -> Result<Experiment, Problems> {
    load_for(text, format, origin, vars, providers, Purpose::Run)
}

/// `load_experiment_text` for a `purpose`.
pub fn load_for(
    text: &str,
    format: Format,
    origin: Option<&Path>,
    vars: &Vars,
    providers: &Providers,
    purpose: Purpose,
) -> Result<Experiment, Problems> {
    let mut doc = parse_located(text, format, origin)?;
    let checks = validate::Checks {
        vars,
        check_executables: true,
    };
    let validated = validate::validate_all(&doc.value, &checks);
    let mut problems = validated.problems;
    let mut warnings = validated.warnings;
    let mut deferred = validated.deferred;
    warnings.extend(validate::keys::unknown_keys(&doc.value));
    warnings.extend(doc.repeated_keys());
    let extensions = match doc.value.get("extensions") {
        Some(serde_json::Value::Array(list)) => list.as_slice(),
        _ => &[],
    };
    let unguarded_allowed = match faults::unguarded_python_allowed(extensions) {
        Ok(allowed) => allowed,
        Err(problem) => {
            deferred.push(problem);
            false
        }
    };
    let (errors, warned) = python_problems(&validated.python_calls, providers, unguarded_allowed);
    problems.extend(errors);
    warnings.extend(warned);
    if let Some(e) = &validated.experiment {
        let (now, at_run) = faults::findings(
            e,
            |a| providers.native(a).is_some_and(|n| n.fault),
            |a| providers.native(a).is_some(),
        );
        problems.extend(now);
        // the setting itself is reported once, above
        deferred.extend(
            at_run
                .into_iter()
                .filter(|p| !p.field.starts_with("extensions[")),
        );
        warnings.extend(validate::warnings(e));
    }
    match purpose {
        Purpose::Run => problems.extend(deferred),
        Purpose::Validate => warnings.extend(deferred.into_iter().map(|mut p| {
            p.message.push_str(" (a run refuses this before it starts)");
            p
        })),
    }
    match validated.experiment {
        Some(mut e) if problems.is_empty() => {
            e.warnings = locate_all(warnings, &mut doc, origin).0;
            Ok(e)
        }
        _ => Err(locate_all(problems, &mut doc, origin)),
    }
}

/// Whether warnings are errors for this experiment: `strict` (`--strict`, or `strict: true`
/// in a suite) or `strict: true` in its `experiment-broker` extension.
pub fn is_strict(e: &Experiment, strict: bool) -> bool {
    strict
        || crate::model::broker_extension(e).get("strict") == Some(&serde_json::Value::Bool(true))
}

/// Under strictness, the experiment's warnings as the problems that make it invalid.
pub fn strict_problems(e: &Experiment, strict: bool) -> Option<Problems> {
    (is_strict(e, strict) && !e.warnings.is_empty()).then(|| Problems(e.warnings.clone()))
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

/// Python activities: native ones are checked against their declared parameters (names and
/// values), the others against the real function's signature, as the reference does; each
/// problem at the argument it concerns when there is one. Those of dynamic-configuration
/// probes, which the reference does not check, come back as warnings: `(errors, warnings)`.
fn python_problems(
    calls: &[validate::PythonCall],
    providers: &Providers,
    unguarded_allowed: bool,
) -> (Vec<Problem>, Vec<Problem>) {
    let mut found: Vec<(bool, Problem)> = Vec::new();
    let mut checks = Vec::new();
    let mut checked = Vec::new();
    for call in calls {
        // a tolerance probe is always handed the checked output as `value`
        let mut arguments: Vec<String> = call.arguments.keys().cloned().collect();
        if call.tolerance && !arguments.iter().any(|a| a == "value") {
            arguments.push("value".into());
        }
        let key = format!("{}.{}", call.module, call.func);
        if let Some(native) = providers.registry.get(&call.module, &call.func) {
            let expected = format!(
                "the parameters of {key}: {}",
                native
                    .params
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (argument, message) in native.argument_problems(arguments.iter()) {
                let field = match argument {
                    Some(a) => format!("{}.arguments.{a}", call.field),
                    None => format!("{}.arguments", call.field),
                };
                found.push((
                    call.lenient,
                    Problem::new(field, message).expected(expected.clone()),
                ));
            }
            for (argument, message, expected) in native.value_problems(&call.arguments) {
                found.push((
                    call.lenient,
                    Problem::new(format!("{}.arguments.{argument}", call.field), message)
                        .expected(expected),
                ));
            }
            continue;
        }
        if crate::providers::is_guarded_module(&call.module) && !unguarded_allowed {
            continue; // refused by `faults::problems`; never imported
        }
        checked.push(call);
        checks.push(SignatureCheck {
            module: call.module.clone(),
            func: call.func.clone(),
            arguments,
            activity_name: call.activity_name.clone(),
            activity_type: call.activity_type.clone(),
        });
    }
    if !checks.is_empty() {
        signature_findings(&checks, &checked, providers, &mut found);
    }
    let (warned, errors): (Vec<_>, Vec<_>) = found.into_iter().partition(|(lenient, _)| *lenient);
    let unchecked_note = |(_, mut p): (bool, Problem)| {
        p.message.push_str(validate::UNCHECKED_NOTE);
        p
    };
    (
        errors.into_iter().map(|(_, p)| p).collect(),
        warned.into_iter().map(unchecked_note).collect(),
    )
}

/// The Python bridge's verdict on each check, as `(lenient, problem)`.
fn signature_findings(
    checks: &[SignatureCheck],
    calls: &[&validate::PythonCall],
    providers: &Providers,
    found: &mut Vec<(bool, Problem)>,
) {
    let (results, failure) = match providers
        .python
        .check_signatures(checks, &providers.env_overlay)
    {
        Ok(results) => (results, None),
        Err(SignatureError::TimedOut {
            checked,
            at,
            timeout,
        }) => (checked, Some((at, timeout))),
        Err(SignatureError::Unavailable(reason)) => {
            for (call, check) in calls.iter().zip(checks) {
                found.push((
                    call.lenient,
                    Problem::new(
                        call.field.clone(),
                        format!(
                            "`{}.{}` has no native implementation and {reason}",
                            check.module, check.func
                        ),
                    )
                    .expected(
                        "a native activity or a Python interpreter with the module installed",
                    ),
                ));
            }
            return;
        }
    };
    for ((call, problem), check) in calls.iter().zip(results).zip(checks) {
        if let Some(message) = problem {
            found.push((call.lenient, signature_problem(&call.field, check, message)));
        }
    }
    if let Some((at, timeout)) = failure
        && let (Some(call), Some(check)) = (calls.get(at), checks.get(at))
    {
        found.push((
            call.lenient,
            timeout_problem(&call.field, check, timeout, checks.len() - at - 1),
        ));
    }
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
