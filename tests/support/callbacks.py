"""Callbacks run by `python -m django subscribe ...` in subprocess tests (and usable in-process).

Markers go to the directory named by OUTBOX_TEST_MARKERS: ``started-<msg_id>`` when a callback starts,
and a callback of ``slow_save_order`` waits (up to 60 s) for a ``release`` file before saving.
"""

from __future__ import annotations

import os
import pathlib
import time

from django.db import transaction

from django_outbox_pattern.payloads import Payload
from tests.testapp.models import Order


def _markers() -> pathlib.Path | None:
    directory = os.environ.get("OUTBOX_TEST_MARKERS")
    return pathlib.Path(directory) if directory else None


def save_order(payload: Payload) -> None:
    """The README's pattern: business row and inbox row in one transaction."""
    with transaction.atomic():
        Order.objects.create(msg_id=payload.msg_id, payload=payload.body)
        payload.save()


def slow_save_order(payload: Payload) -> None:
    """Like save_order, after waiting for the test's ``release`` marker."""
    markers = _markers()
    assert markers is not None, "set OUTBOX_TEST_MARKERS"
    (markers / f"started-{payload.msg_id}").touch()
    deadline = time.monotonic() + 60
    while not (markers / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    save_order(payload)


def nack(payload: Payload) -> None:
    payload.nack()
