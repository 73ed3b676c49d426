//! Control hooks (`controls:` with a `python` provider) through the Python bridge.
//!
//! The reference imports a control's module once and calls its hooks in that one interpreter,
//! so a control keeps state from `configure_control` to `after_experiment_control`. Here too:
//! one bridge process per run serves every hook of it (one JSON line in, one out), started on
//! the first hook and stopped with the run (its own process group, killed when dropped). A hook
//! only ever runs in that interpreter: it cannot reach the native registry, hence no fault.
//! A hook that raises, is missing, or outlives `HOOK_TIMEOUT` is an outcome, never an error of
//! the run: the reference logs a failing control and goes on.

use super::python::PythonBridge;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How long one hook may take; past it the session is stopped and later hooks are skipped.
/// The reference has no bound; a run must not hang on a control.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// How one hook call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    Ran,
    /// The module or the hook is not there (the reference skips it, logging at debug).
    Absent(String),
    /// The hook raised, timed out, or the bridge could not be used.
    Failed(String),
}

/// One interpreter serving a run's control hooks.
pub struct ControlSession {
    child: Child,
    stdin: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    group: super::process::GroupGuard,
}

impl std::fmt::Debug for ControlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSession")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl PythonBridge {
    /// Start the interpreter for a run's control hooks. `log` receives each line the controls
    /// print (their stdout and stderr), for the run's log.
    pub async fn control_session(
        &self,
        env: &BTreeMap<String, String>,
        log: impl Fn(&str) + Send + 'static,
    ) -> Result<ControlSession, String> {
        let python = self.interpreter().ok_or_else(|| {
            "no Python interpreter was found (looked for $BROKER_PYTHON, python3, python on PATH)"
                .to_string()
        })?;
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(super::python::BRIDGE)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let group = super::process::GroupGuard(child.id());
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the python bridge's pipes are missing".into());
        };
        stdin
            .write_all(b"{\"op\": \"controls\"}\n")
            .await
            .map_err(|e| format!("python bridge: {e}"))?;
        // what the controls print is read as it comes, so the bridge never blocks on it
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log(&line);
            }
        });
        Ok(ControlSession {
            child,
            stdin,
            answers: BufReader::new(stdout).lines(),
            group,
        })
    }
}

/// One hook request: what `apply_python_control` passes, as JSON.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    pub hook: &'a str,
    pub module: &'a str,
    /// The control's `arguments`, substituted.
    pub arguments: &'a Value,
    pub context: &'a Value,
    pub state: Option<&'a Value>,
    pub configuration: &'a Value,
    pub secrets: &'a Value,
    pub experiment: &'a Value,
}

impl ControlSession {
    /// Call one hook; `Err` means the session is unusable (dead, timed out) and was stopped.
    pub async fn call(&mut self, call: &HookCall<'_>) -> Result<HookOutcome, String> {
        let request = json!({
            "hook": call.hook,
            "module": call.module,
            "arguments": call.arguments,
            "context": call.context,
            "state": call.state,
            "configuration": call.configuration,
            "secrets": call.secrets,
            "experiment": call.experiment,
        });
        let exchange = async {
            let mut line = request.to_string();
            line.push('\n');
            self.stdin
                .write_all(line.as_bytes())
                .await
                .map_err(|e| format!("python bridge: {e}"))?;
            self.stdin
                .flush()
                .await
                .map_err(|e| format!("python bridge: {e}"))?;
            match self.answers.next_line().await {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) => Err("the python bridge ended without an answer".to_string()),
                Err(e) => Err(format!("python bridge: {e}")),
            }
        };
        let answer = match tokio::time::timeout(HOOK_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "{}.{} took longer than {} s: control hooks stopped for this run",
                    call.module,
                    call.hook,
                    HOOK_TIMEOUT.as_secs()
                ));
            }
        };
        let answer: Value = serde_json::from_str(&answer)
            .map_err(|_| format!("python bridge answered `{answer}`"))?;
        Ok(if answer.get("ok").is_some() {
            HookOutcome::Ran
        } else if let Some(why) = answer.get("absent").and_then(Value::as_str) {
            HookOutcome::Absent(why.to_string())
        } else {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown Python error");
            HookOutcome::Failed(error.to_string())
        })
    }

    /// End the session: the bridge reads the end of its input and exits; one that does not
    /// within a second is killed with its process group.
    pub async fn close(mut self) {
        let _ = self.stdin.shutdown().await;
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(1), self.child.wait())
            .await
            .is_ok_and(|status| status.is_ok())
        {
            self.group.disarm();
        }
    }
}
