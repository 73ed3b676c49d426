//! The `python` provider, for activities with no native implementation.
//!
//! Existing Chaos Toolkit extensions are Python; when one is installed, we call it through a
//! Python interpreter (`$BROKER_PYTHON`, else `python3`, else `python` on PATH) running the
//! small bridge script embedded here: arguments go in as JSON on stdin, the result (or the
//! exception, formatted as Python formats it) comes back as JSON on stdout. One interpreter
//! process per call keeps calls isolated and killable; it costs ~20 ms, which the reference
//! pays once at start-up instead. With no interpreter, the error names the module and function.
//!
//! Validation imports each module to check the activity's arguments against its function's
//! signature. An import can take as long as it likes (a module may connect somewhere at
//! import), so that check is bounded by a timeout, after which its process group is killed.

use super::ActivityError;
use crate::model::PythonProvider;
use crate::scope::Scope;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

pub const BRIDGE: &str = include_str!("python_bridge.py");

/// How long checking one experiment's python activities against their signatures may take
/// (importing their modules, mostly) unless told otherwise: `worker --signature-timeout`.
pub const DEFAULT_SIGNATURE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct PythonBridge {
    interpreter: OnceLock<Option<PathBuf>>,
    signature_timeout: Duration,
}

impl Default for PythonBridge {
    fn default() -> Self {
        PythonBridge {
            interpreter: OnceLock::new(),
            signature_timeout: DEFAULT_SIGNATURE_TIMEOUT,
        }
    }
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
    /// Bound `check_signatures` by `timeout` instead of `DEFAULT_SIGNATURE_TIMEOUT`.
    pub fn set_signature_timeout(&mut self, timeout: Duration) {
        self.signature_timeout = timeout;
    }

    pub fn signature_timeout(&self) -> Duration {
        self.signature_timeout
    }

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
            let secrets = crate::scope::secret_values(&scope.secrets);
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

    /// Check python activities against their functions' signatures in one interpreter run,
    /// bounded by the signature timeout. Returns one optional problem per check, in order.
    ///
    /// Blocking (threads and a pipe, no runtime needed, so `worker validate` and the loaders
    /// stay synchronous): async callers run it on the blocking pool (`load::off_runtime`).
    /// The bridge answers one line per check as it goes, so on a timeout the check that was
    /// still running is known; the bridge's process group is then killed.
    pub fn check_signatures(
        &self,
        checks: &[SignatureCheck],
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<Option<String>>, SignatureError> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let Some(python) = self.interpreter() else {
            return Err(SignatureError::Unavailable(
                "no Python interpreter found (looked for $BROKER_PYTHON, python3, python on PATH)"
                    .into(),
            ));
        };
        let items: Vec<Value> = checks
            .iter()
            .map(|c| {
                json!({"module": c.module, "func": c.func, "arguments": c.arguments, "name": c.activity_name, "type": c.activity_type})
            })
            .collect();
        let request = json!({"op": "check", "items": items}).to_string();
        let deadline = Instant::now() + self.signature_timeout;
        // own process group: a timeout kills whatever the import started too
        let mut child = std::process::Command::new(python)
            .arg("-c")
            .arg(BRIDGE)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                SignatureError::Unavailable(format!("cannot start {}: {e}", python.display()))
            })?;
        let (lines, ended) = match Pipes::start(&mut child, request) {
            Ok(pipes) => pipes.answers(deadline, checks.len()),
            Err(e) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(e);
            }
        };
        // until `wait` reaps it, the bridge's pid (its group id) cannot be reused: killing the
        // group here reaches only what this check started
        let exited = matches!(ended, Ended::Answered { .. }) && wait_until(&mut child, deadline);
        if !exited {
            kill_group(child.id());
            let _ = child.wait();
        }
        let answers = lines
            .iter()
            .take(checks.len())
            .map(|line| parse_answer(line))
            .collect::<Result<Vec<_>, _>>()?;
        if answers.len() == checks.len() {
            // everything answered (a bridge stuck in its exit is killed; the answers stand)
            return Ok(answers);
        }
        match ended {
            Ended::Answered { stderr } if exited => Err(SignatureError::Unavailable(format!(
                "python bridge failed: {}",
                String::from_utf8_lossy(&stderr).trim()
            ))),
            _ => Err(SignatureError::TimedOut {
                at: answers.len(),
                checked: answers,
                timeout: self.signature_timeout,
            }),
        }
    }
}

/// Why python activities could not all be checked against their signatures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    /// Python cannot be used: no interpreter, it cannot start, or the bridge failed.
    #[error("{0}")]
    Unavailable(String),
    /// `checked` are the answers before the check at `at`, which was still running (importing
    /// its module, usually) when `timeout` ran out; the bridge was killed.
    #[error("the signature check of python activity {at} took longer than {} s", seconds(*.timeout))]
    TimedOut {
        checked: Vec<Option<String>>,
        at: usize,
        timeout: Duration,
    },
}

