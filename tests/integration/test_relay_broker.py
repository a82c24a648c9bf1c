"""The relay against the real RabbitMQ: receipts, headers, order, retries, poison rows, outages."""

from __future__ import annotations

import json
import random
import socket

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import hosts
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import relay
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.broker_helpers import QueueDrain, count_ids
from tests.support.relay_helpers import (
    RelayThread,
    make_relay,
    make_rows,
    make_settings,
    past,
    statuses,
    wait_until,
)
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def settings_(outbox_settings: conf.OutboxSettings) -> conf.OutboxSettings:
    return make_settings()


@pytest.fixture
def proxy(outbox_settings: conf.OutboxSettings) -> TcpProxy:
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as p:
        yield p  # type: ignore[misc]


def via(proxy: TcpProxy, **overrides: object) -> conf.OutboxSettings:
    return make_settings(DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port)], **overrides)


def drain_all(engine: relay.Relay) -> None:
    try:
        while engine.run_once():
            pass
    finally:
        engine.close()


def test_rows_arrive_persistent_as_json_with_their_headers_in_creation_order(
    settings_: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    rows = [
        Published.objects.create(
            destination=destination, body={"n": i}, headers={"x-tenant": "acme", "x-n": i}
        )
        for i in range(20)
    ]
    with QueueDrain(settings_, destination) as drain:
        drain_all(make_relay(settings_))
        received = drain.sync()
    assert [m.headers["dop-msg-id"] for m in received] == [str(r.id) for r in rows]
    first = received[0]
    assert first.headers["persistent"] == "true"
    assert first.headers["content-type"] == "application/json"
    assert (first.headers["x-tenant"], first.headers["x-n"]) == ("acme", "0")
    assert json.loads(first.body) == {"n": 0}
    assert statuses()[StatusChoice.SUCCEEDED] == 20
    assert all(r.published_at is not None for r in Published.objects.all())


def test_without_a_receipt_the_row_stays_scheduled_with_the_attempt_recorded(
    proxy: TcpProxy, unique_name: str
) -> None:
    settings = via(proxy, DEFAULT_RECEIPT_TIMEOUT=0.3, DEFAULT_RETRY_BASE_DELAY=30, DEFAULT_WAIT_RETRY=60)
    engine = make_relay(settings)
    assert engine.run_once() == 0  # connected, nothing due
    proxy.stall(True)  # the SENDs go nowhere: no RECEIPT can come
    make_rows(f"/queue/{unique_name}", 3)
    assert engine.run_once() == 3
    engine.close()
    for row in Published.objects.all():
        assert (row.status, row.retry, row.last_error) == (StatusChoice.SCHEDULE, 1, "no RECEIPT within 0.3s")
    proxy.stall(False)
    assert engine.run_once() == 0  # reconnected, but the rows back off: not due again yet
    engine.close()


def test_a_row_the_broker_rejects_fails_alone_and_the_others_arrive(
    settings_: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    before = make_rows(destination, 5)
    bad = Published.objects.create(destination=f"/exchange/{unique_name}-missing", body={})
    after = make_rows(destination, 5)
    settings = make_settings(DEFAULT_MAXIMUM_RETRY_ATTEMPTS=2)
    with QueueDrain(settings_, destination) as drain:
        drain_all(make_relay(settings))
        received = drain.sync()
    assert set(count_ids(received)) == {str(r.id) for r in before + after}
    bad.refresh_from_db()
    assert bad.status == StatusChoice.FAILED and bad.retry == 2
    assert bad.last_error.startswith("gave up after 2 attempts: broker error: not_found")
    assert statuses() == {StatusChoice.SUCCEEDED: 10, StatusChoice.FAILED: 1, StatusChoice.SCHEDULE: 0}


def test_expired_and_unsendable_rows_are_dead_lettered_not_sent(
    settings_: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    make_rows(destination, 1, expires_at=past())
    Published.objects.create(destination=destination, body={}, headers={"x-bad": {"nested": True}})
    good = make_rows(destination, 1)
    with QueueDrain(settings_, destination) as drain:
        engine = make_relay(settings_)
        drain_all(engine)
        received = drain.sync()
    assert [m.headers["dop-msg-id"] for m in received] == [str(good[0].id)]
    errors = sorted(Published.objects.filter(status=StatusChoice.FAILED).values_list("last_error", flat=True))
    assert errors[0].startswith("expired") and errors[1].startswith("unsendable: header 'x-bad'")


class _FirstHostFirst(random.Random):
    def randrange(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        return 0


def test_the_hosts_are_tried_in_turn(
    proxy: TcpProxy, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each process starts a host list at a random host (hosts.py); this test needs the listed order.
    monkeypatch.setattr(hosts, "ORDER", hosts.HostOrder(rng=_FirstHostFirst()))
    with socket.create_server((STOMP_HOST, 0)) as unused:
        dead_port = unused.getsockname()[1]  # closed below: connections to it are refused
    make_rows(f"/queue/{unique_name}", 2)
    settings = make_settings(DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, dead_port), (STOMP_HOST, STOMP_PORT)])
    drain_all(make_relay(settings))  # refused at TCP level: the next host at once
    assert statuses()[StatusChoice.SUCCEEDED] == 2
    proxy.refuse(True)  # accepts TCP, then closes: a broken broker, not a missing one
    make_rows(f"/queue/{unique_name}", 2)
    engine = make_relay(
        make_settings(DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port), (STOMP_HOST, STOMP_PORT)])
    )
    with pytest.raises(exceptions.ConnectionFailed):
        engine.run_once()
    drain_all(engine)  # the next attempt starts with the next host
    assert statuses()[StatusChoice.SUCCEEDED] == 4


def test_broker_down_then_back_then_cut_mid_run_loses_nothing(
    settings_: conf.OutboxSettings, proxy: TcpProxy, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    rows = make_rows(destination, 1500)
    proxy.refuse(True)
    engine = make_relay(via(proxy, DEFAULT_PUBLISHED_CHUNK_SIZE=50))
    with QueueDrain(settings_, destination) as drain:
        thread = RelayThread(engine)
        thread.start()
        try:
            assert wait_until(lambda: engine._connect_failures >= 2, timeout=10)
            assert (
                statuses()[StatusChoice.SCHEDULE] == 1500
                and not Published.objects.exclude(locked_by="").exists()
            )
            proxy.refuse(False)
            assert wait_until(lambda: len(drain.received) >= 300, timeout=30)
            proxy.cut()  # mid-run: a batch is in flight
            assert wait_until(lambda: statuses()[StatusChoice.SUCCEEDED] == 1500, timeout=60), statuses()
        finally:
            thread.stop()
        received = drain.sync()
    counts = count_ids(received)
    assert set(counts) == {str(r.id) for r in rows}  # nothing lost; a cut batch may arrive twice
    assert proxy.accepted >= 2  # it really reconnected
