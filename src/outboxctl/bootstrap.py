"""From the root options to a configured Django and one resolved ``OutboxSettings``.

With ``--settings`` (or ``DJANGO_SETTINGS_MODULE``, or ``settings = ...`` in the file) the project's settings
are used; otherwise outboxctl configures Django itself (``INSTALLED_APPS = ["django_outbox_pattern"]`` and the
``[database]`` section). A ``[database]`` section or ``OUTBOXCTL_DATABASE_URL`` replaces the project's
``DATABASES["default"]``. When Django is already set up (outboxctl embedded in a process, or the tests), the
global settings are left alone and the resolved settings are passed to the engine explicitly.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django_outbox_pattern import conf
from outboxctl import config, dburl, output


@dataclasses.dataclass
class State:
    """The root options, kept on ``ctx.obj``."""

    settings_module: str | None = None
    settings_source: str = ""
    pythonpath: list[str] = dataclasses.field(default_factory=list)
    config_path: Path | None = None
    verbosity: int = 0


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The configuration a command runs with, and where each value came from."""

    outbox: conf.OutboxSettings
    sources: dict[str, str]
    settings_module: str | None
    settings_source: str
    config_file: Path | None
    database: dict[str, str]
    database_source: str


def setup(
    state: State, flags: Mapping[str, tuple[Any, str]] | None = None, *, database: bool = True
) -> Resolved:
    """Configure Django (once) and resolve the settings; ``flags`` maps setting keys to (value, "--flag")."""
    cwd = Path.cwd()
    found = config.find_file(state.config_path, cwd)
    file_layer = config.load_file(*found) if found else config.Layer(name="")
    env_layer = config.read_env(os.environ)
    for path in [*state.pythonpath, *file_layer.pythonpath]:
        if path not in sys.path:
            sys.path.insert(0, path)
    if str(cwd) not in sys.path:
        sys.path.append(str(cwd))
    module, module_source = state.settings_module, state.settings_source
    if module is None and file_layer.settings_module:
        module, module_source = file_layer.settings_module, f"file {found[0] if found else ''}"
    db_layer = env_layer if env_layer.database is not None else file_layer
    applied = _setup_django(module, db_layer.database)
    from django.conf import settings
    from django.db import connections

    django_mapping: Mapping[str, Any] = getattr(settings, conf.SETTINGS_NAME, None) or {}
    sources = {key: "default" for key in conf.FIELD_NAMES}
    merged: dict[str, Any] = {}
    if module:
        _check_django_mapping(django_mapping, module)
        merged.update(django_mapping)
        sources.update({key: f"django settings {module}" for key in django_mapping})
    for layer in (file_layer, env_layer):
        merged.update({key: s.value for key, s in layer.outbox.items()})
        sources.update({key: s.source for key, s in layer.outbox.items()})
    for key, (value, flag) in (flags or {}).items():
        if value is not None:
            merged[key], sources[key] = value, f"flag {flag}"
    outbox = conf.OutboxSettings.from_mapping(*_heart_beats(merged, sources))
    if _configured_here:
        settings.DJANGO_OUTBOX_PATTERN = merged
        conf.clear_cache()
    entry: dict[str, Any] = dict(connections.settings.get("default") or {})
    for secret in (
        outbox.DEFAULT_STOMP_PASSCODE,
        outbox.DEFAULT_STOMP_SSL_PASSWORD,
        outbox.DEFAULT_RABBITMQ_MANAGEMENT_PASSWORD,
        outbox.management_credentials[1],
        _url_password(outbox.DEFAULT_RABBITMQ_MANAGEMENT_URL),
        entry.get("PASSWORD"),
    ):
        output.add_secret(secret)
    if database and entry.get("ENGINE", "") in ("", "django.db.backends.dummy"):
        raise config.ConfigFileError(
            "No database is configured: pass --settings myproject.settings (or set DJANGO_SETTINGS_MODULE), "
            'or add a [database] section (url = "postgres://...") to outboxctl.toml, '
            "or set OUTBOXCTL_DATABASE_URL."
        )
    db_source = f"django settings {module}" if module else "not configured"
    if db_layer.database is not None:
        db_source = db_layer.database_source if applied else f"{db_source} (Django was already set up)"
    config_file = found[0] if found else None
    described = dburl.describe(entry) if entry.get("ENGINE") not in (None, "django.db.backends.dummy") else {}
    return Resolved(outbox, sources, module, module_source, config_file, described, db_source)


def _heart_beats(merged: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The 3.x heart-beat overrides of the Django settings apply, unless a file, env or flag set them."""
    from django_outbox_pattern import coercion

    if sources.get("DEFAULT_STOMP_HEARTBEATS", "default").startswith(("default", "django")):
        return merged, coercion.top_level_settings()
    return {k: v for k, v in merged.items() if k not in coercion.HEARTBEAT_OVERRIDES}, {}


_configured_here = False


def _setup_django(module: str | None, database: dict[str, Any] | None) -> bool:
    """Set Django up once per process; False when it was already set up (nothing changed then)."""
    global _configured_here
    from django.apps import apps

    if apps.ready:
        if database is not None:
            logging.getLogger(__name__).warning(
                "Django is already set up: the configured database is ignored",
                extra={"action": "database_ignored"},
            )
        return False
    import django
    from django.conf import settings

    if database is not None and database["ENGINE"].endswith("mysql"):
        _ensure_mysql_driver()
    if module:
        os.environ["DJANGO_SETTINGS_MODULE"] = module
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise config.ConfigFileError(
                f"Cannot import the settings module {module!r} ({exc}): is its directory on the path? "
                "Add --pythonpath DIR (or pythonpath = [...] in the config file)."
            ) from None
        if database is not None:
            settings.DATABASES = {**settings.DATABASES, "default": database}
    elif not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django_outbox_pattern"],
            DATABASES={"default": database} if database is not None else {},
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            LOGGING_CONFIG=None,
        )
    django.setup()
    _configured_here = True
    return True


def _ensure_mysql_driver() -> None:
    try:
        import MySQLdb  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        try:
            import pymysql
        except ImportError:
            return  # Django reports the missing driver with its own message
        pymysql.install_as_MySQLdb()


def _check_django_mapping(mapping: Any, module: str) -> None:

    # read as the Django app reads it: unknown keys and values 3.x coerced are not errors (check warns)
    for key, message, hint in conf.review(mapping).errors:
        raise config.ConfigFileError(
            f"django settings {module}: {conf.SETTINGS_NAME}[{key!r}] {message} ({hint})"
        )


def _url_password(url: str | None) -> str | None:
    """The password of a ``user:password@`` URL, to be masked in every line printed."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        return None
    return unquote(password) if password else None
