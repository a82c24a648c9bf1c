"""outboxctl's configuration file and environment, turned into layers of values that remember their source.

Precedence, highest first: command flags > environment (``OUTBOXCTL_*``) > TOML file > Django settings >
defaults. The file is ``--config`` (or ``OUTBOXCTL_CONFIG``), else ``./outboxctl.toml``, else
``[tool.outboxctl]`` in ``./pyproject.toml``. Sections: ``[database]``, ``[broker]``, ``[outbox]``; top-level
``settings`` and ``pythonpath`` name a Django project. Secrets may come from variables named by ``*_env``
keys; a file that holds a secret itself and that group or others may read gets a warning (once, on
stderr), as ssh warns about a private key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django_outbox_pattern import conf, exceptions
from outboxctl import dburl, exposure

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PREFIX = "OUTBOXCTL_"
FILE_NAME = "outboxctl.toml"
TOP_KEYS = ("settings", "pythonpath", "database", "broker", "outbox")
# [broker] key -> DJANGO_OUTBOX_PATTERN key
BROKER_KEYS: dict[str, str] = {
    "hosts": "DEFAULT_STOMP_HOST_AND_PORTS",
    "username": "DEFAULT_STOMP_USERNAME",
    "passcode": "DEFAULT_STOMP_PASSCODE",
    "vhost": "DEFAULT_STOMP_VHOST",
    "heartbeats": "DEFAULT_STOMP_HEARTBEATS",
    "use_ssl": "DEFAULT_STOMP_USE_SSL",
    "ca_certs": "DEFAULT_STOMP_CA_CERTS",
    "cert_file": "DEFAULT_STOMP_CERT_FILE",
    "key_file": "DEFAULT_STOMP_KEY_FILE",
    "ssl_password": "DEFAULT_STOMP_SSL_PASSWORD",
    "connect_timeout": "DEFAULT_CONNECT_TIMEOUT",
    "receipt_timeout": "DEFAULT_RECEIPT_TIMEOUT",
}
SECRET_BROKER_KEYS = ("passcode", "ssl_password")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


class ConfigFileError(exceptions.ConfigurationError):
    """The outboxctl configuration is invalid."""


@dataclasses.dataclass(frozen=True)
class Sourced:
    """A value and where it came from (shown by `outboxctl config`)."""

    value: Any
    source: str


@dataclasses.dataclass
class Layer:
    """What one source (file or environment) sets."""

    name: str
    outbox: dict[str, Sourced] = dataclasses.field(default_factory=dict)
    database: dict[str, Any] | None = None
    database_source: str = ""
    settings_module: str | None = None
    pythonpath: list[str] = dataclasses.field(default_factory=list)


def find_file(explicit: Path | None, cwd: Path) -> tuple[Path, str] | None:
    """(path, table) to read: ``--config``, else ``./outboxctl.toml``, else ``[tool.outboxctl]``; or None."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigFileError(f"Config file {explicit} does not exist: check the --config path.")
        return explicit, "tool.outboxctl" if explicit.name == "pyproject.toml" else ""
    if (cwd / FILE_NAME).is_file():
        return cwd / FILE_NAME, ""
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        data = _parse(pyproject)
        if isinstance(data.get("tool"), dict) and "outboxctl" in data["tool"]:
            return pyproject, "tool.outboxctl"
    return None


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{_display(path)}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"{_display(path)}: cannot read: {exc.strerror}") from None


def load_file(path: Path, table: str = "") -> Layer:
    """Read and validate one config file; every problem is a ConfigFileError naming file, line and key."""
    data = _parse(path)
    text = path.read_text(encoding="utf-8")
    for part in filter(None, table.split(".")):
        data = data.get(part, {})
    where = _Where(path, text, table)
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: [{table}] must be a table.")
    where.unknown(data, TOP_KEYS, "")
    layer = Layer(name=str(path))
    if "settings" in data:
        layer.settings_module = where.string(data["settings"], "", "settings")
    if "pythonpath" in data:
        paths = data["pythonpath"]
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            where.fail("", "pythonpath", "must be a path or a list of paths")
        layer.pythonpath = [str((path.parent / p).resolve()) for p in paths]
    if "database" in data:
        section = where.table(data["database"], "database")
        where.unknown(section, dburl.FIELDS, "database")
        try:
            layer.database = dburl.from_fields(section, base_dir=path.parent)
        except dburl.DatabaseConfigError as exc:
            where.fail("database", exc.key, exc.message)
        layer.database_source = where.label("database", "url" if "url" in section else "")
    if "broker" in data:
        _load_broker(where.table(data["broker"], "broker"), where, layer)
    if "outbox" in data:
        section = where.table(data["outbox"], "outbox")
        for key, value in section.items():
            _set(layer, where, "outbox", key, key, value)
    _validate(layer, where)
    exposure.warn_if_exposed(path, exposure.secrets_in(data))
    return layer


def _load_broker(section: dict[str, Any], where: _Where, layer: Layer) -> None:
    allowed = (*BROKER_KEYS, *(f"{k}_env" for k in SECRET_BROKER_KEYS))
    where.unknown(section, allowed, "broker")
    for key, value in section.items():
        if key.endswith("_env"):
            plain = key[: -len("_env")]
            if plain in section:
                where.fail("broker", key, f"set either {plain} or {key}, not both")
            env_name = where.string(value, "broker", key)
            layer.outbox[BROKER_KEYS[plain]] = Sourced(
                _env_secret(env_name, where.label("broker", key)),
                f"env {env_name} (named by {where.label('broker', key)})",
            )
            continue
        if key == "hosts":
            value = _hosts(value, functools.partial(where.fail, "broker", "hosts"))
        _set(layer, where, "broker", key, BROKER_KEYS[key], value)


