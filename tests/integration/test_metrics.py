"""Metrics scraped over HTTP from a real server, with the backlog measured on the real database."""

from __future__ import annotations

import datetime
import urllib.request
from collections.abc import Iterator

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import backlog, metrics
from tests.support.relay_helpers import make_relay, make_rows, make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def served() -> Iterator[tuple[metrics.OutboxMetrics, int]]:
    outbox_metrics = metrics.OutboxMetrics(
        registry=CollectorRegistry(), backlog=metrics.BacklogCollector(cache_s=0)
    )
    server, thread = metrics.start_metrics_server(0, registry=outbox_metrics.registry)
    yield outbox_metrics, server.server_port
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.django_db
def test_backlog_counts_unsent_rows_by_status_and_destination(unique_name: str) -> None:
    a, b = f"/queue/{unique_name}-a", f"/queue/{unique_name}-b"
    for destination, status in [(a, StatusChoice.SCHEDULE)] * 3 + [
        (a, StatusChoice.FAILED),
        (b, StatusChoice.SCHEDULE),
        (b, StatusChoice.SUCCEEDED),
    ]:
        Published.objects.create(destination=destination, body={}, status=status)
    old = Published.objects.filter(destination=b, status=StatusChoice.SCHEDULE)
    old.update(added=timezone.now() - datetime.timedelta(seconds=90))
    measured = backlog.measure()
    assert measured.counts == {("pending", a): 3, ("failed", a): 1, ("pending", b): 1}
    assert measured.by_status() == {"pending": 4, "failed": 1}
    assert measured.oldest_pending_age_s is not None and 90 <= measured.oldest_pending_age_s < 150


@pytest.mark.django_db
def test_backlog_destinations_beyond_the_limit_are_summed(unique_name: str) -> None:
    for index, n in enumerate((3, 2, 1, 1)):
        for _ in range(n):
            Published.objects.create(destination=f"/queue/{unique_name}-{index}", body={})
    measured = backlog.measure(max_destinations=2)
    assert measured.counts == {
        ("pending", f"/queue/{unique_name}-0"): 3,
        ("pending", f"/queue/{unique_name}-1"): 2,
        ("pending", "(other)"): 2,
    }


@pytest.mark.django_db(transaction=True)
def test_backlog_gauges_are_scraped_over_http(
    served: tuple[metrics.OutboxMetrics, int], unique_name: str
) -> None:
    _, port = served
    destination = f"/queue/{unique_name}"
    Published.objects.bulk_create([Published(destination=destination, body={"n": n}) for n in range(3)])
    got = scrape(port)
    assert got[("outbox_backlog_messages", (("destination", destination), ("status", "pending")))] == 3
    assert got[("outbox_backlog_up", ())] == 1
    assert got[("outbox_oldest_pending_age_seconds", ())] >= 0
    Published.objects.filter(destination=destination).update(status=StatusChoice.SUCCEEDED)
    got = scrape(port)
    assert ("outbox_backlog_messages", (("destination", destination), ("status", "pending"))) not in got
    assert got[("outbox_oldest_pending_age_seconds", ())] == 0


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_relay_counters_are_scraped_over_http_after_relaying_to_the_real_broker(
    served: tuple[metrics.OutboxMetrics, int], unique_name: str, broker_available: None
) -> None:
    outbox_metrics, port = served
    destination = f"/queue/{unique_name}"
    make_rows(destination, 5)
    Published.objects.create(destination="/nope/unsendable", body={})
    engine = make_relay(make_settings(), observer=outbox_metrics)
    try:
        while engine.run_once():
            pass
        got = scrape(port)
        assert got[("outbox_relay_up", ())] == 1
    finally:
        engine.close()
    assert got[("outbox_messages_published_total", (("destination", destination),))] == 5
    assert got[("outbox_messages_dead_lettered_total", ())] == 1
    assert got[("outbox_messages_send_failed_total", ())] == 0
    assert got[("outbox_receipt_latency_seconds_count", ())] >= 1
    assert 0 < got[("outbox_receipt_latency_seconds_sum", ())] < 10
    assert got[("outbox_backlog_messages", (("destination", "/nope/unsendable"), ("status", "failed")))] == 1
    assert ("outbox_backlog_messages", (("destination", destination), ("status", "pending"))) not in got
