"""One settings object: every ``DJANGO_OUTBOX_PATTERN`` key with its default, read lazily.

Attribute names are the README keys, so they can be grepped against the spec. ``get_settings()`` reads
``settings.DJANGO_OUTBOX_PATTERN`` when first called and is cleared by ``setting_changed``, so
``override_settings`` works. Nothing here reads settings at import time.
"""

from __future__ import annotations

import dataclasses
import difflib
import ssl
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from django_outbox_pattern import exceptions

SETTINGS_NAME = "DJANGO_OUTBOX_PATTERN"
SECRET_KEYS = frozenset({"DEFAULT_STOMP_PASSCODE", "DEFAULT_STOMP_SSL_PASSWORD"})

_DEFAULT_QUEUE_HEADERS: Mapping[str, str] = MappingProxyType(
    {"durable": "true", "auto-delete": "false", "prefetch-count": "1"}
)


@dataclasses.dataclass(frozen=True)
class OutboxSettings:
    """Every setting of the spec README plus this project's additions, with their defaults."""

    # --- keys of the 2.0.0 README ---
    DEFAULT_CONNECTION_CLASS: str = "stomp.StompConnection12"
    DEFAULT_CONSUMER_LISTENER_CLASS: str = "django_outbox_pattern.listeners.ConsumerListener"
    DEFAULT_GENERATE_HEADERS: str | Callable[..., Any] = "django_outbox_pattern.headers.generate_headers"
    DEFAULT_MAXIMUM_BACKOFF: float = 3600
    DEFAULT_MAXIMUM_RETRY_ATTEMPTS: int = 50
    DEFAULT_PAUSE_FOR_RETRY: float = 240
    DEFAULT_WAIT_RETRY: float = 60
    DEFAULT_PRODUCER_LISTENER_CLASS: str = "django_outbox_pattern.listeners.ProducerListener"
    DEFAULT_STOMP_HOST_AND_PORTS: tuple[tuple[str, int], ...] = (("127.0.0.1", 61613),)
    DEFAULT_STOMP_QUEUE_HEADERS: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: _DEFAULT_QUEUE_HEADERS
    )
    # The spec's default was (10000, 10000): a hung broker node (SIGSTOP, a stalled VM) is noticed only by
    # missing heart-beats, after 1.5 x the receive interval. 3 s notices it within 4.5 s, so the relay and the
    # consumer move to another node of DEFAULT_STOMP_HOST_AND_PORTS within 10 s (docs/cluster.md).
    DEFAULT_STOMP_HEARTBEATS: tuple[int, int] = (3000, 3000)
    DEFAULT_STOMP_VHOST: str = "/"
    DEFAULT_STOMP_USERNAME: str = "guest"
    DEFAULT_STOMP_PASSCODE: str = dataclasses.field(default="guest", repr=False)
    DEFAULT_STOMP_USE_SSL: bool = False
    DEFAULT_STOMP_KEY_FILE: str | None = None
    DEFAULT_STOMP_CERT_FILE: str | None = None
    DEFAULT_STOMP_CA_CERTS: str | None = None
    DEFAULT_STOMP_CERT_VALIDATOR: Callable[..., Any] | str | None = None
    # None means a modern TLS client context (ssl.PROTOCOL_TLS_CLIENT), not the spec's old TLSv1.
    DEFAULT_STOMP_SSL_VERSION: int | None = None
    DEFAULT_STOMP_SSL_PASSWORD: str | None = dataclasses.field(default=None, repr=False)
    DEFAULT_EXCLUSIVE_QUEUE: bool = False
    DAYS_TO_KEEP_DATA: int = 30
    REMOVE_DATA_CACHE_TTL: int = 86400
    OUTBOX_PATTERN_PUBLISHER_CACHE_KEY: str = "remove_old_messages_django_outbox_pattern_publisher"
    OUTBOX_PATTERN_CONSUMER_CACHE_KEY: str = "remove_old_messages_django_outbox_pattern_consumer"
    DEFAULT_PUBLISHED_CHUNK_SIZE: int = 200
    # --- keys of later 2.x/3.x releases ---
    DEFAULT_PUBLISHED_CLASS: str = "django_outbox_pattern.models.Published"
    DEFAULT_RECEIVED_CLASS: str = "django_outbox_pattern.models.Received"
    DEFAULT_PRODUCER_WAITING_TIME: float = 1
    DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND: bool = False
    DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT: float = 90
    DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS: int = 3
    DEFAULT_CONSUMER_RETRY_WAIT: float = 2
    # --- this project's additions ---
    DEFAULT_RECEIPT_TIMEOUT: float = 30  # seconds to wait for the broker's RECEIPT of a SEND
    DEFAULT_CONNECT_TIMEOUT: float = 10  # seconds to wait for CONNECTED
    DEFAULT_RELAY_LEASE: float = 120  # seconds a claimed batch stays reserved for its relay
    DEFAULT_RELAY_NOTIFY: bool = False  # PostgreSQL LISTEN/NOTIFY wake-up for the relay (opt-in)
    DEFAULT_RETRY_BASE_DELAY: float = 1  # first per-row retry delay in seconds, doubled each attempt

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> OutboxSettings:
        """Build the settings from a user mapping, normalising types; raise ConfigurationError if invalid."""
        mapping = dict(mapping or {})
        problems = validate(mapping)
        if problems:
            details = "; ".join(f"{key}: {message}" for key, message, _ in problems)
            raise exceptions.ConfigurationError(f"Invalid {SETTINGS_NAME} settings: {details}")
        return cls(**{key: _normalise(key, value) for key, value in mapping.items()})

    def public_dict(self) -> dict[str, Any]:
        """All values with secrets masked: safe to print or log."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in SECRET_KEYS and value:
                value = "********"
            elif isinstance(value, Mapping):
                value = dict(value)
            elif callable(value):
                value = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
            out[field.name] = value
        return out

    @property
    def ssl_version(self) -> int:
        return self.DEFAULT_STOMP_SSL_VERSION or ssl.PROTOCOL_TLS_CLIENT

    @property
    def queue_prefetch(self) -> int:
        try:
            return max(1, int(self.DEFAULT_STOMP_QUEUE_HEADERS.get("prefetch-count", "1")))
        except ValueError:
            return 1


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(OutboxSettings))
DEFAULTS = OutboxSettings()

_NUMBER_RANGES: dict[str, tuple[type, float, float | None]] = {
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
}
_BOOLS = {
    "DEFAULT_STOMP_USE_SSL",
    "DEFAULT_EXCLUSIVE_QUEUE",
    "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND",
    "DEFAULT_RELAY_NOTIFY",
}
_STRINGS = {
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
_OPTIONAL_STRINGS = {
    "DEFAULT_STOMP_KEY_FILE",
    "DEFAULT_STOMP_CERT_FILE",
    "DEFAULT_STOMP_CA_CERTS",
    "DEFAULT_STOMP_SSL_PASSWORD",
}

Problem = tuple[str, str, str]  # (key, message, hint)


def validate(mapping: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a user mapping: unknown keys (with a did-you-mean hint), wrong types and ranges."""
    if not isinstance(mapping, Mapping):
        return [(SETTINGS_NAME, "must be a dict", "Set DJANGO_OUTBOX_PATTERN = {...} in settings.")]
    problems: list[Problem] = []
    for key, value in mapping.items():
        if key not in FIELD_NAMES:
            close = difflib.get_close_matches(str(key), FIELD_NAMES, n=1)
            hint = f"did you mean {close[0]}?" if close else "remove it; see the README's Settings section."
            problems.append((str(key), "unknown setting", hint))
            continue
        message = _check_value(key, value)
        if message and key in SECRET_KEYS:  # never echo a secret, even a malformed one
            message = message.replace(repr(value), f"a {type(value).__name__} value (hidden)")
            problems.append((key, message, f"fix {SETTINGS_NAME}[{key!r}]: it must be a string"))
        elif message:
            problems.append(
                (key, message, f"fix {SETTINGS_NAME}[{key!r}]; default is {getattr(DEFAULTS, key)!r}")
            )
    return problems


