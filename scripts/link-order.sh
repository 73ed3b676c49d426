#!/usr/bin/env bash
# Writes worker/link-order.txt: the functions of the release `worker` that `worker run` and
# `worker validate` execute on the benchmark's experiments, which worker/build.rs has the link
# place side by side (bench/README.md, "Peak RSS").
#
# Run it after a toolchain or dependency update: a symbol's name carries a hash of both, and a
# list that names none of the build's functions costs memory (about 3.5 MiB of peak RSS, which
# bench/run.sh shows), never correctness. Needs valgrind (Debian package `valgrind`) and
# x86_64 Linux; builds the worker in release (about 15 minutes on 2 cores) in
# target/link-order.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "scripts/link-order.sh: $*" >&2; exit 1; }

command -v valgrind >/dev/null || fail "valgrind is required (apt-get install valgrind)"
host="$(rustc -vV | sed -n 's/^host: //p')"
[ "$host" = x86_64-unknown-linux-gnu ] \
  || fail "the list is for x86_64-unknown-linux-gnu builds; this host is $host"

# The shipped release profile, so that every function has the name it has in a shipped build
# (the names hash the profile, not RUSTFLAGS). RUSTFLAGS replaces .cargo/config.toml's link
# options, so the profiling build keeps its symbols: `-C strip=none` overrides the profile's
# strip, and local symbols are not discarded.
export CARGO_TARGET_DIR="$PWD/target/link-order"
RUSTFLAGS="-C strip=none" cargo build --release -p worker
bin="$CARGO_TARGET_DIR/release/worker"
nm "$bin" | grep ' T main$' >/dev/null || fail "$bin has no symbol table"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
n=0
for experiment in bench/experiments/*.json; do
  for cmd in run validate; do
    n=$((n + 1))
    args=("$cmd")
    [ "$cmd" = run ] && args+=(--journal-path "$work/journal.json")
    valgrind --quiet --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.$n" \
      "$bin" "${args[@]}" "$experiment" >/dev/null 2>"$work/valgrind.log" \
      || { cat "$work/valgrind.log" >&2; fail "worker $cmd $experiment failed under valgrind"; }
  done
done

# The functions of the worker binary in the profiles: callgrind names each function once,
# `fn=(id) name` or `cfn=(id) name`, under the object (`ob=`/`cob=`) it is in; `'N` marks a
# recursion depth; a function without a symbol is named by its address.
python3 - "$bin" "$work"/callgrind.* >worker/link-order.txt <<'PY'
import os, re, subprocess, sys
binary, profiles = os.path.realpath(sys.argv[1]), sys.argv[2:]
line_re = re.compile(r"^(ob|cob|fn|cfn)=\((\d+)\)(?: (.*))?$")
names = set()
for path in profiles:
    objects, functions, ob, cob = {}, {}, None, None
    for line in open(path):
        m = line_re.match(line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        if kind in ("ob", "cob"):
            if name:
                objects[ident] = name
            if kind == "ob":
                ob = objects[ident]
            else:
                cob = objects[ident]
            continue
        if name:
            functions[ident] = name
        obj = (cob or ob) if kind == "cfn" else ob
        if kind == "cfn":
            cob = None
        if obj and os.path.realpath(obj) == binary:
            names.add(re.sub(r"'\d+$", "", functions[ident]))
names = sorted(n for n in names if not n.startswith("0x") and n != "(below main)")
if len(names) < 100:
    sys.exit(f"only {len(names)} functions of {binary} in the profiles: not a usable list")
# the header worker/build.rs compares with the build's toolchain and Cargo.lock (lld skips
# lines that begin with #)
h = 0xCBF29CE484222325
for b in open("Cargo.lock", "rb").read():
    h = ((h ^ b) * 0x100000001B3) % 2**64
rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True, check=True).stdout.strip()
print("# worker/link-order.txt: written by scripts/link-order.sh, read by worker/build.rs")
print(f"# {rustc}")
print(f"# Cargo.lock fnv1a64 {h:016x}")
print("\n".join(names))
PY
echo "wrote worker/link-order.txt: $(grep -vc '^#' worker/link-order.txt) functions"
