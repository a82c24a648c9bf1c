"""The rules every ``DJANGO_OUTBOX_PATTERN`` value is checked and normalised by: types, ranges, shapes.

Pure data and functions (nothing of the project is imported), below both ``conf.py`` (the settings object)
and ``coercion.py`` (the lenient reading of 3.x mappings), which both apply them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

SETTINGS_NAME = "DJANGO_OUTBOX_PATTERN"
SECRET_KEYS = frozenset(
    {"DEFAULT_STOMP_PASSCODE", "DEFAULT_STOMP_SSL_PASSWORD", "DEFAULT_RABBITMQ_MANAGEMENT_PASSWORD"}
)
URL_KEYS = frozenset({"DEFAULT_RABBITMQ_MANAGEMENT_URL"})  # may hold user:password@: masked when shown
UNROUTABLE_POLICIES = ("hold", "send")

NUMBER_RANGES: dict[str, tuple[type, float, float | None]] = {
    "DEFAULT_MAXIMUM_BACKOFF": (float, 0, None),
    "DEFAULT_MAXIMUM_RETRY_ATTEMPTS": (int, 1, None),
    "DEFAULT_PAUSE_FOR_RETRY": (float, 0, None),
    "DEFAULT_WAIT_RETRY": (float, 0, None),
    "DAYS_TO_KEEP_DATA": (int, 0, None),
    "REMOVE_DATA_CACHE_TTL": (int, 0, None),
    "DEFAULT_PUBLISHED_CHUNK_SIZE": (int, 1, 10000),
    "DEFAULT_PRODUCER_WAITING_TIME": (float, 0.001, None),
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": (float, 0, None),
    "DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS": (int, 0, None),
    "DEFAULT_CONSUMER_RETRY_WAIT": (float, 0, None),
    "DEFAULT_RECEIPT_TIMEOUT": (float, 0.001, None),
    "DEFAULT_CONNECT_TIMEOUT": (float, 0.001, None),
    "DEFAULT_RELAY_LEASE": (float, 1, None),
    "DEFAULT_RETRY_BASE_DELAY": (float, 0, None),
    "DEFAULT_CONSUMER_STALL_THRESHOLD": (float, 1, None),
    "DEFAULT_CONSUMER_BATCH_SIZE": (int, 1, 1000),
    "DEFAULT_ROUTING_CHECK_INTERVAL": (float, 1, None),
}
NULLABLE_BOOLS = {"DEFAULT_RELAY_NOTIFY"}  # None: decided at run time (see conf.py)
BOOLS = {
    "DEFAULT_STOMP_USE_SSL",
    "DEFAULT_EXCLUSIVE_QUEUE",
    "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND",
    "DEFAULT_RELAY_NOTIFY",
}
STRINGS = {
    "DEFAULT_CONNECTION_CLASS",
    "DEFAULT_CONSUMER_LISTENER_CLASS",
    "DEFAULT_PRODUCER_LISTENER_CLASS",
    "DEFAULT_STOMP_VHOST",
    "DEFAULT_STOMP_USERNAME",
    "DEFAULT_STOMP_PASSCODE",
    "OUTBOX_PATTERN_PUBLISHER_CACHE_KEY",
    "OUTBOX_PATTERN_CONSUMER_CACHE_KEY",
    "DEFAULT_PUBLISHED_CLASS",
    "DEFAULT_RECEIVED_CLASS",
}
OPTIONAL_STRINGS = {
    "DEFAULT_STOMP_KEY_FILE",
    "DEFAULT_STOMP_CERT_FILE",
    "DEFAULT_STOMP_CA_CERTS",
    "DEFAULT_STOMP_SSL_PASSWORD",
    "DEFAULT_RABBITMQ_MANAGEMENT_USERNAME",
    "DEFAULT_RABBITMQ_MANAGEMENT_PASSWORD",
}

Problem = tuple[str, str, str]  # (key, message, hint)


def validate(mapping: Mapping[str, Any], defaults: Any) -> list[Problem]:
    """Every problem of a user mapping: unknown keys (with a did-you-mean hint), wrong types and ranges.

    ``defaults``: the settings dataclass's default instance (its fields are the known keys)."""
    field_names = tuple(f.name for f in dataclasses.fields(defaults))
    if not isinstance(mapping, Mapping):
        return [(SETTINGS_NAME, "must be a dict", "Set DJANGO_OUTBOX_PATTERN = {...} in settings.")]
    problems: list[Problem] = []
    for key, value in mapping.items():
        if key not in field_names:
            close = difflib.get_close_matches(str(key), field_names, n=1)
            hint = f"did you mean {close[0]}?" if close else "remove it; see the README's Settings section."
            problems.append((str(key), "unknown setting", hint))
            continue
        message = check_value(key, value)
        if message and key in SECRET_KEYS:  # never echo a secret, even a malformed one
            message = message.replace(repr(value), f"a {type(value).__name__} value (hidden)")
            problems.append((key, message, f"fix {SETTINGS_NAME}[{key!r}]: it must be a string"))
        elif message:
            problems.append(
                (key, message, f"fix {SETTINGS_NAME}[{key!r}]; default is {getattr(defaults, key)!r}")
            )
    return problems


