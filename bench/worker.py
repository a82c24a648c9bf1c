"""A worker process: Django configured by ``bench.settings`` for one database, driven line by line.

The orchestrator writes ``{"fn": "module:function", "kwargs": {...}}`` lines to stdin; the worker answers
each with one ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": traceback}`` line. Everything
else the process prints (logging, warnings) goes to stderr, so stdout carries the protocol only.
``BENCH_PROFILE_DIR`` set: calls to functions listed in ``PROFILED`` run under cProfile.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

PROFILED = {"bench.relay:drain", "bench.consumer:consume"}


def _call(fn: str, kwargs: dict[str, Any]) -> Any:
    module_name, _, name = fn.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if not profile_dir or fn not in PROFILED:
        return function(**kwargs)
    from bench import profiling

    return profiling.profiled(function, kwargs, directory=profile_dir, label=f"{name}-{os.getpid()}")


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import django

    django.setup()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("fn") == "quit":
            break
        try:
            reply: dict[str, Any] = {"ok": True, "result": _call(request["fn"], request.get("kwargs") or {})}
        except BaseException:
            reply = {"ok": False, "error": traceback.format_exc()}
        protocol.write(json.dumps(reply, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
