"""Message headers stored with every outbox row and sent with it."""

from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from django_outbox_pattern.core import identity, requestid


def generate_headers(message: Any) -> dict[str, str]:
    """The default DEFAULT_GENERATE_HEADERS: identity, destination, type, time and correlation id.

    As 3.x: the time as Django's JSON encoder writes it (``2026-12-04T15:37:22.362Z``); the correlation id
    is the current request id (request-id-django-log's, or the message a callback is handling), else new.
    """
    return {
        identity.ID_HEADER: str(message.id),
        identity.DESTINATION_HEADER: message.destination,
        identity.TYPE_HEADER: message.__class__.__name__,
        identity.SENT_TIME_HEADER: json_time(timezone.now()),
        identity.CORRELATION_HEADER: requestid.current() or str(uuid.uuid4()),
    }


def json_time(value: Any) -> str:
    """A date, time or datetime as ``DjangoJSONEncoder`` writes it (milliseconds, ``Z`` for UTC); any
    other object with ``isoformat()`` (or an aware time, which that encoder refuses) as it says."""
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        with contextlib.suppress(ValueError):
            return str(DjangoJSONEncoder().default(value))
    return str(value.isoformat())


def get_message_headers(published: Any) -> dict[str, Any]:
    """Generated headers merged with the row's own: custom ones are kept, generated ids win.

    The active OpenTelemetry trace context (tracing.py; nothing without OpenTelemetry) comes first, so a
    ``traceparent`` the generator or the row sets explicitly wins.
    """
    from django_outbox_pattern import conf, tracing

    # strict=False: a settings problem never fails a save (the relay and `check` report it).
    generate = conf.import_object(conf.get_settings(strict=False).DEFAULT_GENERATE_HEADERS)
    generated = {str(k): _as_text(v) for k, v in (generate(published) or {}).items()}
    custom = {str(k): _as_text(v) for k, v in (published.headers or {}).items()}
    merged = {
        **tracing.trace_headers(),
        **generated,
        **{k: v for k, v in custom.items() if k not in identity.PROTECTED_HEADERS},
    }
    for key in identity.PROTECTED_HEADERS & generated.keys():
        merged[key] = generated[key]
    return merged


def _as_text(value: Any) -> Any:
    """Scalars become text; anything else is kept so the relay can dead-letter it with a reason."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return json_time(value)
    if isinstance(value, (int, float, uuid.UUID)):
        return str(value)
    return value
