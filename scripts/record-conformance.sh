#!/usr/bin/env bash
# Records what the reference Chaos Toolkit does with every case of the in-repo conformance
# corpus (worker/tests/conformance/cases) into worker/tests/conformance/expected.json.
#
# Usage: scripts/record-conformance.sh [--only REGEX]
#
# Needs Python >= 3.12 (chaostoolkit 1.21.4 requires it): $CTK_PYTHON, else the first of
# python3.13, python3.12, python3 (if recent enough) or a pyenv 3.12+/3.13+ install. It
# installs the pinned reference into target/ctk-venv with pip, starts the corpus's HTTP fixture
# (worker/tests/conformance/server.py) on a free 127.0.0.1 port, and for each case runs
# `chaos validate` and `chaos run --journal-path` in a fresh empty working directory, with the
# environment the Rust test (worker/tests/it/conformance.rs) sets too. Only the summary of each
# journal is kept (see summarise() below; the Rust test extracts the same fields).
# With --only, the matching cases are re-recorded and the others kept as they were.
set -euo pipefail
cd "$(dirname "$0")/.."

CHAOSTOOLKIT=1.21.4
CHAOSTOOLKIT_LIB=1.45.1
JSONPATH2=0.4.5

fail() { echo "scripts/record-conformance.sh: $*" >&2; exit 1; }

recent() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
find_python() {
  local c
  for c in ${CTK_PYTHON:-} python3.13 python3.12 python3 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && recent "$c"; then command -v "$c"; return 0; fi
  done
  return 1
}

venv="$PWD/target/ctk-venv"
if [ ! -x "$venv/bin/chaos" ]; then
  py="$(find_python)" || fail "Python >= 3.12 is needed by chaostoolkit $CHAOSTOOLKIT (set CTK_PYTHON)"
  echo "==> reference Chaos Toolkit into $venv (with $py)"
  "$py" -m venv "$venv" || fail "cannot create a venv with $py"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "chaostoolkit==$CHAOSTOOLKIT" "chaostoolkit-lib[jsonpath]==$CHAOSTOOLKIT_LIB" "jsonpath2==$JSONPATH2" \
  || fail "pip could not install chaostoolkit $CHAOSTOOLKIT / chaostoolkit-lib $CHAOSTOOLKIT_LIB"

exec "$venv/bin/python" - "$@" <<'PY'
import json, os, re, subprocess, sys, tempfile, time
from importlib.metadata import version

CORPUS = os.path.abspath("worker/tests/conformance")
CASES = os.path.join(CORPUS, "cases")
EXPECTED = os.path.join(CORPUS, "expected.json")
CHAOS = [os.path.join(sys.prefix, "bin", "chaos"), "--no-version-check"]
only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None


def output_of(entry):
    """The deterministic part of an activity's output (None when it failed)."""
    out = entry.get("output")
    if isinstance(out, dict) and {"status", "stdout", "stderr"} <= out.keys():
        return {"status": out["status"], "stdout": out["stdout"], "stderr": out["stderr"]}
    if isinstance(out, dict) and {"status", "headers", "body"} <= out.keys():
        return {"status": out["status"], "body": out["body"]}
    return out


def name_of(entry):
    activity = entry.get("activity") or {}
    return activity.get("name") or activity.get("ref")


def summarise(journal):
    """The compared shape of a journal: no timestamps, durations, paths, pids or headers."""
    states = journal.get("steady_states") or {}

    def probes(phase):
        state = states.get(phase)
        if not isinstance(state, dict):
            return None
        return [[name_of(p), p.get("status"), p.get("tolerance_met")] for p in state.get("probes") or []]

    def met(phase):
        state = states.get(phase)
        return state.get("steady_state_met") if isinstance(state, dict) else None

    return {
        "title": (journal.get("experiment") or {}).get("title"),
        "status": journal.get("status"),
        "deviated": journal.get("deviated"),
        "before_met": met("before"),
        "after_met": met("after"),
        "before_probes": probes("before"),
        "after_probes": probes("after"),
        "run": [[name_of(r), r.get("status"), output_of(r)] for r in journal.get("run") or []],
        "rollbacks": [[name_of(r), r.get("status"), output_of(r)] for r in journal.get("rollbacks") or []],
    }


