//! The `python` provider, for activities with no native implementation.
//!
//! Existing Chaos Toolkit extensions are Python; when one is installed, we call it through a
//! Python interpreter (`$BROKER_PYTHON`, else `python3`, else `python` on PATH) running the
//! small bridge script embedded here: arguments go in as JSON on stdin, the result (or the
//! exception, formatted as Python formats it) comes back as JSON on stdout. One interpreter
//! process per call keeps calls isolated and killable; it costs ~20 ms, which the reference
//! pays once at start-up instead. With no interpreter, the error names the module and function.

use super::ActivityError;
use crate::engine::substitute::Scope;
use crate::model::PythonProvider;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use tokio::io::AsyncWriteExt;

pub const BRIDGE: &str = include_str!("python_bridge.py");

#[derive(Debug, Default)]
pub struct PythonBridge {
    interpreter: OnceLock<Option<PathBuf>>,
}

/// One python activity to check against its function's signature.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    pub module: String,
    pub func: String,
    pub arguments: Vec<String>,
    pub activity_name: String,
    pub activity_type: String,
}

impl PythonBridge {
    /// The interpreter, found once.
    pub fn interpreter(&self) -> Option<&PathBuf> {
        self.interpreter
            .get_or_init(|| {
                if let Some(p) = std::env::var_os("BROKER_PYTHON").filter(|p| !p.is_empty()) {
                    return which::which(p).ok();
                }
                which::which("python3")
                    .or_else(|_| which::which("python"))
                    .ok()
            })
            .as_ref()
    }

    fn unavailable(module: &str, func: &str) -> ActivityError {
        ActivityError::Unavailable(format!(
            "no native activity is registered as `{module}.{func}` and no Python interpreter was found \
             (looked for $BROKER_PYTHON, python3, python on PATH) to import `{module}` and call `{func}`"
        ))
    }

    pub async fn call(
        &self,
        p: &PythonProvider,
        arguments: Map<String, Value>,
        scope: &Scope,
        env: &BTreeMap<String, String>,
    ) -> Result<Value, ActivityError> {
        let python = self
            .interpreter()
            .ok_or_else(|| Self::unavailable(&p.module, &p.func))?;
        let request = json!({
            "op": "call",
            "module": p.module,
            "func": p.func,
            "arguments": arguments,
            "configuration": scope.configuration,
            "secrets": scope.secrets,
            "secret_scopes": p.secrets,
        });
        // Own process group: a terminal's Ctrl-C does not reach the extension (the engine
        // decides what an interruption stops), and an interruption kills everything it started.
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(BRIDGE)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ActivityError::Failed(format!("cannot start {}: {e}", python.display()))
            })?;
        let guard = super::process::GroupGuard(child.id());
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(request.to_string().as_bytes()).await;
        }
        // the answer (stdout) whole; what the extension prints (stderr, logged) up to the cap
        let (out, err) = super::process::read_both_capped(
            child.stdout.take(),
            child.stderr.take(),
            usize::MAX,
            super::output::OUTPUT_CAP,
        )
        .await;
        let out = out.kept;
        let status = child
            .wait()
            .await
            .map_err(|e| ActivityError::Failed(format!("python bridge: {e}")))?;
        guard.disarm();
        // What the extension printed goes to our log, with the run's secrets masked.
        let printed = err.text();
        if !printed.trim().is_empty() {
            let secrets = crate::load::config::secret_values(&scope.secrets);
            let redactor = crate::redact::Redactor::new(secrets);
            // masked whole, then split: a secret spanning lines is masked too
            for line in redactor.text(&printed).lines() {
                tracing::info!("{}.{}: {}", p.module, p.func, line);
            }
        }
        let answer: Value = serde_json::from_slice(&out).map_err(|_| {
            ActivityError::Failed(format!(
                "python bridge for {}.{} ended ({status}) without an answer",
                p.module, p.func
            ))
        })?;
        if let Some(ok) = answer.get("ok") {
            return Ok(ok.clone());
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown Python error");
        Err(ActivityError::Failed(error.to_string()))
    }

    /// Check python activities against their functions' signatures in one interpreter run.
    /// Returns one optional problem per check, in order; `Err` when Python cannot be used.
    pub fn check_signatures(
        &self,
        checks: &[SignatureCheck],
    ) -> Result<Vec<Option<String>>, String> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let Some(python) = self.interpreter() else {
            return Err(
                "no Python interpreter found (looked for $BROKER_PYTHON, python3, python on PATH)"
                    .into(),
            );
        };
        let items: Vec<Value> = checks
            .iter()
            .map(|c| {
                json!({"module": c.module, "func": c.func, "arguments": c.arguments, "name": c.activity_name, "type": c.activity_type})
            })
            .collect();
        let request = json!({"op": "check", "items": items}).to_string();
        let mut child = std::process::Command::new(python)
            .arg("-c")
            .arg(BRIDGE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(request.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("python bridge: {e}"))?;
        let answer: Value = serde_json::from_slice(&output.stdout).map_err(|_| {
            format!(
                "python bridge failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        Ok(answer
            .get("problems")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|p| p.as_str().map(String::from)).collect())
            .unwrap_or_default())
    }
}
