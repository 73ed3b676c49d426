//! Stamps the git commit into `--version` (`BROKER_GIT_COMMIT`): `git rev-parse --short HEAD`,
//! or the variable as set in the build's environment (a build from a source archive, a
//! container build without `.git`), else `unknown`. Rebuilt when HEAD moves.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BROKER_GIT_COMMIT");
    let commit = std::env::var("BROKER_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BROKER_GIT_COMMIT={commit}");
    // HEAD names the branch; the branch's ref (loose, or in packed-refs) names the commit. In a
    // worktree HEAD is in the worktree's git dir and the refs are in the common one.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch(&Path::new(&dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = Path::new(&common);
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&common.join(branch));
        }
        watch(&common.join("packed-refs"));
    }
}

/// Rebuild when `path` changes (only a file that exists: cargo reruns a script on every
/// build when a watched path is missing).
fn watch(path: &Path) {
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git ARGS` in the package directory: its trimmed output, or `None` (no git, not a checkout).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}
