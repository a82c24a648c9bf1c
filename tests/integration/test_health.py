"""The health view mounted in urls.py, and readiness against the real database and broker."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import socket

import pytest
from django.test import Client
from django.utils import timezone

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import probes

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.health_urls")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthy_outbox_answers_200_with_the_backlog(client: Client) -> None:
    Published.objects.create(destination="/queue/a", body={})
    Published.objects.create(destination="/queue/a", body={})
    Published.objects.create(destination="/queue/b", body={}, status=StatusChoice.FAILED)
    Published.objects.create(destination="/queue/c", body={}, status=StatusChoice.SUCCEEDED)
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"] == {"ok": True}
    assert body["backlog"]["by_status"] == {"pending": 2, "failed": 1}
    assert 0 <= body["backlog"]["oldest_pending_age_seconds"] < 60
    assert response["Cache-Control"].startswith("max-age=0")


def test_the_default_body_names_no_destination(client: Client) -> None:
    Published.objects.create(destination="/topic/payroll.changed", body={})
    Published.objects.create(destination="/queue/b", body={}, status=StatusChoice.FAILED)
    response = client.get("/health/")
    assert set(response.json()) == {"status", "database", "backlog", "reasons"}
    assert set(response.json()["backlog"]) == {"by_status", "oldest_pending_age_seconds"}
    assert b"payroll" not in response.content and b"/queue/b" not in response.content


def test_the_url_conf_can_ask_for_destinations(client: Client) -> None:
    Published.objects.create(destination="/queue/a", body={})
    Published.objects.create(destination="/queue/a", body={})
    Published.objects.create(destination="/queue/b", body={}, status=StatusChoice.FAILED)
    body = client.get("/health/detail/").json()
    assert body["backlog"]["by_destination"] == {
        "/queue/a": {"pending": 2, "failed": 0},
        "/queue/b": {"pending": 0, "failed": 1},
    }


def test_an_empty_outbox_has_no_lag(client: Client) -> None:
    body = client.get("/health/strict/").json()
    assert body["status"] == "ok"
    assert body["backlog"]["oldest_pending_age_seconds"] is None


def test_lag_over_the_limit_answers_503(client: Client) -> None:
    row = Published.objects.create(destination="/queue/slow", body={})
    Published.objects.filter(pk=row.pk).update(added=timezone.now() - datetime.timedelta(minutes=10))
    assert client.get("/health/").status_code == 200  # no limit given: informational
    response = client.get("/health/strict/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["reasons"] and "over 60s" in body["reasons"][0]
    assert body["backlog"]["oldest_pending_age_seconds"] >= 600


LEAK = (
    "database 'default' is not reachable: connection to server at \"db-7.internal\" (10.0.0.7), port 5432 "
    'failed: FATAL: password authentication failed for user "payroll_rw" (dsn password=hunter22 '
    "postgres://payroll_rw:hunter22@db-7.internal/pay)"
)


@pytest.mark.parametrize("url", ["/health/", "/health/detail/"])
def test_an_unreachable_database_answers_503_without_the_error_text(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    down = probes.CheckResult("database", "fail", LEAK)
    monkeypatch.setattr(probes, "database", lambda alias="default": down)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"):
        response = client.get(url)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": False} and body["backlog"] is None
    assert body["reasons"] == ["the database is not reachable (details in the server log)"]
    for secret in (b"db-7", b"10.0.0.7", b"payroll_rw", b"hunter22"):
        assert secret not in response.content
    [record] = [r for r in caplog.records if getattr(r, "action", "") == "health_database_failed"]
    assert "db-7.internal" in record.getMessage() and "hunter22" not in record.getMessage()


def test_a_failing_backlog_query_is_logged_not_shown(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django_outbox_pattern import exceptions
    from django_outbox_pattern.ops import backlog

    def broken(**kwargs: object) -> None:
        raise exceptions.StorageError(f"Could not measure the outbox backlog: {LEAK}")

    monkeypatch.setattr(backlog, "measure", broken)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"):
        response = client.get("/health/")
    assert response.status_code == 503
    assert b"payroll" not in response.content and b"hunter22" not in response.content
    assert any(getattr(r, "action", "") == "health_backlog_failed" for r in caplog.records)


def test_secrets_are_masked_in_logged_text() -> None:
    from django_outbox_pattern.views import MASK, mask_secrets

    masked = mask_secrets(LEAK + " passcode: guest")
    assert "hunter22" not in masked and "guest" not in masked
    assert f"password={MASK}" in masked and f"payroll_rw:{MASK}@db-7.internal" in masked


def test_only_get_is_allowed(client: Client) -> None:
    assert client.post("/health/").status_code == 405


@pytest.mark.broker
def test_readiness_with_the_real_database_and_broker(outbox_settings: conf.OutboxSettings) -> None:
    results = probes.readiness(outbox_settings)
    assert [(p.name, p.ok) for p in results] == [("database", True), ("broker", True)], results


@pytest.mark.broker
def test_readiness_fails_when_the_broker_refuses(outbox_settings: conf.OutboxSettings) -> None:
    settings = dataclasses.replace(
        outbox_settings,
        DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", closed_port()),),
        DEFAULT_CONNECT_TIMEOUT=2,
    )
    database, broker = probes.readiness(settings)
    assert database.ok
    assert not broker.ok
    assert "rabbitmq_stomp plugin enabled" in broker.detail
