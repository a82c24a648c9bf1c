"""Secrets at rest: warn when a config file holds a secret and group or others may read it (as ssh does).

A secret in the file itself (``passcode``, ``ssl_password``, a database ``password`` or a URL with one), not
a ``*_env`` reference, in a file whose mode grants anything to group or others: one warning line on stderr,
once per file and process. Never an error: the command runs on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django_outbox_pattern import conf
from outboxctl import output

SECRET_BROKER_KEYS = ("passcode", "ssl_password")
_warned: set[Path] = set()


def secrets_in(data: Mapping[str, Any]) -> list[str]:
    """The keys of a config table that hold a secret in the file itself (not a ``*_env`` reference)."""
    found: list[str] = []
    broker, outbox, database = (data.get(name) for name in ("broker", "outbox", "database"))
    if isinstance(broker, dict):
        found += [f"[broker] {key}" for key in SECRET_BROKER_KEYS if broker.get(key)]
    if isinstance(outbox, dict):
        found += [f"[outbox] {key}" for key in sorted(conf.SECRET_KEYS) if outbox.get(key)]
    if isinstance(database, dict):
        if database.get("password"):
            found.append("[database] password")
        url = database.get("url")
        if isinstance(url, str) and _url_password(url):
            found.append("[database] url")
    return found


def _url_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def warn_if_exposed(path: Path, secrets: list[str]) -> None:
    """Warn once (stderr) when a file holding ``secrets`` is open to group or others; never an error."""
    if not secrets or os.name != "posix" or path.resolve() in _warned:
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        _warned.add(path.resolve())
        shown = _display(path)
        output.note(
            f"Warning: {shown} holds a secret ({', '.join(secrets)}) and its mode {mode:04o} lets group or "
            f"others read it: run `chmod 600 {shown}`, or move the secret to an environment variable named "
            "by passcode_env / ssl_password_env / password_env."
        )


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
