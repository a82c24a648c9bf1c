"""Crash recovery: relays beat a heartbeat, and the rows of a relay that stopped beating are due at once."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, RelayProcess
from django_outbox_pattern.relaying import liveness, store
from tests.support.relay_helpers import make_rows

LEASE = datetime.timedelta(seconds=120)


def lease(rows: list[Published], token: str) -> None:
    Published.objects.filter(id__in=[r.id for r in rows]).update(
        locked_by=token, available_at=timezone.now() + LEASE
    )


def beat_seconds_ago(relay_id: str, seconds: float) -> None:
    """A relay whose last beat was ``seconds`` ago by the database's clock."""
    RelayProcess.objects.create(relay_id=relay_id, beat_at=Now())
    RelayProcess.objects.filter(relay_id=relay_id).update(
        beat_at=ExpressionWrapper(Now() - datetime.timedelta(seconds=seconds), output_field=DateTimeField())
    )


def state(rows: list[Published]) -> set[tuple[str, bool]]:
    """(locked_by, due now) of each row."""
    now = timezone.now()
    return {
        (r.locked_by, r.available_at <= now) for r in Published.objects.filter(id__in=[r.id for r in rows])
    }


@pytest.mark.django_db
def test_beat_creates_the_relay_row_then_moves_it_forward() -> None:
    outbox = store.OutboxStore()
    outbox.beat("host:1:abc", host="host", pid=1)
    first = RelayProcess.objects.get(relay_id="host:1:abc")
    RelayProcess.objects.filter(relay_id="host:1:abc").update(
        beat_at=ExpressionWrapper(Now() - datetime.timedelta(seconds=60), output_field=DateTimeField())
    )
    outbox.beat("host:1:abc", host="host", pid=1)
    second = RelayProcess.objects.get(relay_id="host:1:abc")
    assert (first.host, first.pid) == ("host", 1)
    assert second.beat_at > first.beat_at - datetime.timedelta(seconds=30)
    assert RelayProcess.objects.count() == 1


@pytest.mark.django_db
def test_release_dead_frees_exactly_the_rows_of_relays_that_stopped_beating() -> None:
    dead, alive, legacy, lookalike = (make_rows("/queue/a", 2) for _ in range(4))
    lease(dead, "dead:1:a#7")
    lease(alive, "alive:2:b#3")
    lease(legacy, "legacy:3:c#1")  # an older release: no heartbeat row, its lease is the only way back
    lease(lookalike, "dead:1:a2#1")  # another relay whose id starts like the dead one's
    beat_seconds_ago("dead:1:a", 30)
    beat_seconds_ago("dead:1:a2", 0)
    beat_seconds_ago("alive:2:b", 0)

    released = store.OutboxStore().release_dead(stale_after_s=2.5, now=timezone.now())

    assert released == {"dead:1:a": 2}
    assert state(dead) == {("", True)}
    assert state(alive) == {("alive:2:b#3", False)}
    assert state(legacy) == {("legacy:3:c#1", False)}
    assert state(lookalike) == {("dead:1:a2#1", False)}
    assert set(RelayProcess.objects.values_list("relay_id", flat=True)) == {"dead:1:a2", "alive:2:b"}
    assert set(Published.objects.filter(id__in=[r.id for r in dead]).values_list("status", flat=True)) == {
        StatusChoice.SCHEDULE
    }


@pytest.mark.django_db
def test_a_dead_relay_is_released_once_even_when_two_relays_reap() -> None:
    rows = make_rows("/queue/a", 3)
    lease(rows, "gone:1:x#1")
    beat_seconds_ago("gone:1:x", 10)
    outbox = store.OutboxStore()
    first = outbox.release_dead(stale_after_s=2.5, now=timezone.now())
    second = outbox.release_dead(stale_after_s=2.5, now=timezone.now())
    assert first == {"gone:1:x": 3}
    assert second == {}


@pytest.mark.django_db
def test_published_rows_of_a_dead_relay_stay_published() -> None:
    rows = make_rows("/queue/a", 2)
    lease(rows, "gone:1:y#1")
    Published.objects.filter(id=rows[0].id).update(status=StatusChoice.SUCCEEDED)
    beat_seconds_ago("gone:1:y", 10)
    assert store.OutboxStore().release_dead(stale_after_s=2.5, now=timezone.now()) == {"gone:1:y": 1}
    assert Published.objects.get(id=rows[0].id).status == StatusChoice.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_beats_wakes_its_relay_for_released_rows_and_forgets_itself_on_stop() -> None:
    rows = make_rows("/queue/a", 2)
    lease(rows, "crashed:9:z#4")
    beat_seconds_ago("crashed:9:z", 10)
    woken = threading.Event()
    failures: list[BaseException] = []
    heartbeat = liveness.Heartbeat(store.OutboxStore(), "me:1:q", beat_s=0.05)
    heartbeat.start(woken.set, failures.append)
    try:
        assert woken.wait(10), "the heartbeat did not report the released rows"
        assert RelayProcess.objects.filter(relay_id="me:1:q").exists()
    finally:
        heartbeat.stop()
    assert failures == []
    assert state(rows) == {("", True)}
    assert not RelayProcess.objects.filter(relay_id="me:1:q").exists()
    assert heartbeat.beats >= 1
