"""A consumer holding a message unsettled past DEFAULT_CONSUMER_STALL_THRESHOLD is reported: log, metric,
and the liveness probe of its health file."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from django_outbox_pattern import conf, payloads
from django_outbox_pattern.consuming import consumer
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import health, metrics
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import TransportFactory
from tests.support.runner import running, wait_until

DEST = "/queue/stalled"


def test_a_stuck_callback_is_reported_as_stalled_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def stuck(payload: payloads.Payload) -> None:
        release.wait(10)
        payload.save()

    outbox_metrics = metrics.OutboxMetrics(
        registry=CollectorRegistry(), backlog=metrics.BacklogCollector(object)
    )
    heartbeat = tmp_path / "consumer.alive"
    observer = observing.MultiObserver(
        outbox_metrics,
        health.HeartbeatObserver(heartbeat, component="consumer", interval_s=0.0),
    )
    settings = dataclasses.replace(conf.OutboxSettings(), DEFAULT_CONSUMER_STALL_THRESHOLD=0.3)
    factory = TransportFactory()
    c = consumer.Consumer(
        stuck, DEST, settings=settings, transport_factory=factory, store=MemoryInbox(), observer=observer
    )
    gauge = "outbox_consumer_oldest_unsettled_age_seconds"
    with caplog.at_level(logging.WARNING), running(c):
        factory.broker.publish(DEST, "{}", {"dop-msg-id": "slow"})
        assert wait_until(lambda: (outbox_metrics.registry.get_sample_value(gauge) or 0) > 0.3)
        assert wait_until(lambda: any(r.action == "consumer_stalled" for r in caplog.records))  # type: ignore[attr-defined]
        assert c.oldest_unsettled_age() > 0.3
        # the worker is blocked (no heartbeat), yet the file says so
        probe = health.read_heartbeat(heartbeat, max_age_s=60)
        assert not probe.ok and "unsettled" in probe.detail
        release.set()
        assert wait_until(lambda: c.stats.processed == 1)
        assert wait_until(lambda: outbox_metrics.registry.get_sample_value(gauge) == 0)
        assert wait_until(lambda: health.read_heartbeat(heartbeat, max_age_s=60).ok)
    stalls = [r for r in caplog.records if getattr(r, "action", "") == "consumer_stalled"]
    assert len(stalls) == 1  # once per message, not on every watch


def test_the_heartbeat_observer_writes_the_unsettled_age(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    observer = health.HeartbeatObserver(path, interval_s=0.0)
    observer.consumer_unsettled_age(12.0, 10.0)
    observer.heartbeat()
    probe = health.read_heartbeat(path)
    assert not probe.ok and "DEFAULT_CONSUMER_STALL_THRESHOLD" in probe.detail
    observer.consumer_unsettled_age(0.0, 10.0)
    observer.heartbeat()
    assert health.read_heartbeat(path).ok


def test_observers_without_the_newer_events_are_skipped() -> None:
    class Old:  # written against the original protocol
        def heartbeat(self) -> None:
            pass

    multi = observing.MultiObserver(Old())  # type: ignore[arg-type]
    multi.consumer_unsettled_age(1.0, 2.0)  # no AttributeError, no warning
    observing.report(Old(), "destination_unroutable", "/topic/x", 1, True)  # type: ignore[arg-type]
