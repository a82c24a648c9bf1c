"""dashboards/outbox.json: valid Grafana JSON whose every query names only metrics and labels this code
exports (ops/metrics.py), so a renamed metric breaks this test, not an operator's dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from django_outbox_pattern.ops import backlog, metrics  # noqa: E402

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "outbox.json"
SERIES = re.compile(r"\b(outbox_[a-z0-9_]+)\b")
LABEL_LISTS = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
PROMETHEUS_LABELS = {"instance", "job"}  # added by the scrape


def exported() -> dict[str, set[str]]:
    """Every series name the metrics render (counters with _total, histograms with _bucket...) -> labels."""
    sample = backlog.Backlog(counts={("pending", "/topic/a"): 1}, oldest_pending_age_s=2.0)
    m = metrics.OutboxMetrics(
        prometheus_client.CollectorRegistry(), backlog=metrics.BacklogCollector(lambda: sample)
    )
    m.published.labels(destination="/topic/a").inc()
    m.receipt_latency.observe(0.01)
    series: dict[str, set[str]] = {}
    for family in m.registry.collect():
        for s in family.samples:
            series.setdefault(s.name, set()).update(s.labels)
    return series


def queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_is_grafana_json_with_unique_panels() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]


def test_every_query_names_only_exported_metrics_and_labels() -> None:
    series = exported()
    assert "outbox_messages_published_total" in series  # the test itself sees the counters
    seen: set[str] = set()
    for expr in queries():
        names = SERIES.findall(expr)
        assert names, f"no outbox metric in {expr!r}"
        for name in names:
            assert name in series, f"{expr!r}: {name} is not exported (exported: {sorted(series)})"
            seen.add(name)
        allowed = set().union(*(series[name] for name in names)) | PROMETHEUS_LABELS
        used = {label.strip() for group in LABEL_LISTS.findall(expr) for label in group.split(",")}
        used |= {
            m.split("=")[0].strip().rstrip("!~") for group in MATCHERS.findall(expr) for m in group.split(",")
        }
        assert used <= allowed, f"{expr!r}: labels {used - allowed} are not exported"
    wanted = {
        "outbox_backlog_messages",
        "outbox_oldest_pending_age_seconds",
        "outbox_messages_published_total",
        "outbox_messages_consumed_total",
        "outbox_messages_send_failed_total",
        "outbox_messages_dead_lettered_total",
        "outbox_receipt_latency_seconds_bucket",
        "outbox_relay_up",
        "outbox_consumer_up",
    }
    assert wanted <= seen, f"the dashboard misses {wanted - seen}"
