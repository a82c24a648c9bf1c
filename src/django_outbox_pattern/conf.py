"""One settings object: every ``DJANGO_OUTBOX_PATTERN`` key with its default, read lazily.

Attribute names are the README keys, so they can be grepped against the spec. ``get_settings()`` reads
``settings.DJANGO_OUTBOX_PATTERN`` when first called and is cleared by ``setting_changed``, so
``override_settings`` works. Nothing here reads settings at import time. A mapping is read as 3.x read it
(unknown keys ignored, values coerced, only unusable ones fatal): that is ``coercion.review()``.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from django_outbox_pattern import coercion, exceptions, settings_rules

SETTINGS_NAME = settings_rules.SETTINGS_NAME
SECRET_KEYS = settings_rules.SECRET_KEYS
Problem = settings_rules.Problem
URL_KEYS = settings_rules.URL_KEYS
UNROUTABLE_POLICIES = settings_rules.UNROUTABLE_POLICIES
mask_url = settings_rules.mask_url

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
    # The spec's default. On a cluster, (3000, 3000) notices a hung node (SIGSTOP, a stalled VM: only missing
    # heart-beats reveal it, after 1.5 x the receive interval) within 4.5 s instead of 15 s (docs/cluster.md).
    DEFAULT_STOMP_HEARTBEATS: tuple[int, int] = (10000, 10000)
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
    DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT: float | None = 90  # None: no limit (as 3.x)
    DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS: int = 3
    DEFAULT_CONSUMER_RETRY_WAIT: float = 2
    # --- this project's additions ---
    DEFAULT_RECEIPT_TIMEOUT: float = 30  # seconds to wait for the broker's RECEIPT of a SEND
    DEFAULT_CONNECT_TIMEOUT: float = 10  # seconds to wait for CONNECTED
    DEFAULT_RELAY_LEASE: float = 120  # seconds a claimed batch stays reserved for its relay
    # PostgreSQL LISTEN/NOTIFY wake-up for the relay: True, False, or None (the default): on where the outbox
    # database is PostgreSQL through psycopg 3, off elsewhere (relaying/notify.py).
    DEFAULT_RELAY_NOTIFY: bool | None = None
    DEFAULT_RETRY_BASE_DELAY: float = 1  # first per-row retry delay in seconds, doubled each attempt
    # A consumer holding a message unsettled longer than this (seconds) is reported as stalled.
    DEFAULT_CONSUMER_STALL_THRESHOLD: float = 300
    # Messages whose callbacks run in one database transaction (each in a savepoint), committed once and
    # then acked together; 1: one transaction per message (consuming/batching.py).
    DEFAULT_CONSUMER_BATCH_SIZE: int = 1
    # RabbitMQ's management HTTP API (e.g. http://127.0.0.1:15672): lets the relay and `outboxctl check`
    # tell whether a destination routes to a queue. None: not used, no routing check.
    DEFAULT_RABBITMQ_MANAGEMENT_URL: str | None = dataclasses.field(default=None, repr=False)
    DEFAULT_RABBITMQ_MANAGEMENT_USERNAME: str | None = None  # None: DEFAULT_STOMP_USERNAME
    DEFAULT_RABBITMQ_MANAGEMENT_PASSWORD: str | None = dataclasses.field(default=None, repr=False)
    # What the relay does with rows of a destination no queue is bound to: "hold" them (pending, retried
    # later) or "send" them anyway with a warning (the broker drops them).
    DEFAULT_UNROUTABLE_MESSAGES: str = "hold"
    DEFAULT_ROUTING_CHECK_INTERVAL: float = 30  # seconds a destination's routing answer is cached

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any] | None, top_level: Mapping[str, Any] | None = None
    ) -> OutboxSettings:
        """Build the settings from a user mapping read as 3.x read it (coercion.py: unknown keys ignored,
        values coerced); raise ConfigurationError if a value is unusable. ``top_level``: the top-level
        Django heart-beat settings (``coercion.top_level_settings()``)."""
        found = coercion.review(mapping or {}, top_level, defaults=DEFAULTS)
        if found.errors:
            raise exceptions.ConfigurationError(_describe(found.errors))
        return cls._from_values(found.values)

    @classmethod
    def _from_values(cls, values: Mapping[str, Any]) -> OutboxSettings:
        return cls(**{key: settings_rules.normalise(key, value) for key, value in values.items()})

    def public_dict(self) -> dict[str, Any]:
        """All values with secrets masked: safe to print or log."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in SECRET_KEYS and value:
                value = "********"
            elif field.name in URL_KEYS and isinstance(value, str):
                value = mask_url(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            elif callable(value):
                value = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
            out[field.name] = value
        return out

    @property
    def management_credentials(self) -> tuple[str, str]:
        """(username, password) for the management API: its own settings, else the STOMP login."""
        user = self.DEFAULT_RABBITMQ_MANAGEMENT_USERNAME or self.DEFAULT_STOMP_USERNAME
        password = self.DEFAULT_RABBITMQ_MANAGEMENT_PASSWORD
        return user, self.DEFAULT_STOMP_PASSCODE if password is None else password

    @property
    def ssl_version(self) -> int:
        return self.DEFAULT_STOMP_SSL_VERSION or ssl.PROTOCOL_TLS_CLIENT

    @property
    def queue_prefetch(self) -> int:
        from django_outbox_pattern.core import addressing

        return max(1, addressing.prefetch_count(self.DEFAULT_STOMP_QUEUE_HEADERS, default=1))


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(OutboxSettings))
DEFAULTS = OutboxSettings()


