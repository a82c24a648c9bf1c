"""Retention of Received rows on the real database: batches, the cache gate, recent rows kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_outbox_pattern.consuming import inbox
from django_outbox_pattern.models import Received
from tests.support.stomp_tools import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


def test_old_rows_are_deleted_in_batches_once_per_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    Received.objects.bulk_create([Received(msg_id=f"old-{n}", body={}) for n in range(5)])
    Received.objects.update(added=timezone.now() - timedelta(days=31))
    Received.objects.bulk_create([Received(msg_id=f"new-{n}", body={}) for n in range(2)])
    monkeypatch.setattr(inbox, "PURGE_BATCH_SIZE", 2)
    settings = settings_with(DAYS_TO_KEEP_DATA=30, OUTBOX_PATTERN_CONSUMER_CACHE_KEY="test-retention-batches")
    cache.delete(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert inbox.purge_if_due(inbox.DatabaseInbox(), settings) == 5
        assert inbox.purge_if_due(inbox.DatabaseInbox(), settings) is None  # not due again within the TTL
    finally:
        cache.delete(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert sorted(Received.objects.values_list("msg_id", flat=True)) == ["new-0", "new-1"]


def test_a_stop_request_ends_the_purge_between_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    Received.objects.bulk_create([Received(msg_id=f"old-{n}", body={}) for n in range(4)])
    Received.objects.update(added=timezone.now() - timedelta(days=2))
    batches: list[int] = []

    def stop_after_first_batch() -> bool:
        batches.append(1)
        return len(batches) > 1

    deleted = inbox.DatabaseInbox().purge_older_than(
        timezone.now() - timedelta(days=1), batch_size=3, should_stop=stop_after_first_batch
    )
    assert deleted == 3
    assert Received.objects.count() == 1
