//! Links the release `worker` with the functions a run executes side by side, in the order of
//! `link-order.txt` (written by `scripts/link-order.sh`). The kernel maps a binary's code in
//! blocks around each first touch: scattered over 17 MB, the ~720 functions `worker run`
//! executes (0.9 MB of code) had it map 4.8 MiB; packed together, about 1 MiB, and the peak RSS
//! of a run falls from 10.4 to 6.3 MiB (bench/README.md, "Peak RSS"). Only the layout changes:
//! the same code, the same behaviour.
//!
//! Only release builds for `x86_64-unknown-linux-gnu`: rustc links them with its own lld, and
//! the list names that target's symbols. `BROKER_LINK_ORDER=off` leaves the option out (for a
//! linker without `--symbol-ordering-file`, such as GNU ld). The names carry a hash of the
//! toolchain and of the dependencies: the list's header says which it was written for, and a
//! build with others warns that the list is stale (the names it lacks are skipped).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-changed=../Cargo.lock");
    println!("cargo:rerun-if-env-changed=BROKER_LINK_ORDER");
    let var = |key| std::env::var(key).unwrap_or_default();
    let dir = Path::new(&var("CARGO_MANIFEST_DIR")).to_path_buf();
    let list = dir.join("link-order.txt");
    if var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("BROKER_LINK_ORDER") == "off"
        || !list.is_file()
    {
        return;
    }
    let arg = "cargo:rustc-link-arg-bin=worker";
    println!("{arg}=-Wl,--symbol-ordering-file={}", list.display());
    println!("{arg}=-Wl,--no-warn-symbol-ordering");

    let header = std::fs::read_to_string(&list).unwrap_or_default();
    let rustc = Command::new(var("RUSTC"))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let lock = std::fs::read(dir.join("../Cargo.lock")).unwrap_or_default();
    for (what, now) in [
        ("toolchain", format!("# {rustc}")),
        (
            "Cargo.lock",
            format!("# Cargo.lock fnv1a64 {:016x}", fnv1a64(&lock)),
        ),
    ] {
        if !header
            .lines()
            .take_while(|l| l.starts_with('#'))
            .any(|l| l == now)
        {
            println!(
                "cargo:warning=worker/link-order.txt was written for another {what}: \
                 the release worker then starts with ~3.5 MiB more memory; \
                 run scripts/link-order.sh to write it for this one"
            );
        }
    }
}

/// FNV-1a, 64 bits: a fingerprint of `Cargo.lock` that scripts/link-order.sh computes alike.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