def _check_value(key: str, value: Any) -> str | None:
    if key in _NUMBER_RANGES:
        kind, low, high = _NUMBER_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            if isinstance(value, str) and _parses(value, kind):
                value = kind(value)
            else:
                return f"must be {'a number' if kind is float else 'a whole number'}, got {value!r}"
        if value < low or (high is not None and value > high):
            return f"must be between {low} and {high}" if high is not None else f"must be at least {low}"
        return None
    if key in _BOOLS:
        return None if isinstance(value, bool) else f"must be True or False, got {value!r}"
    if key in _STRINGS:
        return None if isinstance(value, str) and value else f"must be a non-empty string, got {value!r}"
    if key in _OPTIONAL_STRINGS:
        return None if value is None or isinstance(value, str) else f"must be a string or None, got {value!r}"
    if key == "DEFAULT_STOMP_HOST_AND_PORTS":
        return _check_hosts(value)
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


def _normalise(key: str, value: Any) -> Any:
    if key == "DEFAULT_STOMP_HOST_AND_PORTS":
        return tuple((str(host), int(port)) for host, port in value)
    if key == "DEFAULT_STOMP_HEARTBEATS":
        return (int(value[0]), int(value[1]))
    if key == "DEFAULT_STOMP_QUEUE_HEADERS":
        return MappingProxyType({str(k): _header_value(v) for k, v in value.items()})
    if key in _NUMBER_RANGES:
        kind = _NUMBER_RANGES[key][0]
        return kind(value)
    return value


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_cached: OutboxSettings | None = None


def get_settings() -> OutboxSettings:
    """The current settings, read from Django's settings on first use after any change."""
    global _cached
    if _cached is None:
        from django.conf import settings

        _cached = OutboxSettings.from_mapping(getattr(settings, SETTINGS_NAME, None) or {})
    return _cached


def clear_cache(**kwargs: Any) -> None:
    """Receiver for ``setting_changed``: forget the cached settings."""
    global _cached
    if kwargs.get("setting") in (None, SETTINGS_NAME):
        _cached = None


def import_object(path_or_object: Any) -> Any:
    """A dotted path imported, or the object itself when it is not a string."""
    if not isinstance(path_or_object, str):
        return path_or_object
    from django.utils.module_loading import import_string

    try:
        return import_string(path_or_object)
    except Exception as exc:  # ImportError, or whatever its module raised while being imported
        raise exceptions.ConfigurationError(
            f"Cannot import {path_or_object!r}: {describe_error(exc)}"
        ) from exc


def describe_error(exc: BaseException) -> str:
    """An exception on one line: its message, with its type unless it is an ImportError."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ImportError) else f"{type(exc).__name__}: {text}"
