#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
#
# Needs: the Rust toolchain (with rustfmt and clippy), Python 3 with pip and venv, and PyPI.
# It installs the AWS emulator (moto server), cfn-lint and the Chaos Toolkit's `chaos report`
# into target/test-venv (pinned in
# scripts/test-requirements.txt), lints infra/, starts the emulator on 127.0.0.1 and points the
# AWS tests at it (BROKER_TEST_AWS_ENDPOINT). The conformance corpus is the repository's own
# (worker/tests/conformance, recorded from the reference by scripts/record-conformance.sh);
# the external suite (../shared/conformance beside the repository, or $BROKER_CONFORMANCE_DIR)
# runs as well when it is there. Anything else missing fails the run with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is required (install the Rust toolchain)"

# The SSM document tests (shared/aws/tests/it/ssm_documents/) run the documents for real, the
# HTML report is rendered by headless Chromium (producer/tests/it/report.rs), and `chaos report`
# (worker/tests/it/chaos_report.rs) converts through pandoc: they need these programs (Debian package
# after the colon) and install the missing ones.
doc_tools="stress-ng:stress-ng iptables:iptables ip:iproute2 tc:iproute2 pgrep:procps pkill:procps
  ps:procps kill:procps setsid:util-linux flock:util-linux unshare:util-linux fallocate:util-linux
  chromium:chromium pandoc:pandoc"
have() {  # an executable, not a shell builtin, wherever sbin is or is not in PATH
  local dir
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -x "$dir/$1" ] && return 0
  done
  return 1
}
missing_packages() {
  local pair
  for pair in $doc_tools; do have "${pair%%:*}" || echo "${pair#*:}"; done | sort -u | tr '\n' ' '
}
missing="$(missing_packages)"
if [ -n "$missing" ]; then
  echo "==> system packages for the SSM document tests and chaos report: $missing"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null \
      || fail "the SSM document tests need: $missing; not root and no sudo: install them (apt-get install -y $missing)"
    as_root=(sudo)
  fi
  command -v apt-get >/dev/null \
    || fail "the SSM document tests need: $missing; apt-get is not here: install them with the system's package manager"
  # shellcheck disable=SC2086 # one word per package
  apt_install() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing; }
  apt_install || { "${as_root[@]}" apt-get update && apt_install; } \
    || fail "cannot install $missing with apt-get (the SSM document tests need them)"
  missing="$(missing_packages)"
  [ -z "$missing" ] || fail "still missing after apt-get install: $missing"
fi
command -v python3 >/dev/null || fail "python3 is required by the conformance corpus and the python provider tests"
conformance="${BROKER_CONFORMANCE_DIR:-../shared/conformance}"
if [ -f "$conformance/check.sh" ]; then
  echo "==> external conformance suite: $conformance (runs beside the in-repo corpus)"
  BROKER_CONFORMANCE_DIR="$(cd "$conformance" && pwd)"
  export BROKER_CONFORMANCE_DIR
else
  echo "==> external conformance suite: absent ($conformance/check.sh), not run;" \
    "the in-repo corpus worker/tests/conformance is the required one and runs"
fi

venv="${BROKER_TEST_VENV:-$PWD/target/test-venv}"
echo "==> Python test tools in $venv (scripts/test-requirements.txt)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "cannot create a Python venv at $venv (python3 -m venv; on Debian install python3-venv)"
fi
# --no-compile: Python compiles what the tests import when they import it; pip would compile
# every module of every package up front (0.15 GB of .pyc under target/, mostly never read)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile -r scripts/test-requirements.txt \
  || fail "cannot install moto[server], cfn-lint and chaostoolkit-reporting from PyPI (scripts/test-requirements.txt)"

echo "==> cfn-lint infra/"
"$venv/bin/cfn-lint" infra/*.yaml

echo "==> moto server on 127.0.0.1"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p target
# moto records every request it serves: the fault tests read what was really sent (moto's
# own ListCommands lists every instance of the region for a command sent to a few)
rm -f target/moto-recording.jsonl
MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH="$PWD/target/moto-recording.jsonl" \
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
"$venv/bin/python" - "$port" <<'PY' || { cat target/moto.log >&2; fail "the moto server did not start on 127.0.0.1:$port (log above)"; }
import sys, time, urllib.request
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2)
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"moto server not answering: {e}")
        time.sleep(0.2)
PY
export BROKER_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export BROKER_TEST_MOTO_RECORDING="$PWD/target/moto-recording.jsonl"

# one clean build, nothing to reuse: incremental caches would only take disk space
export CARGO_INCREMENTAL=0

echo "==> cargo fmt --check"
cargo fmt --all -- --check
# Clippy and the test build are one compilation: with clippy-driver as the workspace's rustc
# wrapper (how `cargo clippy` itself drives it; CLIPPY_ARGS is how it passes `-D warnings`), every
# target of ours is linted while it is built, and the dependencies (the AWS SDK above all) are
# compiled once instead of checked once for clippy and built again for the tests. `--all-targets`
# takes in the benchmarks, as `cargo clippy --all-targets` does. The same environment stays set
# for the run below, so it reuses these artifacts.
echo "==> cargo clippy + build (clippy-driver lints every target while building it)"
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
[ -x "$RUSTC_WORKSPACE_WRAPPER" ] || fail "clippy is required: rustup component add clippy"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --all-targets --no-run
# One dev build serves every test (the conformance corpus and the hostile-file tests run the
# dev `worker`; BROKER_WORKER_BIN=<path> points the worker's tests at another build, e.g. a
# release one), one integration-test binary per crate: no release build here (bench/run.sh
# makes its own).
echo "==> cargo test"
cargo test --workspace
echo "==> done; target/ takes $(du -sh target | cut -f1)"
