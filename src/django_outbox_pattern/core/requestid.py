"""The current request id, shared with request-id-django-log as 3.x shared it.

3.x read the request id that request-id-django-log's middleware keeps in a thread-local
(``request_id_django_log.local_threading.request_id``) as the ``dop-correlation-id`` of every new outbox row,
and while a consumer callback ran it put the message's correlation id there, so rows written inside the
callback carried it on (and that package's log filter printed it). The import is optional: without the
package, a thread-local of this module plays the same part, so the behaviour is the same.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

NO_REQUEST_ID = "none"  # what request-id-django-log reports when no request id is set

_fallback = threading.local()


def _local() -> Any:
    try:
        from request_id_django_log import local_threading
    except ImportError:
        return _fallback
    return local_threading


def current() -> str | None:
    """The current request id, or None when there is none."""
    value = getattr(_local(), "request_id", None)
    if not value or value == NO_REQUEST_ID:
        return None
    return str(value)


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[str]:
    """Make ``request_id`` (a new id when it is missing) the current request id for the block."""
    local = _local()
    value = request_id or str(uuid.uuid4())
    missing = object()
    previous = getattr(local, "request_id", missing)
    local.request_id = value
    try:
        yield value
    finally:
        if previous is missing:
            with contextlib.suppress(AttributeError):
                del local.request_id
        else:
            local.request_id = previous
