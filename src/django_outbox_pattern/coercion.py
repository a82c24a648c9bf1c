"""How a ``DJANGO_OUTBOX_PATTERN`` mapping is read leniently, the way 3.x read it.

3.x read every key with ``dict.get`` and used the value as it was: unknown keys were ignored, and stomp.py
or Python coerced what it could. ``review()`` does the same, but says so: an unknown key becomes a warning
(with a did-you-mean hint); a value 3.x coerced is coerced the same way, with a warning naming the value it
now has; only a value nothing can use is an error. Never raising here is what keeps the write path
(``Published.objects.create()``) free of settings errors; ``conf`` decides when errors are fatal.

The 3.x heart-beat overrides are honoured, per direction: ``DEFAULT_STOMP_OUTGOING_HEARTBEAT`` /
``DEFAULT_STOMP_INCOMING_HEARTBEAT`` in the mapping, else the top-level Django settings
``STOMP_OUTGOING_HEARTBEAT`` / ``STOMP_INCOMING_HEARTBEAT``, else ``DEFAULT_STOMP_HEARTBEATS``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import ssl
from collections.abc import Mapping
from typing import Any

from django_outbox_pattern import settings_rules as rules

# override key in DJANGO_OUTBOX_PATTERN -> (top-level Django setting, index in DEFAULT_STOMP_HEARTBEATS)
HEARTBEAT_OVERRIDES = {
    "DEFAULT_STOMP_OUTGOING_HEARTBEAT": ("STOMP_OUTGOING_HEARTBEAT", 0),
    "DEFAULT_STOMP_INCOMING_HEARTBEAT": ("STOMP_INCOMING_HEARTBEAT", 1),
}
TOP_LEVEL_KEYS = tuple(top for top, _ in HEARTBEAT_OVERRIDES.values())
MAX_CHUNK_SIZE = 10000
# Values RabbitMQ reads as true in a boolean SUBSCRIBE header (3.x sent ``str(DEFAULT_EXCLUSIVE_QUEUE)``).
_RABBITMQ_TRUE = ("true", "True")


@dataclasses.dataclass
class Review:
    """What a mapping holds: usable values (coerced), and the problems found on the way."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: list[rules.Problem] = dataclasses.field(default_factory=list)  # unusable: fatal on startup
    unknown: list[rules.Problem] = dataclasses.field(default_factory=list)  # ignored keys
    coerced: list[rules.Problem] = dataclasses.field(default_factory=list)  # read as another value


class _Unusable(Exception):
    pass


def review(mapping: Any, top_level: Mapping[str, Any] | None = None, *, defaults: Any) -> Review:
    """Read ``mapping`` as 3.x did; ``top_level`` holds the top-level Django settings ``TOP_LEVEL_KEYS``;
    ``defaults`` is the settings dataclass's default instance (its fields are the known keys).
    """
    field_names = tuple(f.name for f in dataclasses.fields(defaults))
    out = Review()
    if not isinstance(mapping, Mapping):
        hint = "Set DJANGO_OUTBOX_PATTERN = {...} in settings."
        out.errors.append((rules.SETTINGS_NAME, "must be a dict", hint))
        return out
    for key, value in mapping.items():
        if key in HEARTBEAT_OVERRIDES:
            continue
        if key not in field_names:
            close = difflib.get_close_matches(str(key), (*field_names, *HEARTBEAT_OVERRIDES), n=1)
            hint = f"did you mean {close[0]}?" if close else "remove it; see the README's Settings section."
            out.unknown.append((str(key), "is not a setting of this release: ignored", hint))
            continue
        try:
            coerced, note = _coerce(key, value)
        except _Unusable as exc:
            out.errors.append((key, str(exc), f"fix {rules.SETTINGS_NAME}[{key!r}]"))
            continue
        problems = rules.validate({key: coerced}, defaults)
        if problems:
            out.errors.extend(problems)
            continue
        if note:
            shown = "a value (hidden)" if key in rules.SECRET_KEYS else repr(value)
            out.coerced.append((key, f"{shown} {note}", f"write {coerced!r} to silence this warning"))
        out.values[key] = coerced
    _apply_heartbeat_overrides(mapping, top_level or {}, out, defaults.DEFAULT_STOMP_HEARTBEATS)
    return out


