//! Architecture rules, enforced by `cargo test` (as rust-analyzer does): every Rust file says
//! why it exists in a `//!` first line, the engine names no port, adapter or AWS SDK, and one
//! TLS stack is built.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for crate_dir in ["shared", "worker", "producer"] {
        rust_files(&root.join(crate_dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "files without a `//!` first line: {offenders:?}"
    );
}

#[test]
fn the_engine_knows_nothing_of_ports_adapters_or_aws() {
    let engine = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    rust_files(&engine, &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for forbidden in ["ports::", "adapters::", "aws_sdk_", "shared::serve"] {
            assert!(
                !text.contains(forbidden),
                "{} names `{forbidden}`",
                f.display()
            );
        }
    }
}

/// The packages the workspace builds for this machine (every crate, binary and test), as
/// `name version` pairs, from `cargo tree` (`Cargo.lock` also lists optional dependencies
/// no feature turns on, which are never built).
fn built_packages() -> Vec<(String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--workspace", "--frozen", "-e", "normal,build,dev"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.to_string();
            let version = words.next()?.trim_start_matches('v').to_string();
            Some((name, version))
        })
        .collect()
}

#[test]
fn one_tls_stack_is_built() {
    // rustls 0.23 on aws-lc over hyper 1, for the AWS SDK and reqwest alike; the SDK crates'
    // default `rustls` feature would add the legacy hyper 0.14 / rustls 0.21 / ring stack
    let packages = built_packages();
    assert!(
        packages.iter().any(|(n, _)| n == "aws-lc-rs"),
        "aws-lc-rs is the TLS provider: {packages:?}"
    );
    let legacy: Vec<String> = packages
        .iter()
        .filter(|(n, v)| {
            n == "ring"
                || n == "openssl-sys"
                || n == "native-tls"
                || (n == "hyper" && v.starts_with("0."))
                || (n == "rustls" && !v.starts_with("0.23"))
        })
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    assert!(
        legacy.is_empty(),
        "a second TLS stack is built: {legacy:?} (build the AWS SDK crates with \
         default-features = false and `default-https-client`)"
    );
}

/// The integration-test binaries cargo builds for the crate in `dir`: its `[[test]]` targets
/// and, unless `autotests = false`, the ones it finds itself (`tests/*.rs`, `tests/*/main.rs`).
fn test_binaries(dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut names = Vec::new();
    let mut in_test = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_test = line == "[[test]]";
        } else if let Some(value) = line.strip_prefix("name").filter(|_| in_test) {
            names.push(
                value
                    .trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    let automatic = !manifest
        .lines()
        .any(|l| l.replace(' ', "") == "autotests=false");
    if automatic && let Ok(entries) = std::fs::read_dir(dir.join("tests")) {
        for path in entries.flatten().map(|e| e.path()) {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let is_test = if path.is_dir() {
                path.join("main.rs").is_file()
            } else {
                path.extension().is_some_and(|e| e == "rs")
            };
            if is_test && !names.contains(&stem) {
                names.push(stem);
            }
        }
    }
    names
}

#[test]
fn each_crate_has_one_integration_test_binary_beside_tidy() {
    // each test binary links what its crate links (the AWS SDK for most): one per crate keeps
    // a clean build of the tests small and quick
    let root = workspace_root();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = workspace
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("the workspace lists its members");
    let crates: Vec<&str> = members.split('"').skip(1).step_by(2).collect();
    assert!(crates.contains(&"worker"), "members: {members}");
    for member in crates {
        let binaries: Vec<String> = test_binaries(&root.join(member))
            .into_iter()
            .filter(|name| name != "tidy")
            .collect();
        assert!(
            binaries.len() <= 1,
            "{member} builds {} integration-test binaries, {binaries:?}: make them modules of \
             one (tests/it/main.rs, with `autotests = false` and one [[test]])",
            binaries.len()
        );
    }
}
