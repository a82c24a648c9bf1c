"""Message headers stored with every outbox row and sent with it."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from django_outbox_pattern.core import identity


def generate_headers(message: Any) -> dict[str, str]:
    """The default DEFAULT_GENERATE_HEADERS: identity, destination, type, time and correlation id."""
    msg_id = str(message.id)
    return {
        identity.ID_HEADER: msg_id,
        identity.DESTINATION_HEADER: message.destination,
        identity.TYPE_HEADER: message.__class__.__name__,
        identity.SENT_TIME_HEADER: timezone.now().isoformat(),
        identity.CORRELATION_HEADER: msg_id,
    }


def get_message_headers(message: Any) -> dict[str, Any]:
    """Generated headers merged with the row's own: custom ones are kept, generated ids win.

    The active OpenTelemetry trace context (tracing.py; nothing without OpenTelemetry) comes first, so a
    ``traceparent`` the generator or the row sets explicitly wins.
    """
    from django_outbox_pattern import conf, tracing

    generate = conf.import_object(conf.get_settings().DEFAULT_GENERATE_HEADERS)
    generated = {str(k): _as_text(v) for k, v in (generate(message) or {}).items()}
    custom = {str(k): _as_text(v) for k, v in (message.headers or {}).items()}
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
        return str(value.isoformat())
    if isinstance(value, (int, float, uuid.UUID)):
        return str(value)
    return value
