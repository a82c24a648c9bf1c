"""PostgreSQL LISTEN/NOTIFY wakes an idle relay long before its poll interval."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from django_outbox_pattern import conf
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import assembly, notify
from tests.support.broker_helpers import QueueDrain
from tests.support.relay_helpers import RelayThread, make_settings, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only")


def test_a_commit_wakes_the_idle_relay_at_once(
    outbox_settings: conf.OutboxSettings, unique_name: str, settings: Any
) -> None:
    settings.DJANGO_OUTBOX_PATTERN = {**settings.DJANGO_OUTBOX_PATTERN, "DEFAULT_RELAY_NOTIFY": True}
    destination = f"/queue/{unique_name}"
    engine = assembly.build_relay(assembly.relay_settings(make_settings(), poll_interval=60, notify=True))
    listener = engine.notifier
    assert isinstance(listener, notify.PostgresListener)
    with QueueDrain(make_settings(), destination) as drain:
        thread = RelayThread(engine)
        thread.start()
        try:
            assert listener.listening.wait(10)
            assert wait_until(lambda: engine.producer.is_connected(), timeout=10)
            started = time.monotonic()
            with transaction.atomic():
                for i in range(3):
                    Published.objects.create(destination=destination, body={"n": i})
            assert len(drain.wait_for(3, timeout=10)) == 3
            assert time.monotonic() - started < 5  # woken by NOTIFY, not by the 60 s poll
            assert wait_until(lambda: listener.notifications >= 1, timeout=5)
        finally:
            thread.stop()
    assert not listener.listening.is_set()


def _notify_now() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [notify.CHANNEL])


def test_stop_cuts_the_idle_wait_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """stop() does not sit out the listener's idle wait (every `publish --until-empty` paid up to 1 s)."""
    monkeypatch.setattr(notify, "IDLE_PROBE_S", 3600.0)
    listener = notify.build_listener("default")
    assert listener is not None
    failures: list[BaseException] = []
    listener.start(threading.Event(), failures.append)
    assert listener.listening.wait(10)
    stopped = threading.Event()
    stopper = threading.Thread(target=lambda: (listener.stop(), stopped.set()), daemon=True)
    stopper.start()
    assert stopped.wait(60)  # the idle wait alone would take an hour
    assert not listener.listening.is_set()
    assert failures == []


def test_notifications_arrive_between_idle_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With probes every few milliseconds, a NOTIFY still wakes the relay (none is lost to a probe)."""
    monkeypatch.setattr(notify, "IDLE_PROBE_S", 0.005)
    listener = notify.build_listener("default")
    assert listener is not None
    wakeup = threading.Event()
    failures: list[BaseException] = []
    listener.start(wakeup, failures.append)
    try:
        assert listener.listening.wait(10)
        for expected in range(1, 4):
            wakeup.clear()
            _notify_now()
            assert wakeup.wait(10)
            assert wait_until(lambda n=expected: listener.notifications >= n, timeout=10)
    finally:
        listener.stop()
    assert failures == []
    assert not listener.listening.is_set()