def _coerce(key: str, value: Any) -> tuple[Any, str | None]:
    """The value as 3.x (or stomp.py under it) would have used it, and a note when it changed."""
    if (
        key in rules.BOOLS
        and not isinstance(value, bool)
        and not (value is None and key in rules.NULLABLE_BOOLS)
    ):
        # DEFAULT_EXCLUSIVE_QUEUE: 3.x sent str(value) in a header, and RabbitMQ reads only "true"/"True";
        # the others: 3.x tested the value's truth ("false" is a non-empty string, so it meant True).
        result = str(value) in _RABBITMQ_TRUE if key == "DEFAULT_EXCLUSIVE_QUEUE" else bool(value)
        return result, f"is not True or False: read as {result}, as 3.x did"
    if key == "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT" and value is None:
        return None, None  # 3.x: wait for the current callback without a limit
    if key in rules.NUMBER_RANGES:
        return _number(key, value)
    if key == "DEFAULT_STOMP_HOST_AND_PORTS" and isinstance(value, (list, tuple)):
        if any(_text_port(item) for item in value):  # 3.x: socket.create_connection() took it as it was
            pairs = [(item[0], int(item[1])) if _text_port(item) else item for item in value]
            return pairs, "has a port given as text: read as a number"
        return value, None
    if key == "DEFAULT_STOMP_HEARTBEATS" and isinstance(value, (list, tuple)) and len(value) == 2:
        pair = (_milliseconds(value[0]), _milliseconds(value[1]))
        changed = any(isinstance(v, bool) or not isinstance(v, int) for v in value)
        return (pair, "is not two whole milliseconds: rounded") if changed else (value, None)
    if key == "DEFAULT_STOMP_SSL_VERSION" and isinstance(value, str):
        return _ssl_version(value)
    if key in rules.OPTIONAL_STRINGS and isinstance(value, os.PathLike):
        return os.fspath(value), None
    return value, None


def _number(key: str, value: Any) -> tuple[Any, str | None]:
    kind = rules.NUMBER_RANGES[key][0]
    note = None
    if isinstance(value, str):  # accepted silently, as before (3.x int()-ed some of them)
        try:
            value = float(value) if kind is float else int(value)
        except ValueError:
            return value, None  # validate() names the problem
    if kind is int and isinstance(value, float) and value.is_integer():
        value, note = int(value), "is not a whole number: read as one"
    if key == "DEFAULT_PUBLISHED_CHUNK_SIZE" and isinstance(value, int) and value > MAX_CHUNK_SIZE:
        value, note = MAX_CHUNK_SIZE, f"is more than a batch can hold: capped at {MAX_CHUNK_SIZE}"
    return value, note


def _text_port(item: Any) -> bool:
    return (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[1], str)
        and item[1].strip().isdigit()
    )


def _milliseconds(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Unusable(f"must be milliseconds (0 or more), got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise _Unusable(f"must be milliseconds (0 or more), got {value!r}")
    return round(number)


def _ssl_version(name: str) -> tuple[int | None, str]:
    bare = name.strip().removeprefix("ssl.")
    for candidate in (bare, f"PROTOCOL_{bare}"):
        constant = getattr(ssl, candidate, None)
        if candidate.startswith("PROTOCOL_") and isinstance(constant, int):
            return int(constant), f"is a name: read as ssl.{candidate}"
    return (
        None,
        "names no ssl.PROTOCOL_* constant: ignored (as 3.x with stomp.py 8 did), a TLS client context",
    )


def _apply_heartbeat_overrides(
    mapping: Mapping[str, Any], top_level: Mapping[str, Any], out: Review, default_beats: tuple[int, int]
) -> None:
    beats = list(out.values.get("DEFAULT_STOMP_HEARTBEATS", default_beats))
    changed = False
    for key, (top, index) in HEARTBEAT_OVERRIDES.items():
        source, value = (key, mapping.get(key)) if mapping.get(key) is not None else (top, top_level.get(top))
        if value is None:
            continue
        try:
            beats[index] = _milliseconds(value)
            changed = True
        except _Unusable as exc:
            out.errors.append((source, str(exc), "give whole milliseconds, e.g. 10000"))
    if changed:
        out.values["DEFAULT_STOMP_HEARTBEATS"] = (beats[0], beats[1])


def top_level_settings() -> dict[str, Any]:
    """The top-level Django settings that 3.x documented for heart-beats (``STOMP_*_HEARTBEAT``)."""
    from django.conf import settings

    return {key: getattr(settings, key) for key in TOP_LEVEL_KEYS if getattr(settings, key, None) is not None}
