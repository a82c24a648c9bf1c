"""The 3.2.1 consumer's benchmark callback: it runs under the reference Python, which has no copy of this
project, so this module imports nothing of it (3.2.1's ``payload.save()`` saves the ``Received`` row)."""

from __future__ import annotations

from typing import Any


def save_inbox(payload: Any) -> None:
    """Record the message in the inbox, in a transaction (what ``bench.consumer.save_inbox`` does)."""
    from django.db import transaction

    with transaction.atomic():
        payload.save()
