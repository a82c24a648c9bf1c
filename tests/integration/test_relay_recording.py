"""PostgreSQL: inside run(), landed batches are recorded on the relay's recording thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.relaying import batches, recording
from tests.support.broker_helpers import QueueDrain, count_ids
from tests.support.relay_helpers import make_relay, make_rows, make_settings, statuses

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the recording thread is used on PostgreSQL only")


def _record_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("outbox-relay-record")]


def test_a_drain_records_full_batches_on_the_recording_thread_and_nothing_is_left_behind(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    settings = make_settings(DEFAULT_PUBLISHED_CHUNK_SIZE=10)
    rows = make_rows(destination, 45)  # four full batches and a partial one
    engine = make_relay(settings)
    assert isinstance(engine.recorder, recording.BackgroundRecorder)
    marked_on: list[str] = []
    mark = engine.store.mark_published

    def noting_mark(ids: Sequence[Any], *, now: Any) -> int:
        marked_on.append(threading.current_thread().name)
        return mark(ids, now=now)

    engine.store.mark_published = noting_mark  # type: ignore[method-assign]
    landed: list[batches.BatchResult] = []
    with QueueDrain(settings, destination) as drain:
        engine.run(until_empty=True, on_batch=landed.append)
        received = drain.wait_for(45, timeout=30)
    assert statuses()[StatusChoice.SUCCEEDED] == 45
    assert sum(result.published for result in landed) == 45
    assert count_ids(received) == {str(row.id): 1 for row in rows}
    assert any(name.startswith("outbox-relay-record") for name in marked_on)
    assert _record_threads() == []  # run() ended the thread and closed its connection


def test_run_once_alone_records_on_the_callers_thread(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    settings = make_settings(DEFAULT_PUBLISHED_CHUNK_SIZE=10)
    make_rows(destination, 5)
    engine = make_relay(settings)
    with QueueDrain(settings, destination):
        try:
            assert engine.run_once() == 5
        finally:
            engine.close()
    assert statuses()[StatusChoice.SUCCEEDED] == 5
    assert _record_threads() == []
