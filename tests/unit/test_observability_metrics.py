"""OutboxMetrics as an observer, the backlog collector's cache, and life without prometheus-client."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from django_outbox_pattern import exceptions
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import backlog, labels, metrics, observability


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def fixed_backlog() -> backlog.Backlog:
    return backlog.Backlog(
        counts={("pending", "/queue/a"): 4, ("failed", "/queue/a"): 1, ("pending", "/topic/b"): 2},
        oldest_pending_age_s=12.5,
    )


def make_metrics(measure: object = fixed_backlog) -> metrics.OutboxMetrics:
    collector = metrics.BacklogCollector(measure)  # type: ignore[arg-type]
    return metrics.OutboxMetrics(registry=CollectorRegistry(), backlog=collector)


def test_counters_follow_the_observed_events() -> None:
    m = make_metrics()
    m.batch_published(3, {"/queue/a": 2, "/queue/b": 1}, [0.004, 0.02, 0.2])
    m.batch_published(1, {"/queue/a": 1}, [0.003])
    m.send_failed(2, "no receipt")
    m.dead_lettered(1, "expired")
    m.retried(2)
    m.consumed()
    m.consumed()
    m.duplicate_discarded()
    m.consumer_nacked()
    m.relay_up(True)
    m.consumer_up(False)
    m.heartbeat()
    got = samples(m.render())
    assert got[("outbox_messages_published_total", (("destination", "/queue/a"),))] == 3
    assert got[("outbox_messages_published_total", (("destination", "/queue/b"),))] == 1
    assert got[("outbox_messages_send_failed_total", ())] == 2
    assert got[("outbox_messages_dead_lettered_total", ())] == 1
    assert got[("outbox_messages_retried_total", ())] == 2
    assert got[("outbox_messages_consumed_total", ())] == 2
    assert got[("outbox_messages_duplicates_discarded_total", ())] == 1
    assert got[("outbox_messages_nacked_total", ())] == 1
    assert got[("outbox_receipt_latency_seconds_count", ())] == 4
    assert got[("outbox_receipt_latency_seconds_bucket", (("le", "0.005"),))] == 2
    assert got[("outbox_relay_up", ())] == 1
    assert got[("outbox_consumer_up", ())] == 0
    assert got[("outbox_last_heartbeat_timestamp_seconds", ())] > 1_600_000_000


def test_backlog_gauges_come_from_the_collector() -> None:
    got = samples(make_metrics().render())
    assert got[("outbox_backlog_messages", (("destination", "/queue/a"), ("status", "pending")))] == 4
    assert got[("outbox_backlog_messages", (("destination", "/queue/a"), ("status", "failed")))] == 1
    assert got[("outbox_backlog_messages", (("destination", "/topic/b"), ("status", "pending")))] == 2
    assert got[("outbox_oldest_pending_age_seconds", ())] == 12.5
    assert got[("outbox_backlog_up", ())] == 1


def test_the_backlog_is_measured_at_most_once_per_cache_period() -> None:
    calls: list[int] = []

    def measure() -> backlog.Backlog:
        calls.append(1)
        return fixed_backlog()

    clock = FakeClock()
    collector = metrics.BacklogCollector(measure, cache_s=5, clock=clock)
    m = metrics.OutboxMetrics(registry=CollectorRegistry(), backlog=collector)
    assert len(calls) == 0  # registering the collector does not query the database
    m.render()
    clock.now += 4.9
    m.render()
    assert len(calls) == 1
    clock.now += 0.2
    m.render()
    assert len(calls) == 2


def test_a_failing_backlog_query_is_reported_as_a_gauge_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def measure() -> backlog.Backlog:
        raise exceptions.StorageError("database is down")

    got = samples(make_metrics(measure).render())
    assert got[("outbox_backlog_up", ())] == 0
    assert not any(name == "outbox_backlog_messages" for name, _ in got)
    assert [r.action for r in caplog.records] == ["backlog_measure_failed"]  # type: ignore[attr-defined]


def test_published_destinations_beyond_the_label_limit_are_grouped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labels, "MAX_DESTINATION_LABELS", 2)
    m = make_metrics()
    m.batch_published(4, {"/queue/a": 1, "/queue/b": 1, "/queue/c": 1, "/queue/d": 1}, [])
    m.batch_published(1, {"/queue/a": 1}, [])
    got = samples(m.render())
    published = {labels: v for (name, labels), v in got.items() if name == "outbox_messages_published_total"}
    assert published == {
        (("destination", "/queue/a"),): 2,
        (("destination", "/queue/b"),): 1,
        (("destination", "(other)"),): 2,
    }


def test_two_metrics_objects_with_their_own_registries_coexist() -> None:
    first, second = make_metrics(), make_metrics()
    first.consumed()
    assert samples(second.render())[("outbox_messages_consumed_total", ())] == 0


def test_default_metrics_are_created_once() -> None:
    assert metrics.default_metrics() is metrics.default_metrics()


def test_a_busy_port_is_a_clear_error() -> None:
    server, _ = metrics.start_metrics_server(0, registry=CollectorRegistry())
    try:
        with pytest.raises(exceptions.ConfigurationError, match="choose a free port with --metrics-port"):
            metrics.start_metrics_server(server.server_port, registry=CollectorRegistry())
    finally:
        server.shutdown()
        server.server_close()


def test_without_prometheus_client_asking_for_metrics_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import now raises ImportError
    with pytest.raises(exceptions.ConfigurationError, match=r"pip install django-outbox-pattern\[metrics\]"):
        metrics.OutboxMetrics()
    with pytest.raises(exceptions.ConfigurationError, match=r"django-outbox-pattern\[metrics\]"):
        observability.build_observer(metrics_port=0)
    # everything else keeps working
    observer = observability.build_observer(health_file=str(tmp_path / "alive"))
    observer.heartbeat()
    assert isinstance(observability.build_observer(), observing.NullObserver)
