"""Controls for the conformance corpus's `controls-*` cases.

Every hook appends one line to `effects.log` in the working directory, saying what it was given,
so the reference's and our runs can be compared on what the controls saw and in what order. The
module keeps a counter across hooks: the reference calls every hook of a run in one interpreter.
An argument `fail` naming a hook makes that hook raise.
"""

_calls = {"n": 0}


def _log(hook, label, text, fail=None):
    _calls["n"] += 1
    with open("effects.log", "a") as f:
        f.write(f"{_calls['n']} {hook} [{label}] {text}\n")
    if fail == hook:
        raise RuntimeError(f"{hook} fails as asked")


def _name(context):
    if not isinstance(context, dict):
        return repr(context)
    return context.get("name") or context.get("title") or "?"


def _runs(state):
    return ",".join(f"{r['activity'].get('name')}:{r.get('status')}" for r in state or [])


def configure_control(experiment=None, configuration=None, secrets=None, settings=None,
                      label=None, fail=None):
    given = sorted((configuration or {}).keys())
    _log("configure_control", label,
         f"title={experiment.get('title')} configuration={given} secrets={sorted((secrets or {}).keys())}",
         fail)


def cleanup_control():
    _log("cleanup_control", None, "")


def before_experiment_control(context, configuration=None, secrets=None, label=None, fail=None):
    _log("before_experiment_control", label,
         f"context={_name(context)} greeting={(configuration or {}).get('greeting')}", fail)


def after_experiment_control(context, state, label=None, fail=None):
    _log("after_experiment_control", label,
         f"context={_name(context)} status={state.get('status')} deviated={state.get('deviated')} "
         f"runs={_runs(state.get('run'))} rollbacks={_runs(state.get('rollbacks'))}", fail)


def before_hypothesis_control(context, label=None, fail=None):
    _log("before_hypothesis_control", label, f"context={_name(context)}", fail)


def after_hypothesis_control(context, state, label=None, fail=None):
    _log("after_hypothesis_control", label,
         f"context={_name(context)} met={state.get('steady_state_met')} probes={_runs(state.get('probes'))}",
         fail)


def before_method_control(context, label=None, fail=None):
    _log("before_method_control", label, f"context={_name(context)}", fail)


def after_method_control(context, state, label=None, fail=None):
    _log("after_method_control", label, f"context={_name(context)} runs={_runs(state)}", fail)


def before_rollback_control(context, label=None, fail=None):
    _log("before_rollback_control", label, f"context={_name(context)}", fail)


def after_rollback_control(context, state, label=None, fail=None):
    _log("after_rollback_control", label, f"context={_name(context)} runs={_runs(state)}", fail)


def before_activity_control(context, label=None, fail=None, **kwargs):
    secret = "with-secrets" if "secrets" in kwargs else "no-secrets"
    _log("before_activity_control", label, f"context={_name(context)} {secret}", fail)


def after_activity_control(context, state, configuration=None, label=None, fail=None):
    _log("after_activity_control", label,
         f"context={_name(context)} status={state.get('status')} output={_output(state)} "
         f"number={(configuration or {}).get('number')}", fail)


def _output(state):
    out = state.get("output")
    if isinstance(out, dict) and "stdout" in out:
        return repr(out["stdout"])
    return repr(out)
