#!/usr/bin/env bash
# Compare whole-process wall time and peak RSS of `worker run` against the
# reference `chaos run` (chaostoolkit 1.21.4). See bench/README.md.
#
#   bench/run.sh                      # 30 runs of each tool per experiment
#   BENCH_RUNS=100 bench/run.sh       # more runs
#   WORKER=/path/to/worker bench/run.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
RUNS=${BENCH_RUNS:-30}
CHAOS_VERSION=1.21.4
VENV=$BENCH_DIR/.venv
RESULTS=$BENCH_DIR/results
EXPERIMENTS=(trivial twenty-actions)

die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 2 ]] || die "BENCH_RUNS must be a whole number >= 2 (got '$RUNS')"
[[ -x /usr/bin/time ]] || die "GNU time is needed at /usr/bin/time to measure peak RSS (apt-get install time)"

# 1. A Python >= 3.12 (only needed to create the virtualenv).
is_python_312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
    local candidates=(python3.13 python3.12)
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root=$(pyenv root)
        # Newest first.
        candidates+=($(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV || true))
    fi
    candidates+=(python3)
    local candidate
    for candidate in "${candidates[@]}"; do
        if is_python_312 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# 2. The virtualenv with chaostoolkit, created or reused.
if ! is_python_312 "$VENV/bin/python"; then
    PYTHON=$(find_python) || die "no Python >= 3.12 found (tried python3.13, python3.12, pyenv versions 3.12+, python3); install one, e.g. 'pyenv install 3.12'"
    say "creating $VENV with $PYTHON ($("$PYTHON" --version))"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("chaostoolkit"))' 2>/dev/null || true)
if [[ $installed != "$CHAOS_VERSION" ]]; then
    say "installing chaostoolkit==$CHAOS_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "chaostoolkit==$CHAOS_VERSION"
fi
PY=$VENV/bin/python
CHAOS=$VENV/bin/chaos

# 3. The worker binary: built (or found up to date) by cargo, unless $WORKER names one.
if [[ -z ${WORKER:-} ]]; then
    WORKER=$REPO_DIR/target/release/worker
    say "building $WORKER (cargo build --release -p worker; a no-op when up to date)"
    (cd "$REPO_DIR" && cargo build --release -p worker)
fi
[[ -x $WORKER ]] || die "WORKER=$WORKER is not an executable file"
WORKER_BUILT=$(date -u -r "$WORKER" '+%F %T UTC')
WORKER_BYTES=$(stat -c %s "$WORKER")
WORKER_SIZE="$(awk -v b="$WORKER_BYTES" 'BEGIN { printf "%.1f MB (%.1f MiB)", b / 1e6, b / 1048576 }')"
mkdir -p "$RESULTS"
# Benchmark a copy, so that a rebuild during the run cannot mix two binaries.
WORKER_COPY=$RESULTS/worker
cp "$WORKER" "$WORKER_COPY"
# ...then out of the page cache, to be read back from disk as an installed binary is. How a
# file came into the cache (written by cp or the linker, or read) sets the size of the pages
# the kernel holds it in and maps at a fault, and so the worker's peak RSS by up to 1 MiB
# (bench/README.md, "Where the time goes"); read back, the figure no longer depends on how the binary was made.
"$PY" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$WORKER_COPY"

# 4-5. Measure: N samples per tool and experiment, the tools interleaved.
# Every run gets a fresh temporary working directory ({tmp}, see measure.py).
RAW=$RESULTS/raw.tsv
: >"$RAW"

sample() { # RAW EXPERIMENT TOOL: one sample of TOOL on EXPERIMENT, appended to RAW
    local raw=$1 experiment=$2 tool=$3 file=$BENCH_DIR/experiments/$2.json
    local cmd
    if [[ $tool == worker ]]; then
        cmd=("$WORKER_COPY" run --journal-path '{tmp}/journal.json' "$file")
    else
        cmd=("$CHAOS" --no-version-check run --journal-path '{tmp}/journal.json' "$file")
    fi
    # measure.py exits 1 if the run fails, and set -e then stops the benchmark.
    "$PY" "$BENCH_DIR/measure.py" sample "$raw" "$experiment" "$tool" -- "${cmd[@]}"
}

say "worker: $WORKER (built $WORKER_BUILT), run from a copy at $WORKER_COPY"
say "chaos:  $CHAOS ($("$CHAOS" --no-version-check --version 2>&1 | tail -n 1))"
for experiment in "${EXPERIMENTS[@]}"; do
    # One warm-up sample of each (page cache, .pyc files), not recorded.
    sample /dev/null "$experiment" worker
    sample /dev/null "$experiment" chaos
    for ((i = 1; i <= RUNS; i++)); do
        [[ -t 2 ]] && printf '\rbench: %s: sample %d/%d ' "$experiment" "$i" "$RUNS" >&2
        # Alternate which tool goes first, so neither always follows the other.
        if ((i % 2)); then order=(worker chaos); else order=(chaos worker); fi
        for tool in "${order[@]}"; do
            sample "$RAW" "$experiment" "$tool"
        done
        "$PY" "$BENCH_DIR/measure.py" floor "$RAW" "$experiment" "$BENCH_DIR/experiments/$experiment.json"
    done
    [[ -t 2 ]] && echo >&2
    say "$experiment: $RUNS samples of each tool done"
done

# 6. Report.
"$PY" "$BENCH_DIR/measure.py" report "$RAW" "$RESULTS/latest.md" \
    "command: BENCH_RUNS=$RUNS bench/run.sh" \
    "worker: $WORKER ($("$WORKER_COPY" --version), built $WORKER_BUILT; repo HEAD $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?'))" \
    "worker binary: $WORKER_SIZE" \
    "working directories: ${TMPDIR:-/tmp} ($(df --output=fstype "${TMPDIR:-/tmp}" | tail -n 1); the worker fsyncs its journal, chaos does not)" \
    "chaos: chaostoolkit $CHAOS_VERSION on $("$PY" --version)"
say "wrote $RESULTS/latest.md (raw samples: $RAW)"
