//! Architecture rules, enforced by `cargo test` (as rust-analyzer does): every Rust file says
//! why it exists in a `//!` first line; the core's layers name only the layers below them (the
//! engine nothing of the fleet, the providers nothing of the engine); only the adapters name
//! SQL or AWS SDK types; no Rust file is over 600 lines; no process-wide mutable globals; one
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
/// The repository's Rust files (every crate, test, bench and fuzz target), `target/` and hidden
/// directories left out, as paths relative to the workspace root with `/` separators.
fn repository_rust_files() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut out: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The top-level modules of this crate that `text` names through `crate::` (`crate::load::…`,
/// and each item of `crate::{…}`).
fn crate_roots(text: &str) -> Vec<String> {
    fn ident(s: &str) -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }
    let mut roots = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            roots.push(ident(rest));
            continue;
        };
        let (mut depth, mut item_start) = (1, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => item_start = true,
                c if c.is_whitespace() => {}
                _ if item_start && depth == 1 => {
                    roots.push(ident(&group[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    roots
}

/// Every `crate::` name in the files under `shared/src/<dir>` (a directory or one file) whose
/// top-level module is not in `allowed`, as `file names crate::module`.
fn names_outside(dir: &str, allowed: &[&str]) -> Vec<String> {
    let prefix = format!("shared/src/{dir}");
    let files: Vec<(String, String)> = repository_rust_files()
        .into_iter()
        .filter(|(path, _)| {
            path == &format!("{prefix}.rs") || path.starts_with(&format!("{prefix}/"))
        })
        .collect();
    assert!(!files.is_empty(), "no Rust file under {prefix}");
    let mut offenders = Vec::new();
    for (path, text) in files {
        for root in crate_roots(&text) {
            if !allowed.contains(&root.as_str()) {
                offenders.push(format!("{path} names crate::{root}"));
            }
        }
    }
    offenders.dedup();
    offenders
}

/// What the core's layers may name, below them: pure helpers first.
const PURE: &[&str] = &["pyvalue", "pyregex", "redact", "scope", "clock"];

#[test]
fn the_engine_names_nothing_of_the_fleet() {
    // the engine runs an experiment against providers; queues, stores, buses, locks, targets,
    // clean-up and AWS belong to the fleet and the adapters around it
    let allowed = [PURE, &["engine", "model", "load", "providers"]].concat();
    let offenders = names_outside("engine", &allowed);
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn providers_name_nothing_of_the_engine() {
    let allowed = [PURE, &["providers", "model"]].concat();
    let offenders = names_outside("providers", &allowed);
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_loader_names_nothing_of_the_engine_or_the_fleet() {
    // the loader checks what the providers can run (executables, Python signatures, natives)
    let allowed = [PURE, &["load", "model", "providers"]].concat();
    let offenders = names_outside("load", &allowed);
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn substitution_and_time_sit_below_the_engine_and_the_providers() {
    let mut offenders = names_outside("scope", &["scope", "pyvalue"]);
    offenders.extend(names_outside("clock", &[]));
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn only_the_adapters_name_sql_or_aws_sdk_types() {
    // SQLite: the embedded adapters. The AWS SDK: the AWS crate (its adapters, its fault
    // library and the client set-up beside them) and integration tests, which set up and
    // inspect moto through the SDK. The engine crate, the binaries and their shell do not.
    fn sql_allowed(path: &str) -> bool {
        path.starts_with("shared/src/adapters/")
    }
    fn sdk_allowed(path: &str) -> bool {
        path.starts_with("shared/aws/") || path.split('/').any(|part| part == "tests")
    }
    type Allowed = fn(&str) -> bool;
    let rules: [(&[&str], Allowed); 2] = [
        (&["rusqlite"], sql_allowed),
        (
            &[
                "aws_sdk_",
                "aws_config",
                "aws_smithy_",
                "aws_types",
                "aws_credential_types",
            ],
            sdk_allowed,
        ),
    ];
    let mut offenders = Vec::new();
    for (path, text) in repository_rust_files() {
        if path == "shared/tests/tidy.rs" {
            continue;
        }
        for (names, allowed) in &rules {
            for name in *names {
                if text.contains(name) && !allowed(&path) {
                    offenders.push(format!("{path} names `{name}`"));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The longest a Rust file may be, tests included.
const MAX_LINES: usize = 600;

/// Files allowed over `MAX_LINES`, each with its reason: none. A listed file that is within the
/// limit (or gone) fails the test too, so an exception never outlives its reason.
const OVER_MAX_LINES_ALLOWED: &[&str] = &[];

#[test]
fn no_rust_file_is_over_600_lines() {
    let mut over = Vec::new();
    let mut no_longer_over = Vec::new();
    let files = repository_rust_files();
    for (path, text) in &files {
        let lines = text.lines().count();
        let listed = OVER_MAX_LINES_ALLOWED.contains(&path.as_str());
        if lines > MAX_LINES && !listed {
            over.push(format!("{path}: {lines} lines"));
        }
        if lines <= MAX_LINES && listed {
            no_longer_over.push(path.clone());
        }
    }
    let gone: Vec<&&str> = OVER_MAX_LINES_ALLOWED
        .iter()
        .filter(|listed| !files.iter().any(|(path, _)| path == *listed))
        .collect();
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines (split them by job): {over:#?}"
    );
    assert!(
        no_longer_over.is_empty() && gone.is_empty(),
        "take these off OVER_MAX_LINES_ALLOWED: {no_longer_over:?} (within the limit), {gone:?} (gone)"
    );
}

/// Process-wide state allowed in library and binary code, each with its reason (everything else
/// is a value the binaries build and hand down). Same rule as `OVER_MAX_LINES_ALLOWED`.
const GLOBALS_ALLOWED: &[&str] = &[
    // `BROKER_MAX_DOCUMENT_BYTES`: read from the environment once, immutable after; both
    // binaries check it at start (exit 2 on a bad value), so no load sees it change
    "shared/src/load/document.rs",
];

/// Whether `line` declares process-wide mutable state: a `static` holding a lock, a lazily or
/// once initialised value, an atomic or a cell; a `static mut`; a thread-local.
fn declares_a_global(line: &str) -> bool {
    let code = line.trim_start();
    let code = code.strip_prefix("pub(crate) ").unwrap_or(code);
    let code = code.strip_prefix("pub ").unwrap_or(code);
    if code.starts_with("thread_local!") || code.starts_with("static mut ") {
        return true;
    }
    code.starts_with("static ")
        && [
            "OnceLock", "LazyLock", "OnceCell", "Lazy<", "Mutex", "RwLock", "Atomic", "Cell<",
        ]
        .iter()
        .any(|kind| code.contains(kind))
}

#[test]
fn no_process_wide_mutable_globals() {
    // integration tests may count and serialise among themselves; the code they test may not
    let files: Vec<(String, String)> = repository_rust_files()
        .into_iter()
        .filter(|(path, _)| {
            !path
                .split('/')
                .any(|part| part == "tests" || part == "benches")
        })
        .collect();
    let mut offenders = Vec::new();
    let mut no_longer = Vec::new();
    for (path, text) in &files {
        let globals: Vec<&str> = text.lines().filter(|l| declares_a_global(l)).collect();
        let listed = GLOBALS_ALLOWED.contains(&path.as_str());
        if !globals.is_empty() && !listed {
            offenders.push(format!("{path}: {globals:?}"));
        }
        if globals.is_empty() && listed {
            no_longer.push(path.clone());
        }
    }
    for listed in GLOBALS_ALLOWED {
        if !files.iter().any(|(path, _)| path == listed) {
            no_longer.push(listed.to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "process-wide mutable state (build a value once and hand it down): {offenders:#?}"
    );
    assert!(
        no_longer.is_empty(),
        "take these off GLOBALS_ALLOWED: {no_longer:?}"
    );
}

#[test]
fn the_globals_rule_sees_what_it_is_meant_to() {
    for (line, global) in [
        (
            "static SDK: OnceCell<SdkConfig> = OnceCell::const_new();",
            true,
        ),
        ("    static CAP: OnceLock<usize> = OnceLock::new();", true),
        ("pub static N: AtomicU32 = AtomicU32::new(0);", true),
        (
            "pub(crate) static M: std::sync::Mutex<()> = Mutex::new(());",
            true,
        ),
        ("static mut COUNT: u32 = 0;", true),
        (
            "thread_local! { static X: RefCell<u8> = RefCell::new(0) }",
            true,
        ),
        ("static NAMES: &[&str] = &[\"a\"];", false),
        ("const LIMIT: usize = 600;", false),
        ("let lock = Mutex::new(());", false),
    ] {
        assert_eq!(declares_a_global(line), global, "{line}");
    }
}

#[test]
fn crate_roots_read_paths_and_groups() {
    assert_eq!(
        crate_roots(
            "use crate::load::x;\nuse crate::{model::A, scope::{B, C}, clock};\nlet t = crate::engine::f();"
        ),
        ["load", "model", "scope", "clock", "engine"]
    );
}

/// The AWS crate holds adapters and faults; the command line (clap) and the choice of adapters
/// live with the binaries, in the `cli` crate.
#[test]
fn the_aws_crate_holds_no_command_line() {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("shared/aws/Cargo.toml")).unwrap();
    assert!(
        !manifest.lines().any(|l| l.trim_start().starts_with("clap")),
        "shared/aws/Cargo.toml depends on clap: flags belong in shared/cli"
    );
    let named: Vec<String> = repository_rust_files()
        .into_iter()
        .filter(|(path, text)| path.starts_with("shared/aws/src/") && text.contains("clap::"))
        .map(|(path, _)| path)
        .collect();
    assert!(named.is_empty(), "clap named in the AWS crate: {named:?}");
}
