#!/usr/bin/env python3
"""Measurement helper for bench/run.sh.

  measure.py sample RAW.tsv EXPERIMENT TOOL -- CMD [ARG...]
      Runs CMD twice, each time in a fresh temporary working directory
      (every "{tmp}" in the arguments is replaced by that directory), with
      stdin/stdout/stderr on /dev/null, and appends one line to RAW.tsv:
          EXPERIMENT  TOOL  WALL_MS  PEAK_RSS_KIB
      Exits 1 if either run exits non-zero.

      Run 1 measures wall time: perf_counter() around spawning CMD directly
      and reaping it with os.wait4().

      Run 2 measures peak RSS: CMD is started under GNU time (/usr/bin/time),
      which reaps it with wait4() and reports the child's ru_maxrss (KiB).
      Why not simply use ru_maxrss from our own wait4() in run 1? Because on
      Linux a process's ru_maxrss starts at the high-water RSS of the memory
      image it had before execve(), i.e. a copy of *this Python process*
      (~10-14 MiB). That would hide anything smaller, such as the worker.
      GNU time is a small C program (~1 MiB), so the floor it adds is
      negligible. It costs ~1 ms of extra wall time, which is why the timed
      run is a separate run that does not use it.

      ru_maxrss covers the direct child (the runner). Its reaped children
      (the /bin/true processes) count too, but they are far smaller.

  measure.py floor RAW.tsv EXPERIMENT FILE
      The floor for EXPERIMENT: what a runner that did nothing but start and
      spawn the experiment's processes would take on this machine, measured
      the way the tools are. It runs /bin/true 1 + K times, each spawned and
      reaped exactly as run 1 above spawns a tool, where K is the number of
      process activities the experiment runs (its hypothesis probes twice,
      before and after, then its method and rollbacks), and appends the sum
      as tool "floor". chaos / floor is the best ratio any runner could reach
      here: see bench/README.md "Where the time goes".

  measure.py report RAW.tsv OUT.md [NOTE...]
      Prints a table (one row per experiment: medians with p10-p90, the ratio
      of the medians, median peak RSS) in the shape of bench/README.md's, and
      writes it, after the NOTE lines, to OUT.md.
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

GNU_TIME = "/usr/bin/time"


def run_timed(argv, cwd):
    """Run argv once; return (wall_ms, exit_code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, _ = os.wait4(proc.pid, 0)
    wall_ms = (time.perf_counter() - start) * 1000.0
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
    return wall_ms, proc.returncode


def run_rss(argv, cwd):
    """Run argv once under GNU time; return (peak_rss_kib, exit_code)."""
    report = os.path.join(cwd, ".gnu-time")
    code = subprocess.call([GNU_TIME, "-f", "%M", "-o", report, *argv], cwd=cwd,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    with open(report) as f:
        # GNU time writes "Command exited with non-zero status N" first on failure.
        rss_kib = int(f.read().split()[-1])
    return rss_kib, code


def sample(raw_path, experiment, tool, cmd):
    results = []
    for measure in (run_timed, run_rss):
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            argv = [arg.replace("{tmp}", tmp) for arg in cmd]
            value, code = measure(argv, tmp)
        if code != 0:
            print(f"FAILED ({tool}, {experiment}): exit code {code} from: {' '.join(cmd)}",
                  file=sys.stderr)
            return 1
        results.append(value)
    wall_ms, rss_kib = results
    with open(raw_path, "a") as f:
        f.write(f"{experiment}\t{tool}\t{wall_ms:.3f}\t{rss_kib}\n")
    return 0


def process_activities(experiment_file):
    """How many processes an experiment of process providers spawns when it holds."""
    import json
    with open(experiment_file) as f:
        experiment = json.load(f)
    def processes(activities):
        return sum(1 for a in activities if a.get("provider", {}).get("type") == "process")
    probes = experiment.get("steady-state-hypothesis", {}).get("probes", [])
    return (2 * processes(probes) + processes(experiment.get("method", []))
            + processes(experiment.get("rollbacks", [])))


def floor(raw_path, experiment, experiment_file):
    spawns = 1 + process_activities(experiment_file)
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for _ in range(spawns):
            wall_ms, code = run_timed(["/bin/true"], tmp)
            if code != 0:
                print(f"FAILED (floor): /bin/true exited {code}", file=sys.stderr)
                return 1
            total += wall_ms
    with open(raw_path, "a") as f:
        f.write(f"{experiment}\tfloor\t{total:.3f}\t0\n")
    return 0


def quantiles(values):
    """(p10, median, p90) of a list of at least two numbers."""
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return deciles[0], statistics.median(values), deciles[8]


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or "?"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def report(raw_path, out_path, notes):
    walls, rsss = defaultdict(list), defaultdict(list)
    with open(raw_path) as f:
        for line in f:
            experiment, tool, wall_ms, rss_kib = line.split("\t")
            walls[experiment, tool].append(float(wall_ms))
            rsss[experiment, tool].append(int(rss_kib) / 1024.0)

    # One row per experiment, in the shape of bench/README.md's table.
    header = ["experiment", "runs", "`worker run` ms", "`chaos run` ms", "chaos / worker",
              "peak RSS worker / chaos MiB", "floor ms", "chaos / floor"]
    rows = []
    for experiment in dict.fromkeys(exp for exp, _ in walls):
        cells, medians = {}, {}
        for tool in ("worker", "chaos"):
            p10, med, p90 = quantiles(walls[experiment, tool])
            medians[tool] = med
            cells[tool] = f"{med:.1f} ({p10:.1f}-{p90:.1f})"
        rss = {tool: statistics.median(rsss[experiment, tool]) for tool in ("worker", "chaos")}
        runs = min(len(walls[experiment, tool]) for tool in ("worker", "chaos"))
        row = [f"`{experiment}`", str(runs), cells["worker"], cells["chaos"],
               f"**{medians['chaos'] / medians['worker']:.0f}x**",
               f"{rss['worker']:.1f} / {rss['chaos']:.1f}", "-", "-"]
        if walls[experiment, "floor"]:
            p10, med, p90 = quantiles(walls[experiment, "floor"])
            row[6] = f"{med:.1f} ({p10:.1f}-{p90:.1f})"
            row[7] = f"{medians['chaos'] / med:.0f}x"
        rows.append(row)

    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    table = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    table += [line(r) for r in rows]

    context = [f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs "
               f"({cpu_model()}), Linux {platform.release()}, load average "
               f"{os.getloadavg()[0]:.1f} at the end", *notes]
    text = "\n".join(table)
    print(text)
    with open(out_path, "w") as f:
        f.write("# Benchmark: worker run vs chaos run\n\n")
        f.write("".join(f"- {note}\n" for note in context))
        f.write(f"\n{text}\n\n"
                "Wall time per whole process, spawn to exit: median (p10-p90); peak RSS: "
                "median ru_maxrss (see bench/README.md). The ratio is of the medians. Floor: "
                "/bin/true started once plus once per process the experiment runs, by the same "
                "harness; chaos / floor is the best ratio a runner could reach here.\n")
    return 0


def main(args):
    if len(args) >= 6 and args[0] == "sample" and args[4] == "--":
        return sample(args[1], args[2], args[3], args[5:])
    if len(args) == 4 and args[0] == "floor":
        return floor(args[1], args[2], args[3])
    if len(args) >= 3 and args[0] == "report":
        return report(args[1], args[2], args[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
