//! Files → validated `Experiment`s, with every problem located (file, line, column, field).
//!
//! Two stages, as ripgrep's lowargs → hiargs: `document` turns text into a JSON value and a
//! map of where each field sits; `validate` turns the value into typed structs and collects
//! problems; this module reads the file, attaches locations, and checks what needs the outside
//! world (Python signatures, via one interpreter run for the whole file).

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
use crate::providers::python::SignatureCheck;
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
    match providers.python.check_signatures(&checks) {
        Ok(results) => {
            for ((field, problem), check) in fields.iter().zip(results).zip(&checks) {
                if let Some(message) = problem {
                    if message.starts_with("could not find Python module")
                        || message.contains("does not expose a function")
                    {
                        problems.push(
                            Problem::new(field.clone(), format!("no native activity is registered as `{}.{}`, and in Python {message}", check.module, check.func))
                                .expected("a native activity, or the Python module installed for the interpreter on PATH"),
                        );
                        continue;
                    }
                    let field = match quoted_argument(&message) {
                        Some(arg) if check.arguments.iter().any(|a| a == arg) => {
                            format!("{field}.arguments.{arg}")
                        }
                        _ => field.clone(),
                    };
                    problems.push(
                        Problem::new(field, message)
                            .expected("arguments that match the function's signature"),
                    );
                }
            }
        }
        Err(reason) => {
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
        }
    }
    problems
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