def last_error(log):
    """The reference's last error line, without colours or its timestamp (informational)."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)
    lines = [l for l in log.splitlines() if "ERROR" in l or "Error" in l or "error" in l]
    line = lines[-1] if lines else (log.strip().splitlines() or [""])[-1]
    return re.sub(r"^\[[^\]]*\]\s*", "", line).strip()[:300]


server = subprocess.Popen([sys.executable, os.path.join(CORPUS, "server.py"), "--port", "0"],
                          stdout=subprocess.PIPE, text=True)
port = server.stdout.readline().split()[1]
# modules/: the corpus's own Python modules (the controls of the controls-* cases)
env = dict(os.environ, CORPUS_BASE_URL=f"http://127.0.0.1:{port}", CORPUS_GREETING="hello-corpus",
           CORPUS_TOKEN="tok-corpus", CORPUS_NUMBER="42", PYTHONPATH=os.path.join(CORPUS, "modules"))
env.pop("CORPUS_UNSET", None)

checks = json.load(open(os.path.join(CORPUS, "checks.json")))
old = json.load(open(EXPECTED))["cases"] if only and os.path.exists(EXPECTED) else {}
cases = {}
started = time.time()
try:
    for name in sorted(os.listdir(CASES)):
        if only and not re.search(only, name):
            if name in old:  # kept as recorded; its hand-written checks refreshed
                cases[name] = {k: v for k, v in old[name].items() if k != "checks"}
                if name in checks:
                    cases[name]["checks"] = checks[name]
            continue
        path = os.path.join(CASES, name)
        extra = checks.get(name, {}).get("args", [])
        with tempfile.TemporaryDirectory() as work:
            os.mkdir(os.path.join(work, "validate"))
            os.mkdir(os.path.join(work, "run"))
            v = subprocess.run(CHAOS + ["validate", path], cwd=os.path.join(work, "validate"), env=env,
                               capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            journal_path = os.path.join(work, "journal.json")
            r = subprocess.run(CHAOS + ["run", *extra, "--journal-path", journal_path, path],
                               cwd=os.path.join(work, "run"), env=env, capture_output=True, text=True,
                               timeout=120, stdin=subprocess.DEVNULL)
            entry = {"valid": v.returncode == 0, "validate_exit": v.returncode, "run_exit": r.returncode}
            # what the run left in its working directory: the corpus's controls log their hooks
            effects = os.path.join(work, "run", "effects.log")
            if os.path.exists(effects):
                entry["effects"] = open(effects).read().splitlines()
            if os.path.exists(journal_path):
                journal = json.load(open(journal_path))
                entry["journal"] = True
                entry.update(summarise(journal))
                bounds = checks.get(name, {})
                took = journal.get("duration") or 0
                during = len((journal.get("steady_states") or {}).get("during") or [])
                if not bounds.get("min_duration", 0) <= took <= bounds.get("max_duration", took):
                    print(f"WARNING {name}: the reference took {took:.2f}s, outside checks.json's bounds")
                if during < bounds.get("min_during", 0):
                    print(f"WARNING {name}: the reference has {during} during entries, below min_during")
            else:
                entry["journal"] = False
            if v.returncode != 0:
                entry["reference_message"] = last_error(v.stdout + v.stderr)
        if name in checks:
            entry["checks"] = checks[name]
        if ("invalid" in name) == entry["valid"]:
            print(f"WARNING {name}: the name says {'in' if 'invalid' in name else ''}valid, the reference disagrees")
        print(f"{name}: validate {v.returncode}, run {r.returncode}, {entry.get('status', 'no journal')}")
        cases[name] = entry
finally:
    server.terminate()
    server.wait()

doc = {
    "reference": f"chaostoolkit {version('chaostoolkit')} / chaostoolkit-lib {version('chaostoolkit-lib')} "
                 f"(jsonpath2 {version('jsonpath2')}), Python {sys.version.split()[0]}",
    "recorded_by": "scripts/record-conformance.sh",
    "cases": cases,
}
with open(EXPECTED, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"recorded {len(cases)} cases into {EXPECTED} in {time.time() - started:.0f}s")
PY
