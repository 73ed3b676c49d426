#!/usr/bin/env bash
# The load generator's benchmark: hold BENCH_LOAD_RATE requests/s (default 2000) for
# BENCH_LOAD_SECONDS (default 10) against a local server on 127.0.0.1 and report the achieved
# rate, latency from the intended send times, the generator's CPU time per request and its
# scheduling lag. See bench/README.md ("Load generator").
#
#   bench/load.sh                         # release build (the figures to quote)
#   BENCH_PROFILE=dev bench/load.sh       # the dev build the tests use (no release build)
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
profile=${BENCH_PROFILE:-release}
echo "load bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), profile $profile" >&2
if [[ $profile == release ]]; then
    exec cargo bench -p shared --bench load
else
    exec cargo bench -p shared --bench load --profile "$profile"
fi
