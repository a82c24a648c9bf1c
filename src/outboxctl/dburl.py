"""A database URL or Django-style fields -> one ``DATABASES`` entry.

``postgres://user:pass@host:5432/name``, ``mysql://user:pass@host:3306/name``, ``sqlite:///relative.db``,
``sqlite:////absolute/path.db``; query parameters become ``OPTIONS``. Passwords are percent-decoded and can
come from an environment variable (``password_env``) instead of the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "mariadb": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
    "sqlite3": "django.db.backends.sqlite3",
}
FIELDS = (
    "url",
    "engine",
    "name",
    "user",
    "password",
    "password_env",
    "host",
    "port",
    "options",
    "conn_max_age",
)
_URL_EXCLUSIVE = ("engine", "name", "user", "password", "host", "port")


class DatabaseConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def parse_url(url: str, *, base_dir: Path | None = None) -> dict[str, Any]:
    """One ``DATABASES`` entry from a URL; raise DatabaseConfigError for an unknown scheme or a bad port."""
    parts = urlsplit(url)
    engine = ENGINES.get(parts.scheme.lower())
    if engine is None:
        known = ", ".join(sorted({k + "://" for k in ENGINES}))
        raise DatabaseConfigError("url", f"unknown scheme {parts.scheme + '://'!r}; use one of {known}")
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    if engine.endswith("sqlite3"):
        name = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc == ":memory:" or name in ("", ":memory:"):
            name = ":memory:"
        elif not Path(name).is_absolute() and base_dir is not None:
            name = str((base_dir / name).resolve())
        return {"ENGINE": engine, "NAME": name, "OPTIONS": options}
    try:
        port = parts.port
    except ValueError:
        raise DatabaseConfigError("url", "the port is not a number") from None
    return {
        "ENGINE": engine,
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": options,
    }


def from_fields(section: Mapping[str, Any], *, base_dir: Path | None = None) -> dict[str, Any]:
    """One ``DATABASES`` entry from a ``[database]`` table (``url`` or fields, plus ``password_env``)."""
    for key, value in section.items():
        if key in ("options",) and not isinstance(value, Mapping):
            raise DatabaseConfigError(key, "must be a table of driver options")
        if (
            key == "port"
            and not (isinstance(value, int) and not isinstance(value, bool))
            and not (isinstance(value, str) and value.isdigit())
        ):
            raise DatabaseConfigError(key, f"must be a port number, got {value!r}")
        if key == "conn_max_age" and (isinstance(value, bool) or not isinstance(value, int)):
            raise DatabaseConfigError(key, f"must be a number of seconds, got {value!r}")
        if key not in ("options", "port", "conn_max_age") and not isinstance(value, str):
            raise DatabaseConfigError(key, f"must be a string, got {value!r}")
    if "url" in section:
        clash = [key for key in _URL_EXCLUSIVE if key in section]
        if clash:
            raise DatabaseConfigError(clash[0], "give either url or separate fields, not both")
        entry = parse_url(section["url"], base_dir=base_dir)
    else:
        if "engine" not in section:
            raise DatabaseConfigError("engine", 'missing: give url = ... or engine = "postgresql" | ...')
        engine = str(section["engine"])
        engine = ENGINES.get(engine.lower(), engine)
        if "." not in engine:
            raise DatabaseConfigError(
                "engine", f"unknown engine {section['engine']!r}; use postgresql, mysql, sqlite"
            )
        name = str(section.get("name", ""))
        if engine.endswith("sqlite3") and name and name != ":memory:" and base_dir is not None:
            name = str((base_dir / name).resolve()) if not Path(name).is_absolute() else name
        entry = {
            "ENGINE": engine,
            "NAME": name,
            "USER": str(section.get("user", "")),
            "PASSWORD": str(section.get("password", "")),
            "HOST": str(section.get("host", "")),
            "PORT": str(section.get("port", "")),
            "OPTIONS": {},
        }
    if "password" in section and "password_env" in section:
        raise DatabaseConfigError("password_env", "set either password or password_env, not both")
    if "password_env" in section:
        value = os.environ.get(section["password_env"])
        if value is None:
            raise DatabaseConfigError(
                "password_env", f"names {section['password_env']}, which is not set: export it"
            )
        entry["PASSWORD"] = value
    entry["OPTIONS"] = {**entry.get("OPTIONS", {}), **dict(section.get("options", {}))}
    if "conn_max_age" in section:
        entry["CONN_MAX_AGE"] = section["conn_max_age"]
    return entry


def describe(entry: Mapping[str, Any]) -> dict[str, str]:
    """The entry's fields for display, password masked."""
    out = {key.lower(): str(entry.get(key, "")) for key in ("ENGINE", "NAME", "HOST", "PORT", "USER")}
    out["password"] = "********" if entry.get("PASSWORD") else ""
    return out
