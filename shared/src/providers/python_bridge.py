# Experiment Broker's bridge to Python activities (embedded in the `worker` binary).
#
# Reads one JSON request on stdin and writes one JSON answer on stdout:
#   {"op": "call", "module", "func", "arguments", "configuration", "secrets", "secret_scopes"}
#       -> {"ok": <result>} | {"error": "<Type: message>", "traceback": [...]}
#   {"op": "check", "items": [{"module", "func", "arguments": [names], "name", "type"}]}
#       -> one line per item, written as soon as it is checked: {"problem": null | "<message>"}
#          (so the caller, which stops a check that outlives its timeout, knows which import hung)
#   {"op": "controls"} on its own line, then one hook request per line, for the whole run (the
#   modules stay imported, so a control keeps its state from hook to hook, as in the reference):
#       {"hook", "module", "arguments", "context", "state", "configuration", "secrets",
#        "experiment"} -> one line: {"ok": true} | {"absent": "<why>"} | {"error", "traceback"}
#       The hook gets what chaoslib.control.python.apply_python_control passes: `context`, the
#       control's arguments, and `secrets`, `configuration`, `state`, `experiment`,
#       `extensions`, `settings` when its signature names them. `configure_control` gets the
#       arguments and `experiment`, `secrets`, `configuration`, `settings`, `event_registry`
#       (None: there is none); `cleanup_control` nothing.
# While the function runs, sys.stdout points at stderr, so a print() in user code cannot
# corrupt the answer.
import importlib
import inspect
import json
import sys
import traceback


def _default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "replace")
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def _call(req):
    mod = importlib.import_module(req["module"])
    func = getattr(mod, req["func"])
    args = dict(req.get("arguments") or {})
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    if "secrets" in params and req.get("secret_scopes"):
        merged = {}
        for scope in req["secret_scopes"]:
            merged.update((req.get("secrets") or {}).get(scope) or {})
        args["secrets"] = merged
    if "configuration" in params:
        args["configuration"] = req.get("configuration") or {}
    return func(**args)


def _check(item):
    name = item.get("name")
    try:
        mod = importlib.import_module(item["module"])
    except ImportError:
        return f"could not find Python module '{item['module']}' in activity '{name}'"
    candidates = dict(inspect.getmembers(mod, inspect.isfunction))
    candidates.update(inspect.getmembers(mod, inspect.isbuiltin))
    func = candidates.get(item["func"])
    if func is None:
        return (
            f"the python module '{item['module']}' does not expose a function called "
            f"'{item['func']}' in {item.get('type')} '{name}'"
        )
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    args = {a: None for a in item.get("arguments") or []}
    if "secrets" in sig.parameters:
        args["secrets"] = None
    if "configuration" in sig.parameters:
        args["configuration"] = None
    try:
        sig.bind(**args)
    except TypeError as x:
        msg = str(x)
        if "missing" in msg:
            return f"required argument {msg.rsplit(':', 1)[1].strip()} is missing from activity '{name}'"
        if "unexpected" in msg:
            return f"argument {msg.rsplit(' ', 1)[1].strip()} is not part of the function signature in activity '{name}'"
        return msg
    return None


def _control(req):
    try:
        mod = importlib.import_module(req["module"])
    except ImportError:
        return {"absent": f"control module '{req['module']}' could not be loaded"}
    hook = req["hook"]
    func = getattr(mod, hook, None)
    if not func:
        return {"absent": f"control module '{req['module']}' does not declare '{hook}'"}
    args = dict(req.get("arguments") or {})
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    if hook == "cleanup_control":
        func()
        return {"ok": True}
    experiment = req.get("experiment") or {}
    given = {
        "secrets": req.get("secrets"),
        "configuration": req.get("configuration"),
        "experiment": experiment,
        "settings": None,
    }
    if hook == "configure_control":
        given["event_registry"] = None
    else:
        given["state"] = req.get("state")
        given["extensions"] = experiment.get("extensions")
    for name, value in given.items():
        if name in params:
            args[name] = value
    if hook == "configure_control":
        func(**args)
    else:
        func(context=req.get("context"), **args)
    return {"ok": True}


def _serve_controls(real_stdout):
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout = sys.stderr
        try:
            try:
                answer = _control(json.loads(line))
            except BaseException as x:  # noqa: BLE001 - a failing hook is logged, the run goes on
                answer = {
                    "error": traceback.format_exception_only(type(x), x)[0].strip(),
                    "traceback": traceback.format_exception(type(x), x, x.__traceback__),
                }
            text = json.dumps(answer, default=_default, ensure_ascii=False)
        finally:
            sys.stdout = real_stdout
        real_stdout.write(text + "\n")
        real_stdout.flush()


def _check_all(items, real_stdout):
    for item in items:
        sys.stdout = sys.stderr
        try:
            problem = _check(item)
        finally:
            sys.stdout = real_stdout
        real_stdout.write(json.dumps({"problem": problem}, ensure_ascii=False) + "\n")
        real_stdout.flush()


def main():
    # "call" and "check" come as one JSON text with no line end; "controls" as a first line
    first = sys.stdin.readline()
    real_stdout = sys.stdout
    if first.endswith("\n") and json.loads(first).get("op") == "controls":
        _serve_controls(real_stdout)
        return
    req = json.loads(first + sys.stdin.read())
    if req.get("op") == "check":
        _check_all(req.get("items") or [], real_stdout)
        return
    sys.stdout = sys.stderr
    try:
        try:
            answer = {"ok": _call(req)}
        except BaseException as x:  # noqa: BLE001 - every failure becomes the activity's error
            answer = {
                "error": traceback.format_exception_only(type(x), x)[0].strip(),
                "traceback": traceback.format_exception(type(x), x, x.__traceback__),
            }
        text = json.dumps(answer, default=_default, ensure_ascii=False)
    finally:
        sys.stdout = real_stdout
    real_stdout.write(text)
    real_stdout.flush()


main()
