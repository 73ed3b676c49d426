#!/usr/bin/env python3
"""Fleet benchmark (see bench/README.md): embedded `producer run` of one wave of N trivial jobs,
and of W waves of one job for the wave gating latency.

    bench/fleet.py PRODUCER [--sizes 1000,10000] [--waves 10] [--workers 4] [--out FILE]

Prints ms/job at each size, the growth ratio (ms/job at the largest size over the smallest),
and the gating latency: for each wave after the first, from the moment the previous wave's job was
complete (its journal stored: the file's link into place, its inode's ctime; the completion
event is published right after) to the moment the next wave's job was leased (its `started`
marker's `at`, taken right after the lease). That span includes publishing the completion
event, the producer's wake-up, recording and releasing the wave, and the worker's wake-up and
lease. Also printed: the same from the journal's `end` (its durable write included).
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
TRIVIAL = os.path.join(BENCH_DIR, "experiments", "trivial.json")


def ts(text):
    return datetime.datetime.fromisoformat(text).timestamp()


def run_suite(producer, workdir, waves, workers):
    """Write a suite of `waves` (a list of job counts) beside trivial.json and run it; returns
    (wall seconds, state directory, suite run id)."""
    shutil.copy(TRIVIAL, os.path.join(workdir, "trivial.json"))
    suite = {"name": "bench", "waves": [{"experiments": ["trivial.json"] * n} for n in waves]}
    path = os.path.join(workdir, "suite.json")
    with open(path, "w") as f:
        json.dump(suite, f)
    state = os.path.join(workdir, "state")
    cmd = [producer, "run", "--workers", str(workers), "--state-dir", state, path]
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"fleet bench: {' '.join(cmd)} exited {out.returncode}\n{out.stderr[-2000:]}")
    ids = os.listdir(os.path.join(state, "store", "suite-runs"))
    return wall, state, ids[0]


def gating(state, run_id, waves):
    """Per wave after the first: (journal stored -> next job leased, journal end -> leased), ms.
    The journal is stored when its file is linked into place (its inode's ctime); the
    completion event is published right after."""
    runs = os.path.join(state, "store", "runs", run_id)
    stored_gaps, end_gaps = [], []
    for w in range(1, waves):
        journal = os.path.join(runs, f"w{w - 1}-j0", "journal.json")
        with open(journal) as f:
            ended = ts(json.load(f)["end"])
        stored = os.stat(journal).st_ctime
        with open(os.path.join(runs, f"w{w}-j0", "started")) as f:
            leased = ts(json.load(f)["at"])
        stored_gaps.append((leased - stored) * 1000)
        end_gaps.append((leased - ended) * 1000)
    return stored_gaps, end_gaps


def status_time(producer, state, run_id, workdir):
    started = time.perf_counter()
    out = subprocess.run([producer, "status", "--json", "--state-dir", state, run_id],
                         cwd=workdir, capture_output=True, text=True)
    took = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"fleet bench: producer status exited {out.returncode}\n{out.stderr[-2000:]}")
    doc = json.loads(out.stdout)
    assert doc["completed"] == doc["jobs"], "every job completed"
    return took * 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("producer")
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--waves", type=int, default=10)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--out")
    a = p.parse_args()
    a.producer = os.path.abspath(a.producer)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    per_job = {}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="fleet-bench-") as d:
            wall, state, run_id = run_suite(a.producer, d, [n], a.workers)
            status_ms = status_time(a.producer, state, run_id, d)
        per_job[n] = wall * 1000 / n
        rows.append(f"| one wave of {n:,} | {wall:.1f} s | {per_job[n]:.2f} | {status_ms:.0f} ms |")
        print(f"fleet: {n} jobs: {wall:.2f} s, {per_job[n]:.2f} ms/job, status {status_ms:.0f} ms",
              file=sys.stderr)
    growth = per_job[sizes[-1]] / per_job[sizes[0]]
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as d:
        _, state, run_id = run_suite(a.producer, d, [1] * a.waves, a.workers)
        gaps, end_gaps = gating(state, run_id, a.waves)
    gaps.sort()
    median = statistics.median(gaps)
    lines = [
        "| suite | wall | ms/job | `producer status --json` |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Growth ratio (ms/job at {sizes[-1]:,} over {sizes[0]:,}): **{growth:.2f}x**",
        "",
        f"Wave gating ({a.waves} waves of one job, {len(gaps)} gaps), journal stored -> next "
        f"wave's job leased: median **{median:.1f} ms**, min {gaps[0]:.1f} ms, max "
        f"{gaps[-1]:.1f} ms; from the journal's end (its write included): median "
        f"{statistics.median(end_gaps):.1f} ms",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
