#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
#
# Needs: the Rust toolchain (with rustfmt and clippy) and Python 3 (the conformance suite's
# checker and HTTP server, and the python provider's tests, use the standard library only).
# The conformance suite is read from ../shared/conformance beside the repository, or from
# $BROKER_CONFORMANCE_DIR. Anything missing fails the run with a message; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is required (install the Rust toolchain)"
command -v python3 >/dev/null || fail "python3 is required by the conformance suite and the python provider tests"
conformance="${BROKER_CONFORMANCE_DIR:-../shared/conformance}"
[ -x "$conformance/check.sh" ] || [ -f "$conformance/check.sh" ] \
  || fail "the conformance suite is missing: expected $conformance/check.sh (set BROKER_CONFORMANCE_DIR)"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo build --release (the conformance suite runs the release worker)"
cargo build --release -p worker
echo "==> cargo test"
BROKER_WORKER_BIN="$PWD/target/release/worker" cargo test --workspace