def _set(layer: Layer, where: _Where, section: str, key: str, setting: str, value: Any) -> None:
    if setting in layer.outbox:
        where.fail(section, key, f"{setting} is set twice in this file ([broker] and [outbox]): keep one")
    layer.outbox[setting] = Sourced(value, where.label(section, key))


def _validate(layer: Layer, where: _Where) -> None:
    mapping = {key: sourced.value for key, sourced in layer.outbox.items()}
    for key, message, hint in conf.validate(mapping):
        source = layer.outbox[key].source if key in layer.outbox else where.label("outbox", key)
        raise ConfigFileError(f"{source}: {key}: {message} ({hint})")


def _env_secret(name: str, named_by: str) -> str:
    import os

    value = os.environ.get(name)
    if value is None:
        raise ConfigFileError(
            f"{named_by} names the environment variable {name}, which is not set: export it."
        )
    return value


def _hosts(value: Any, fail: Any) -> list[tuple[str, int]]:
    """``["h:61613", ["h2", 61614]]`` or ``"h:61613,h2:61614"`` -> ``[("h", 61613), ("h2", 61614)]``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        fail('must be a list such as ["127.0.0.1:61613"]')
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, str):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                fail(f'{item!r} is not "host:port"')
            out.append((host, int(port)))
        elif isinstance(item, list) and len(item) == 2 and isinstance(item[1], int):
            out.append((str(item[0]), item[1]))
        else:
            fail(f'{item!r} is not "host:port" or [host, port]')
    return out


class _Where:
    """Names places in a config file: ``outboxctl.toml:12 [broker] passcode``."""

    def __init__(self, path: Path, text: str, table: str) -> None:
        self.path, self.lines, self.root = path, text.splitlines(), table
        self.shown = _display(path)

    def label(self, section: str, key: str) -> str:
        header = ".".join(filter(None, (self.root, section)))
        line = self._line(header, key)
        place = f"{self.shown}:{line}" if line else self.shown
        return f"{place} [{header}]{' ' + key if key else ''}" if header else f"{place} {key}".rstrip()

    def _line(self, header: str, key: str) -> int | None:
        key_re = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
        current = ""
        for number, line in enumerate(self.lines, start=1):
            match = _TABLE_HEADER.match(line)
            if match:
                current = match.group(1).replace('"', "").replace(" ", "")
                if not key and current == header:
                    return number
                continue
            if key and current == header and key_re.match(line):
                return number
        return None

    def fail(self, section: str, key: str, message: str) -> Any:
        raise ConfigFileError(f"{self.label(section, key)}: {message}")

    def unknown(self, data: Mapping[str, Any], allowed: Any, section: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
                self.fail(section, key, f"unknown key ({hint})")

    def table(self, value: Any, section: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail("", section, "must be a table, e.g. [" + section + "]")
        return dict(value)

    def string(self, value: Any, section: str, key: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(section, key, f"must be a non-empty string, got {value!r}")
        return str(value)


def _display(path: Path) -> str:
    """The path relative to the working directory when it is below it (shorter in tables and errors)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_env(environ: Mapping[str, str]) -> Layer:
    """The ``OUTBOXCTL_*`` variables: ``DATABASE_URL``, ``BROKER_<key>``, any DJANGO_OUTBOX_PATTERN key."""
    layer = Layer(name="environment")
    known = ["OUTBOXCTL_CONFIG", "OUTBOXCTL_DATABASE_URL"]
    known += [f"{ENV_PREFIX}BROKER_{k.upper()}" for k in BROKER_KEYS]
    known += [f"{ENV_PREFIX}{k}" for k in conf.FIELD_NAMES]
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == "OUTBOXCTL_CONFIG":
            continue
        raw = environ[name]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "unset it"
            raise ConfigFileError(f"Unknown environment variable {name} ({hint}).")
        if name == "OUTBOXCTL_DATABASE_URL":
            try:
                layer.database = dburl.parse_url(raw)
            except dburl.DatabaseConfigError as exc:
                raise ConfigFileError(f"env {name}: {exc.message}") from None
            layer.database_source = f"env {name}"
            continue
        key = name[len(ENV_PREFIX) :]
        if key.startswith("BROKER_"):
            key = BROKER_KEYS[key[len("BROKER_") :].lower()]
        layer.outbox[key] = Sourced(_env_value(name, key, raw), f"env {name}")
    mapping = {key: sourced.value for key, sourced in layer.outbox.items()}
    for key, message, hint in conf.validate(mapping):
        raise ConfigFileError(f"{layer.outbox[key].source}: {key}: {message} ({hint})")
    return layer


def _env_value(name: str, key: str, raw: str) -> Any:
    default = getattr(conf.DEFAULTS, key)

    def fail(message: str) -> Any:
        raise ConfigFileError(f"env {name}: {message}")

    if key == "DEFAULT_STOMP_HOST_AND_PORTS":
        return _hosts(raw, fail)
    if isinstance(default, bool):
        if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            fail(f"must be true or false, got {raw!r}")
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if key == "DEFAULT_STOMP_HEARTBEATS":
        parts = raw.split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            fail(f'must be "send_ms,receive_ms", got {raw!r}')
        return (int(parts[0]), int(parts[1]))
    if isinstance(default, Mapping):
        try:
            return json.loads(raw)
        except ValueError:
            fail(f"must be a JSON object, got {raw!r}")
    if key == "DEFAULT_STOMP_SSL_VERSION":
        return int(raw) if raw.strip().isdigit() else fail(f"must be an integer, got {raw!r}")
    return raw
