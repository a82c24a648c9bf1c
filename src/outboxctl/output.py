"""Rendering: data on stdout (a Rich table, or JSON only with ``--json``), everything else on stderr.

Secrets registered with ``add_secret`` are replaced by ``********`` in every error line and log record.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

MASK = "********"
_secrets: set[str] = set()


def add_secret(value: Any) -> None:
    if isinstance(value, str) and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def interactive() -> bool:
    """True when stderr is a terminal: progress displays and prompts are shown only then."""
    return stderr().is_terminal


def print_json(data: Any) -> None:
    """Parseable JSON on stdout, nothing else: stable keys, no colour."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


_NO_WRAP = {"id", "added", "message id", "msg_id", "available_at", "published_at"}


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    listing: bool = False,
    **kwargs: Any,
) -> Table:
    """A Rich table. Ids and times never wrap (they are copied and compared). A ``listing`` fills the width:
    short columns stay on one line and the free-text ones share what is left."""
    cells = [[cell if isinstance(cell, Text) else escape(cell_text(cell)) for cell in row] for row in rows]
    out = Table(title=title, title_justify="left", expand=listing, **kwargs)
    for index, column in enumerate(columns):
        width = max([len(column)] + [len(str(row[index])) for row in cells])
        if column.lower() in _NO_WRAP or (listing and width <= 12):
            out.add_column(column, no_wrap=True, min_width=width)
        elif listing:
            out.add_column(column, overflow="fold", ratio=1, min_width=10)
        else:
            out.add_column(column, overflow="fold")
    for row in cells:
        out.add_row(*row)
    return out


def help_text(doc: str | None) -> str:
    """A docstring as command help: prose paragraphs joined into one line each (Rich keeps single line
    breaks), indented example lines kept as they are."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        keep = any(line.startswith("  ") for line in lines)
        out.append(paragraph if keep else " ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


STATUS_STYLES = {"pending": "yellow", "failed": "red", "published": "green", "processed": "green"}


def status(name: str) -> Text:
    return Text(name, style=STATUS_STYLES.get(name, ""))


def age(seconds: float | None) -> str:
    """``3d 4h``, ``12m 5s``: a human age."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def error(message: str, hint: str | None = None) -> None:
    """One red line (plus a dim hint line) on stderr."""
    console = stderr()
    console.print(f"[bold red]Error:[/] {escape(redact(message))}", soft_wrap=True)
    if hint:
        console.print(f"[dim]Hint: {escape(redact(hint))}[/]", soft_wrap=True)


def note(message: str) -> None:
    """A diagnostic line on stderr (never on stdout)."""
    stderr().print(escape(redact(message)), soft_wrap=True)


@contextlib.contextmanager
def progress(description: str, total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when ``enabled`` (a terminal and a large set); yields ``advance(n)``."""
    if not enabled:
        yield lambda n: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg, record.args = redact(record.getMessage()), None
        return True


_HANDLER_NAME = "outboxctl"
_state = {"verbosity": 0}


def verbosity() -> int:
    return _state["verbosity"]


def setup_logging(verbosity: int) -> None:
    """Warnings by default, ``-v`` INFO, ``-vv`` DEBUG: a RichHandler on stderr, secrets redacted."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = RichHandler(console=stderr(), show_path=False, show_time=verbosity > 0, markup=False)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RedactingFilter())
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    _state["verbosity"] = verbosity
    # stomp.py logs its own socket errors (with tracebacks); transport.py turns them into our exceptions.
    logging.getLogger("stomp").setLevel(logging.CRITICAL if verbosity < 2 else logging.NOTSET)
