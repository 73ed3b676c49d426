//! Links the release `worker` with the functions a run executes side by side, in the order of
//! `link-order.txt` (written by `scripts/link-order.sh`). The kernel maps a binary's code in
//! blocks around each first touch: scattered over 17 MB, the ~720 functions `worker run`
//! executes (0.9 MB of code) had it map 4.8 MiB; packed together, about 1 MiB, and the peak RSS
//! of a run falls from 10.0 to 6.4 MiB (bench/README.md, "Peak RSS"). Only the layout changes:
//! the same code, the same behaviour.
//!
//! Only release builds for `x86_64-unknown-linux-gnu`: rustc links them with its own lld, and
//! the list names that target's symbols. `BROKER_LINK_ORDER=off` leaves the option out (for a
//! linker without `--symbol-ordering-file`, such as GNU ld). A name the build does not have (a
//! list older than the toolchain or the dependencies, whose hashes the names carry) is skipped.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=BROKER_LINK_ORDER");
    let var = |key| std::env::var(key).unwrap_or_default();
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("BROKER_LINK_ORDER") != "off"
        && list.is_file()
    {
        let arg = "cargo:rustc-link-arg-bin=worker";
        println!("{arg}=-Wl,--symbol-ordering-file={}", list.display());
        println!("{arg}=-Wl,--no-warn-symbol-ordering");
    }
}
