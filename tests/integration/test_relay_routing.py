"""Unroutable destinations against the real RabbitMQ and its management API: held, never sent into the
void; sent by themselves once a queue is bound; the relay keeps sending when the API is unreachable."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket

import pytest
from django.utils import timezone

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import routes
from django_outbox_pattern.relaying import relay, routing
from tests.conftest import service_missing
from tests.support.broker_helpers import QueueDrain
from tests.support.relay_helpers import RelayThread, make_relay, make_rows, make_settings, past, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

MANAGEMENT_URL = os.environ.get("OUTBOX_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")


@pytest.fixture
def managed(outbox_settings: conf.OutboxSettings) -> conf.OutboxSettings:
    host_port = MANAGEMENT_URL.split("//", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        service_missing(f"RabbitMQ management API on {MANAGEMENT_URL}")
    return make_settings(DEFAULT_RABBITMQ_MANAGEMENT_URL=MANAGEMENT_URL)


def drain_all(engine: relay.Relay) -> None:
    try:
        while engine.run_once():
            pass
    finally:
        engine.producer.close()


def gated(settings: conf.OutboxSettings) -> relay.Relay:
    return make_relay(settings, routing_gate=routing.build_gate(settings))


def test_rows_of_a_topic_without_a_queue_are_held_then_sent_once_bound(
    managed: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/topic/{unique_name}.created"
    make_rows(destination, 3)
    drain_all(gated(managed))
    rows = list(Published.objects.all())
    assert {r.status for r in rows} == {StatusChoice.SCHEDULE}  # held, not marked published
    assert all(r.last_error.startswith(f"no queue bound to {destination}") for r in rows)
    assert all(r.retry == 0 and r.available_at > timezone.now() for r in rows)

    with QueueDrain(managed, destination) as drain:  # binds a queue to the topic
        Published.objects.update(available_at=past())
        drain_all(gated(managed))
        assert sorted(m.body for m in drain.sync()) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}


def test_exchange_routes_without_a_matching_binding_are_held(
    managed: conf.OutboxSettings, unique_name: str
) -> None:
    make_rows(f"/exchange/amq.direct/{unique_name}", 1)
    make_rows(f"/exchange/{unique_name}-missing/key", 1)
    with QueueDrain(managed, f"/exchange/amq.direct/{unique_name}-other"):  # a binding, another key
        drain_all(gated(managed))
    errors = dict(Published.objects.values_list("destination", "last_error"))
    assert (
        "no queue bound to 'amq.direct' matches routing key" in errors[f"/exchange/amq.direct/{unique_name}"]
    )
    assert "does not exist" in errors[f"/exchange/{unique_name}-missing/key"]
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SCHEDULE}


def test_a_binding_added_later_lets_held_rows_go_without_an_operator(
    managed: conf.OutboxSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    quick = dataclasses.replace(managed, DEFAULT_ROUTING_CHECK_INTERVAL=0.3)
    destination = f"/topic/{unique_name}"
    make_rows(destination, 5)
    thread = RelayThread(gated(quick))
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"):
        thread.start()
        try:
            assert wait_until(lambda: Published.objects.exclude(last_error="").count() == 5, timeout=20)
            assert not Published.objects.filter(status=StatusChoice.SUCCEEDED).exists()
            with QueueDrain(quick, destination) as drain:
                assert wait_until(
                    lambda: Published.objects.filter(status=StatusChoice.SUCCEEDED).count() == 5, timeout=20
                )
                assert len(drain.sync()) == 5  # each once
        finally:
            thread.stop()
    assert any(getattr(r, "action", "") == "relay_destination_held" for r in caplog.records)


def test_an_unreachable_management_api_never_stops_the_relay(
    outbox_settings: conf.OutboxSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    settings = make_settings(DEFAULT_RABBITMQ_MANAGEMENT_URL=f"http://guest:secret-pw@127.0.0.1:{port}")
    destination = f"/topic/{unique_name}"
    make_rows(destination, 3)
    with QueueDrain(settings, destination) as drain, caplog.at_level(logging.WARNING):
        drain_all(gated(settings))
        assert len(drain.sync()) == 3
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}
    unknown = [r for r in caplog.records if getattr(r, "action", "") == "relay_routing_unknown"]
    assert len(unknown) == 1  # once per interval, not once per destination or pass
    assert "secret-pw" not in caplog.text


def test_the_send_policy_sends_with_a_warning(
    managed: conf.OutboxSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(managed, DEFAULT_UNROUTABLE_MESSAGES="send")
    make_rows(f"/topic/{unique_name}", 2)
    with caplog.at_level(logging.WARNING):
        drain_all(gated(settings))
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}
    assert any(getattr(r, "action", "") == "relay_destination_unroutable" for r in caplog.records)


def test_check_destinations_reports_each_destination(managed: conf.OutboxSettings, unique_name: str) -> None:
    bound, lost = f"/topic/{unique_name}.bound", f"/topic/{unique_name}.lost"
    make_rows(bound, 1)
    make_rows(lost, 2)
    make_rows(f"/queue/{unique_name}", 1)
    with QueueDrain(managed, f"/topic/{unique_name}.bound.#"):  # "#" matches zero words: .bound
        each = {r.name: r for r in routes.check_results(managed, each=True)}
        summary = routes.check_results(managed, each=False)
    assert each[bound].status == "pass" and each[f"/queue/{unique_name}"].status == "pass"
    assert each[lost].status == "fail" and "2 pending" in each[lost].detail
    assert summary[0].status == "fail" and lost in summary[0].detail
    unmanaged = routes.check_results(make_settings(), each=False)
    assert unmanaged[0].status == "skip" and "cannot tell" in unmanaged[0].detail


def test_refused_credentials_are_reported_without_the_password(managed: conf.OutboxSettings) -> None:
    from django_outbox_pattern import exceptions
    from django_outbox_pattern.broker import management

    client = management.ManagementClient(MANAGEMENT_URL, username="guest", password="not-the-password")
    with pytest.raises(exceptions.ManagementError, match="refused user 'guest'") as caught:
        client.queue_exists("anything")
    assert "not-the-password" not in str(caught.value)