def validate(mapping: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a user mapping, strictly: unknown keys (did you mean?), wrong types and ranges."""
    return settings_rules.validate(mapping, DEFAULTS)


def review(mapping: Any, top_level: Mapping[str, Any] | None = None) -> coercion.Review:
    """``mapping`` read as 3.x read it (coercion.py): usable values, unknown keys, coerced, unusable."""
    return coercion.review(mapping, top_level, defaults=DEFAULTS)


_cached: tuple[OutboxSettings, list[Problem]] | None = None
_logged: set[str] = set()
_CACHE_KEYS = (SETTINGS_NAME, "STOMP_OUTGOING_HEARTBEAT", "STOMP_INCOMING_HEARTBEAT")
# Values assigned to ``django_outbox_pattern.settings.DEFAULT_*`` (3.x tests patch them): they win over
# Django's DJANGO_OUTBOX_PATTERN until deleted. Empty in production.
_overrides: dict[str, Any] = {}


def get_settings(*, strict: bool = True) -> OutboxSettings:
    """The current settings, read from Django's settings on first use after any change.

    Unknown keys and values 3.x coerced never raise (they are logged once, and ``check`` warns). A value
    nothing can use raises ConfigurationError, unless ``strict=False``: the write path
    (``Published.save()``) then gets the default for it and never fails because of the settings.
    """
    global _cached
    if _cached is None:
        found = review({**_django_mapping(), **_overrides}, coercion.top_level_settings())
        for key, message, hint in found.errors + found.unknown + found.coerced:
            _log_once(f"{SETTINGS_NAME}[{key!r}] {message} ({hint})")
        _cached = (OutboxSettings._from_values(found.values), found.errors)
    current, errors = _cached
    if errors and strict:
        raise exceptions.ConfigurationError(_describe(errors) + " Run `python manage.py check`.")
    return current


def _describe(errors: list[Problem]) -> str:
    return f"Invalid {SETTINGS_NAME} settings: " + "; ".join(
        f"{key}: {message}" for key, message, _ in errors
    )


def _log_once(text: str) -> None:
    if text not in _logged:
        _logged.add(text)
        logging.getLogger(__name__).warning(text, extra={"action": "settings_problem_found"})


def _django_mapping() -> dict[str, Any]:
    from django.conf import settings

    return dict(getattr(settings, SETTINGS_NAME, None) or {})


def set_override(key: str, value: Any) -> None:
    """Make ``key`` read ``value`` until ``clear_override(key)``; setting the value Django's settings give
    removes the override (so a patch restored by assignment, as ``monkeypatch`` does, leaves none)."""
    global _cached
    _overrides.pop(key, None)
    _cached = None
    if value != getattr(get_settings(), key):
        _overrides[key] = value
        _cached = None


def clear_override(key: str) -> None:
    global _cached
    _overrides.pop(key, None)
    _cached = None


def clear_cache(**kwargs: Any) -> None:
    """Receiver for ``setting_changed``: forget the cached settings."""
    global _cached
    if kwargs.get("setting") in (None, *_CACHE_KEYS):
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
