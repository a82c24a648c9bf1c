"""``outboxctl check --liveness`` / ``--readiness``: quick probes for Kubernetes-style health checks.

Liveness reads the heartbeat file a running relay or consumer writes (``--health-file``); it needs no
settings and never touches the database or the broker. Readiness checks that the database answers and the
broker accepts a STOMP CONNECT. Exit code 0 when every probe passes, 5 (CHECK_FAILED) otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from outboxctl import bootstrap, errors, output
from outboxctl.exit_codes import ExitCode


def run(
    state: Any,
    *,
    liveness: bool,
    readiness: bool,
    health_file: Path | None,
    max_age: float,
    flags: dict[str, tuple[Any, str]],
    as_json: bool,
) -> NoReturn:
    from django_outbox_pattern.ops import health, probes

    results: list[probes.CheckResult] = []
    if liveness:
        if health_file is None:
            errors.fail(
                "--liveness needs --health-file FILE.",
                "Give the file the relay or consumer writes with --health-file.",
                ExitCode.USAGE,
            )
        results.append(health.read_heartbeat(health_file, max_age))
    if readiness:
        resolved = bootstrap.setup(state, flags, database=False)
        results.extend(probes.readiness(resolved.outbox))
    ok = all(probe.ok for probe in results)
    code = ExitCode.OK if ok else ExitCode.CHECK_FAILED
    if as_json:
        output.print_json({"ok": ok, "exit_code": int(code), "probes": [p.as_probe() for p in results]})
    else:
        console = output.stdout()
        for probe in results:
            mark = "[green]pass[/]" if probe.ok else "[bold red]FAIL[/]"
            console.print(f"{probe.name:<10} {mark}  {output.redact(probe.detail)}", highlight=False)
    raise typer.Exit(int(code))
