#!/usr/bin/env bash
# Fleet benchmark: embedded `producer run` of one wave of 1,000 and 10,000 trivial jobs
# (--workers 4) and 10 waves of one job (wave gating latency). See bench/README.md.
#
#   bench/fleet.sh                               # the release producer (built if missing)
#   PRODUCER=target/debug/producer bench/fleet.sh
#   BENCH_SIZES=1000,3000 BENCH_WAVES=20 bench/fleet.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
if [[ -z ${PRODUCER:-} ]]; then
    PRODUCER=$REPO_DIR/target/release/producer
    # the workspace, not -p producer: selecting one crate re-resolves features and rebuilds the SDK
    [[ -x $PRODUCER ]] || (cd "$REPO_DIR" && cargo build --release --workspace --bins)
fi
[[ -x $PRODUCER ]] || { echo "fleet: PRODUCER=$PRODUCER is not an executable file" >&2; exit 1; }
mkdir -p "$BENCH_DIR/results"
python3 "$BENCH_DIR/fleet.py" "$PRODUCER" \
    --sizes "${BENCH_SIZES:-1000,10000}" --waves "${BENCH_WAVES:-10}" \
    --workers "${BENCH_WORKERS:-4}" --out "$BENCH_DIR/results/fleet.md"
