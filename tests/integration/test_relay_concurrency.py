"""Several relays on one outbox: every row reaches the broker exactly once."""

from __future__ import annotations

import pytest
from django.db import connection

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from tests.support.broker_helpers import QueueDrain, count_ids
from tests.support.relay_helpers import RelayThread, make_relay, make_rows, make_settings, statuses

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def drain_with_relays(
    settings: conf.OutboxSettings, destination: str, rows: int, relays: int, chunk: int
) -> tuple[list[Published], list[RelayThread], dict[str, int]]:
    created = make_rows(destination, rows)
    threads = [
        RelayThread(make_relay(make_settings(DEFAULT_PUBLISHED_CHUNK_SIZE=chunk)), until_empty=True)
        for _ in range(relays)
    ]
    with QueueDrain(settings, destination) as drain:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive() and thread.error is None, thread.error
        counts = count_ids(drain.sync(timeout=60))
    return created, threads, dict(counts)


@pytest.mark.slow
def test_three_relays_drain_5000_rows_each_arrives_exactly_once(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises relays: covered by the two-relay SQLite test")
    rows, threads, counts = drain_with_relays(
        make_settings(), f"/queue/{unique_name}", 5000, relays=3, chunk=100
    )
    assert counts == {str(r.id): 1 for r in rows}  # every row once, none twice
    assert statuses() == {StatusChoice.SUCCEEDED: 5000, StatusChoice.SCHEDULE: 0, StatusChoice.FAILED: 0}
    published = [sum(b.published for b in t.batches) for t in threads]
    assert sum(published) == 5000  # disjoint claims: no row was confirmed by two relays
    assert sum(1 for p in published if p) >= 2, published  # they really shared the work


def test_two_relays_on_any_database_never_double_send(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    rows, threads, counts = drain_with_relays(
        make_settings(), f"/queue/{unique_name}", 600, relays=2, chunk=20
    )
    assert counts == {str(r.id): 1 for r in rows}
    assert sum(b.published for t in threads for b in t.batches) == 600
    assert not Published.objects.exclude(locked_by="").exists()  # no lease left behind
