//! The `process` provider: run an executable, return `{status, stdout, stderr}`.
//!
//! Reference rules kept: the path is looked up on PATH (`~` expanded); string arguments run
//! through `/bin/sh -c "PATH ARGS"`; a mapping is flattened to key/value pairs; `None` and empty
//! strings are dropped; other values are passed as Python's `str()`. A non-zero exit status is
//! an output, not a failure; only the provider `timeout` (or an interruption) fails it. One
//! departure: in string arguments, values that came from probes are shell-quoted
//! (`Scope::shell_arguments`), so a system under test cannot inject shell commands.
//!
//! What the child writes is kept up to `output::OUTPUT_CAP` (1 MiB) per stream, the rest read
//! and dropped with a marker saying how much (the reference keeps everything).
//!
//! The child gets its own process group, so a timeout or an interrupted run kills everything it
//! started (a `sh -c` pipeline included), not just the shell.

use super::ActivityError;
use crate::model::ProcessProvider;
use crate::pyvalue::py_str;
use crate::scope::Scope;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::process::Command;

/// `shutil.which(os.path.expanduser(path))`.
pub fn find_executable(path: &str) -> Option<PathBuf> {
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rest))?,
        None => PathBuf::from(path),
    };
    which::which(expanded).ok()
}

/// The argv after the executable, or the shell command line for string arguments.
pub enum Argv {
    Shell(String),
    Args(Vec<String>),
}

/// Build the command line as the reference does.
pub fn build_argv(exe: &str, arguments: &Value) -> Argv {
    match arguments {
        Value::String(s) => Argv::Shell(format!("{exe} {s}")),
        Value::Object(map) => Argv::Args(
            map.iter()
                .flat_map(|(k, v)| [Value::String(k.clone()), v.clone()])
                .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
                .map(|v| py_str(&v))
                .collect(),
        ),
        Value::Array(items) => Argv::Args(
            items
                .iter()
                .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
                .map(py_str)
                .collect(),
        ),
        _ => Argv::Args(Vec::new()),
    }
}

pub async fn run(
    p: &ProcessProvider,
    scope: &Scope,
    env: &BTreeMap<String, String>,
) -> Result<Value, ActivityError> {
    let exe = find_executable(&p.path)
        .ok_or_else(|| ActivityError::Failed(format!("path '{}' cannot be found", p.path)))?;
    let exe_text = exe.to_string_lossy().into_owned();
    let arguments = match &p.arguments {
        _ if scope.is_empty() => p.arguments.clone(),
        // one string runs through the shell: values from probes are quoted for it
        Value::String(text) => scope
            .shell_arguments(&format!("{exe_text} "), text)
            .map_err(ActivityError::Failed)?,
        other => scope.substitute(other),
    };
    let mut cmd = match build_argv(&exe_text, &arguments) {
        Argv::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
        Argv::Args(args) => {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        }
    };
    cmd.envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| ActivityError::Failed(format!("failed to start '{}': {e}", p.path)))?;
    // Kill the whole group if this future is dropped (interruption) or times out.
    let guard = GroupGuard(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let collect = async {
        let cap = super::output::OUTPUT_CAP;
        let (out, err) = read_both_capped(stdout, stderr, cap, cap).await;
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match p.timeout {
        Some(t) => tokio::time::timeout(crate::clock::seconds(t), collect)
            .await
            .map_err(|_| {
                ActivityError::Timeout("process activity took too long to complete".into())
            })?,
        None => collect.await,
    };
    let status =
        status.map_err(|e| ActivityError::Failed(format!("waiting for '{}': {e}", p.path)))?;
    guard.disarm();
    let code = status.code().map(i64::from).unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        // like Python's subprocess: a signal-killed child reports -SIGNAL
        -i64::from(status.signal().unwrap_or(0))
    });
    Ok(json!({
        "status": code,
        "stdout": out.text(),
        "stderr": err.text(),
    }))
}