def check_value(key: str, value: Any) -> str | None:
    if key == "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT" and value is None:
        return None
    if key in NUMBER_RANGES:
        kind, low, high = NUMBER_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            if isinstance(value, str) and _parses(value, kind):
                value = kind(value)
            else:
                return f"must be {'a number' if kind is float else 'a whole number'}, got {value!r}"
        if value < low or (high is not None and value > high):
            return f"must be between {low} and {high}" if high is not None else f"must be at least {low}"
        return None
    if key in BOOLS:
        if isinstance(value, bool) or (value is None and key in NULLABLE_BOOLS):
            return None
        return f"must be True or False, got {value!r}"
    if key in STRINGS:
        return None if isinstance(value, str) and value else f"must be a non-empty string, got {value!r}"
    if key in OPTIONAL_STRINGS:
        return None if value is None or isinstance(value, str) else f"must be a string or None, got {value!r}"
    if key == "DEFAULT_STOMP_HOST_AND_PORTS":
        return _check_hosts(value)
    if key == "DEFAULT_RABBITMQ_MANAGEMENT_URL":
        ok = value is None or (isinstance(value, str) and value.startswith(("http://", "https://")))
        return None if ok else f"must be None or an http(s):// URL, got {mask_url(str(value))!r}"
    if key == "DEFAULT_UNROUTABLE_MESSAGES":
        ok = value in UNROUTABLE_POLICIES
        return None if ok else f"must be one of {', '.join(map(repr, UNROUTABLE_POLICIES))}, got {value!r}"
    if key == "DEFAULT_STOMP_HEARTBEATS":
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        return None if ok else f"must be two non-negative milliseconds (send, receive), got {value!r}"
    if key == "DEFAULT_STOMP_QUEUE_HEADERS":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return f"must be a dict of header names to values, got {value!r}"
        return None
    if key in ("DEFAULT_GENERATE_HEADERS", "DEFAULT_STOMP_CERT_VALIDATOR"):
        ok = (
            callable(value)
            or (isinstance(value, str) and bool(value))
            or (value is None and "VALIDATOR" in key)
        )
        return None if ok else f"must be a dotted path or a callable, got {value!r}"
    if key == "DEFAULT_STOMP_SSL_VERSION":
        return (
            None
            if value is None or isinstance(value, int)
            else f"must be an ssl.PROTOCOL_* constant, got {value!r}"
        )
    return None


def mask_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``********``."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:********@{host}"))
    except ValueError:
        return "********"


def _parses(value: str, kind: type) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _check_hosts(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or not value:
        return f"must be a non-empty list of (host, port) pairs, got {value!r}"
    for item in value:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and item[0]):
            return f"each entry must be a (host, port) pair, got {item!r}"
        port = item[1]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            return f"port must be a whole number from 1 to 65535, got {port!r}"
    return None


def normalise(key: str, value: Any) -> Any:
    if key == "DEFAULT_STOMP_HOST_AND_PORTS":
        return tuple((str(host), int(port)) for host, port in value)
    if key == "DEFAULT_STOMP_HEARTBEATS":
        return (int(value[0]), int(value[1]))
    if key == "DEFAULT_STOMP_QUEUE_HEADERS":
        return MappingProxyType({str(k): _header_value(v) for k, v in value.items()})
    if key in NUMBER_RANGES and value is not None:
        kind = NUMBER_RANGES[key][0]
        return kind(value)
    return value


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
