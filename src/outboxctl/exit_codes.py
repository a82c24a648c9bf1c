"""The exit codes of outboxctl: a documented contract for scripts and readiness probes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # done, or every check passed
    ERROR = 1  # the command failed (or a confirmation was declined)
    USAGE = 2  # bad flags or arguments (Click's code), or an invalid configuration file/setting
    BROKER_UNAVAILABLE = 3  # the STOMP broker could not be reached or refused the connection
    DATABASE_UNAVAILABLE = 4  # the database could not be reached, or its outbox tables are missing
    CHECK_FAILED = 5  # `outboxctl check`: a check failed while broker and database were reachable
    INTERRUPTED = 130  # stopped by Ctrl-C / a second SIGINT or SIGTERM


HELP_TABLE = "\n".join(
    [
        "[bold]Exit codes[/bold]",
        "",
        "  [cyan]0[/cyan]   ok (every check passed)",
        "  [cyan]1[/cyan]   error (the command failed, or a confirmation was declined)",
        "  [cyan]2[/cyan]   usage: bad flags/arguments, or an invalid configuration file or setting",
        "  [cyan]3[/cyan]   broker unavailable (STOMP connection failed or refused)",
        "  [cyan]4[/cyan]   database unavailable (or the outbox tables are missing)",
        "  [cyan]5[/cyan]   check failed (`outboxctl check`, with broker and database reachable)",
        "  [cyan]130[/cyan] interrupted (Ctrl-C, or a second SIGINT/SIGTERM)",
    ]
)