/// Read a child's stdout and stderr to the end, concurrently, keeping at most `out_cap` and
/// `err_cap` bytes of them (the rest is read and dropped): a full pipe on one side never blocks
/// the child writing to the other, and a child writing without end costs no memory.
pub(crate) async fn read_both_capped(
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    out_cap: usize,
    err_cap: usize,
) -> (super::output::Capped, super::output::Capped) {
    use super::output::{Capped, read_capped};
    let read_out = async {
        match stdout {
            Some(s) => read_capped(s, out_cap).await,
            None => Capped::default(),
        }
    };
    let read_err = async {
        match stderr {
            Some(s) => read_capped(s, err_cap).await,
            None => Capped::default(),
        }
    };
    tokio::join!(read_out, read_err)
}

/// SIGKILLs a child's process group on drop unless disarmed after the child was reaped.
pub(crate) struct GroupGuard(pub(crate) Option<u32>);

impl GroupGuard {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(v: Value) -> Vec<String> {
        match build_argv("/bin/echo", &v) {
            Argv::Args(a) => a,
            Argv::Shell(s) => panic!("unexpected shell line {s}"),
        }
    }

    #[test]
    fn argument_forms_follow_the_reference() {
        assert_eq!(
            args(json!(["%s|%s", "a", "", "b", null, 0])),
            vec!["%s|%s", "a", "b", "0"]
        );
        assert_eq!(
            args(json!({"--alpha": "1", "--beta": 2, "--flag": ""})),
            vec!["--alpha", "1", "--beta", "2", "--flag"]
        );
        assert_eq!(args(json!([1, 2.5, true])), vec!["1", "2.5", "True"]);
        match build_argv("/bin/sh", &json!("-c 'echo hi'")) {
            Argv::Shell(line) => assert_eq!(line, "/bin/sh -c 'echo hi'"),
            Argv::Args(_) => panic!("string arguments go through the shell"),
        }
    }

    fn provider(path: &str, arguments: Value, timeout: Option<f64>) -> ProcessProvider {
        ProcessProvider {
            path: path.into(),
            arguments,
            timeout,
        }
    }

    #[tokio::test]
    async fn output_and_exit_status() {
        let out = run(
            &provider("sh", json!(["-c", "echo out; echo err >&2; exit 3"]), None),
            &Scope::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            json!({"status": 3, "stdout": "out\n", "stderr": "err\n"})
        );
    }

    #[tokio::test]
    async fn timeout_fails_and_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 1; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let err = run(
            &provider("sh", json!(["-c", script]), Some(0.2)),
            &Scope::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ActivityError::Timeout(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "the background child of the shell was killed with its group"
        );
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_dropped_with_a_marker_and_never_blocks_the_child() {
        // 3 MiB on stdout and 1 MiB + 5 bytes on stderr; the child then exits 0
        let script = "head -c 3145728 /dev/zero | tr '\\0' a; \
                      head -c 1048581 /dev/zero | tr '\\0' b >&2; exit 0";
        let out = run(
            &provider("sh", json!(["-c", script]), Some(60.0)),
            &Scope::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
        assert_eq!(out["status"], 0, "the child ran to its end");
        let stdout = out["stdout"].as_str().unwrap();
        let cap = super::super::output::OUTPUT_CAP;
        assert_eq!(
            stdout,
            format!("{}…[truncated: 2097152 bytes dropped]", "a".repeat(cap))
        );
        let stderr = out["stderr"].as_str().unwrap();
        assert!(stderr.ends_with("b…[truncated: 5 bytes dropped]"));
        assert_eq!(stderr.len(), cap + "…[truncated: 5 bytes dropped]".len());
    }

    #[tokio::test]
    async fn env_overlay_reaches_the_child() {
        let mut env = BTreeMap::new();
        env.insert("EB_OVERLAY_TEST".to_string(), "seen".to_string());
        let out = run(
            &provider("sh", json!("-c 'printf $EB_OVERLAY_TEST'"), None),
            &Scope::default(),
            &env,
        )
        .await
        .unwrap();
        assert_eq!(out["stdout"], json!("seen"));
    }

    #[tokio::test]
    async fn missing_executable_is_a_failure() {
        let err = run(
            &provider("eb-no-such-exe", json!([]), None),
            &Scope::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "path 'eb-no-such-exe' cannot be found");
    }
}