/// `30`, `2.5`: a duration as the seconds the command line takes.
pub fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Stderr kept for an error message; the rest is read and dropped so the bridge never blocks.
const STDERR_KEPT: usize = 64 * 1024;

/// The bridge's pipes, each served by its own thread, so a bridge that stops reading or
/// writing can hold a thread but never the caller past the deadline.
struct Pipes {
    lines: mpsc::Receiver<std::io::Result<String>>,
    stderr: mpsc::Receiver<Vec<u8>>,
}

impl Pipes {
    fn start(child: &mut std::process::Child, request: String) -> Result<Pipes, SignatureError> {
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (line_tx, lines) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(request.as_bytes());
            }
        })?;
        spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines() {
                    if line_tx.send(line).is_err() {
                        return;
                    }
                }
            }
        })?;
        spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut err) = stderr {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            let _ = err_tx.send(kept);
        })?;
        Ok(Pipes {
            lines,
            stderr: err_rx,
        })
    }

    /// The answer lines received before `deadline` (stopping after `expected`, or at the end
    /// of stdout), and how the bridge ended.
    fn answers(self, deadline: Instant, expected: usize) -> (Vec<String>, Ended) {
        let mut lines = Vec::new();
        while lines.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Ok(line)) => lines.push(line),
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => return (lines, Ended::Deadline),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.stderr.recv_timeout(left) {
            Ok(stderr) => (lines, Ended::Answered { stderr }),
            Err(_) => (lines, Ended::Deadline),
        }
    }
}

/// How a bridge's answer ended.
enum Ended {
    /// Its stdout and stderr were closed before the deadline.
    Answered { stderr: Vec<u8> },
    /// The deadline came first.
    Deadline,
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<(), SignatureError> {
    std::thread::Builder::new()
        .name("python-signature-check".into())
        .spawn(f)
        .map(drop)
        .map_err(|e| SignatureError::Unavailable(format!("cannot start a thread: {e}")))
}

/// Whether the child exited before `deadline`.
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return false,
        }
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// One answer line of the bridge's `check`: `{"problem": null | "<message>"}`.
fn parse_answer(line: &str) -> Result<Option<String>, SignatureError> {
    let answer: Value = serde_json::from_str(line)
        .map_err(|_| SignatureError::Unavailable(format!("python bridge answered `{line}`")))?;
    match answer.get("problem") {
        Some(Value::Null) => Ok(None),
        Some(Value::String(p)) => Ok(Some(p.clone())),
        _ => Err(SignatureError::Unavailable(format!(
            "python bridge answered `{line}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(module: &str) -> SignatureCheck {
        SignatureCheck {
            module: module.into(),
            func: "f".into(),
            arguments: Vec::new(),
            activity_name: module.into(),
            activity_type: "action".into(),
        }
    }

    /// Gone, or a zombie nobody reaped (in a container, PID 1 may not reap).
    fn dead(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn a_signature_check_past_its_timeout_kills_the_bridge_and_what_the_import_started() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        std::fs::write(dir.path().join("quick.py"), "def f():\n    pass\n").unwrap();
        std::fs::write(
            dir.path().join("hangs.py"),
            format!(
                "import os, subprocess, time\n\
                 child = subprocess.Popen(['sleep', '600'])\n\
                 open({pids:?}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n\
                 time.sleep(600)\n\
                 def f():\n    pass\n",
                pids = pids.display().to_string()
            ),
        )
        .unwrap();
        let mut bridge = PythonBridge::default();
        bridge.set_signature_timeout(Duration::from_secs(2));
        let env = BTreeMap::from([("PYTHONPATH".to_string(), dir.path().display().to_string())]);
        let started = Instant::now();
        let result =
            bridge.check_signatures(&[check("quick"), check("hangs"), check("quick")], &env);
        let took = started.elapsed();
        assert_eq!(
            result,
            Err(SignatureError::TimedOut {
                checked: vec![None],
                at: 1,
                timeout: Duration::from_secs(2)
            })
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(5),
            "took {took:?}"
        );
        let pids = std::fs::read_to_string(&pids).unwrap();
        for pid in pids.split_whitespace() {
            let pid: i32 = pid.parse().unwrap();
            let until = Instant::now() + Duration::from_secs(2);
            while !dead(pid) {
                assert!(Instant::now() < until, "process {pid} outlived the check");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    #[test]
    fn a_bridge_that_dies_mid_check_is_an_error_not_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dies.py"), "import os\nos._exit(3)\n").unwrap();
        let bridge = PythonBridge::default();
        let env = BTreeMap::from([("PYTHONPATH".to_string(), dir.path().display().to_string())]);
        let started = Instant::now();
        let result = bridge.check_signatures(&[check("dies")], &env);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(&result, Err(SignatureError::Unavailable(r)) if r.starts_with("python bridge failed")),
            "{result:?}"
        );
    }
}
