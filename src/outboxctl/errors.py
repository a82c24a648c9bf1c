"""One place that turns exceptions into one red line, a hint, and a documented exit code."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

from django_outbox_pattern import exceptions
from outboxctl import output
from outboxctl.exit_codes import ExitCode

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger(__name__)

_BROKER_HINT = "Check the broker settings with `outboxctl config`, then run `outboxctl check`."
_DATABASE_HINT = "Is the database running and reachable? Run `outboxctl check`."
_MIGRATIONS_HINT = "The outbox tables are missing: run `python manage.py migrate django_outbox_pattern`."
_CONFIG_HINT = "Fix it; then `outboxctl config` shows the resolved values and where each came from."


def classify(exc: BaseException) -> tuple[ExitCode, str | None]:
    """The exit code and hint for an exception."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, None
    if isinstance(exc, (exceptions.ConfigurationError, ImproperlyConfigured)):
        return ExitCode.USAGE, _CONFIG_HINT
    if isinstance(exc, (exceptions.CallbackImportError, exceptions.InvalidDestination)):
        return ExitCode.USAGE, None
    if isinstance(exc, exceptions.TransportConnectionError):
        return ExitCode.BROKER_UNAVAILABLE, _BROKER_HINT
    if isinstance(exc, exceptions.StorageError):
        return ExitCode.DATABASE_UNAVAILABLE, _DATABASE_HINT
    if isinstance(exc, DatabaseError):
        text = str(exc).lower()
        missing = any(s in text for s in ("no such table", "does not exist", "doesn't exist"))
        return ExitCode.DATABASE_UNAVAILABLE, _MIGRATIONS_HINT if missing else _DATABASE_HINT
    if isinstance(exc, exceptions.OutboxError):
        return ExitCode.ERROR, None
    return ExitCode.ERROR, "This looks like a bug: run again with -vv for the traceback and report it."


def message_of(exc: BaseException) -> str:
    from django.db import DatabaseError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, DatabaseError):
        return f"Database error: {text}"
    if not isinstance(exc, exceptions.OutboxError):
        return f"{type(exc).__name__}: {text}"
    return text


def handled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command; turn any exception but ``typer.Exit`` into a red line, a hint and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code, hint = classify(exc)
            if code is ExitCode.INTERRUPTED:
                output.note("Interrupted.")
            else:
                if output.verbosity() >= 2:
                    output.note("".join(traceback.format_exception(exc)).rstrip())
                output.error(message_of(exc), hint)
            raise typer.Exit(int(code)) from None

    return wrapper


def fail(message: str, hint: str | None = None, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    """Print one error line and exit with ``code``."""
    output.error(message, hint)
    raise typer.Exit(int(code))


def confirm(question: str, nothing: str) -> None:
    """Ask ``question`` on stderr; return on yes. No (exit 1), no answer on stdin (exit 1, use --yes) and
    Ctrl-C (exit 130) all end the command with ``nothing`` ("nothing changed") said."""
    try:
        confirmed = typer.confirm(question, err=True)
    except typer.Abort as exc:  # Click turns both Ctrl-C and end of input into Abort
        if isinstance(exc.__context__, KeyboardInterrupt):
            fail(f"Interrupted: {nothing}.", None, ExitCode.INTERRUPTED)
        fail(f"No answer: {nothing}.", "Pass --yes to run without the question.", ExitCode.ERROR)
    if not confirmed:
        fail(f"Declined: {nothing}.", None, ExitCode.ERROR)
