"""StompTransport against the real RabbitMQ: receipts, errors, failover, and no secrets in messages."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport, wire
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.broker


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_receipts_are_pipelined_and_all_confirmed(
    stomp_transport: transport.StompTransport, unique_name: str
) -> None:
    receipts = [wire.new_receipt_id() for _ in range(200)]
    for r in receipts:
        stomp_transport.send(f"/queue/{unique_name}", '{"a": 1}', {"persistent": "true"}, receipt=r)
    assert stomp_transport.wait_for_receipts(receipts, 10) == set(receipts)
    assert stomp_transport.server.startswith("RabbitMQ/")
    assert stomp_transport.negotiated_heartbeat


def test_messages_arrive_with_headers_and_bytes_body(
    stomp_transport: transport.StompTransport, unique_name: str
) -> None:
    got: list[wire.Message] = []
    arrived = threading.Event()

    def handle(message: wire.Message) -> None:
        got.append(message)
        arrived.set()

    destination = f"/queue/{unique_name}"
    stomp_transport.set_message_handler(handle)
    stomp_transport.subscribe(destination, "s1", {"prefetch-count": "5"}, ack="client-individual")
    receipt = wire.new_receipt_id()
    stomp_transport.send(destination, "caf\u00e9", {"x-custom": "1"}, receipt=receipt)
    assert stomp_transport.wait_for_receipts([receipt], 5) == {receipt}
    assert arrived.wait(5)
    message = got[0]
    assert message.body == "caf\u00e9".encode()
    assert message.headers["x-custom"] == "1"
    stomp_transport.ack(message.ack_id, "s1")
    stomp_transport.unsubscribe("s1")


def test_wrong_credentials_are_a_clear_error_without_the_passcode(
    outbox_settings: conf.OutboxSettings,
) -> None:
    bad = dataclasses.replace(outbox_settings, DEFAULT_STOMP_PASSCODE="Wr0ng-S3cret")
    t = transport.StompTransport(bad)
    with pytest.raises(exceptions.ConnectionFailed) as info:
        t.connect()
    assert "check the username, passcode" in str(info.value)
    assert "Wr0ng-S3cret" not in str(info.value) + repr(t)


def test_unreachable_broker_is_a_clear_error(outbox_settings: conf.OutboxSettings) -> None:
    settings = dataclasses.replace(
        outbox_settings, DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", closed_port()),)
    )
    with pytest.raises(exceptions.ConnectionFailed, match="rabbitmq_stomp plugin enabled"):
        transport.StompTransport(settings).connect()


def test_a_listener_that_hangs_up_is_a_clear_error(outbox_settings: conf.OutboxSettings) -> None:
    with TcpProxy(("127.0.0.1", 61613)) as proxy:
        proxy.refuse(True)
        settings = dataclasses.replace(
            outbox_settings, DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", proxy.port),)
        )
        # Depending on timing the hang-up is seen while sending CONNECT or while waiting for CONNECTED.
        with pytest.raises(
            exceptions.ConnectionFailed, match=r"rabbitmq_stomp plugin enabled|is this the STOMP port"
        ):
            transport.StompTransport(settings).connect()


def test_hosts_are_tried_in_turn(outbox_settings: conf.OutboxSettings) -> None:
    with TcpProxy(("127.0.0.1", 61613)) as alive:
        hosts = (("127.0.0.1", closed_port()), ("127.0.0.1", alive.port))
        t = transport.StompTransport(dataclasses.replace(outbox_settings, DEFAULT_STOMP_HOST_AND_PORTS=hosts))
        t.connect()
        try:
            assert t.is_connected()
            assert alive.accepted == 1
        finally:
            t.disconnect()


def test_a_node_that_accepts_tcp_and_never_answers_is_left_for_the_other(
    outbox_settings: conf.OutboxSettings,
) -> None:
    """A hung node (SIGSTOP) still accepts TCP: stomp.py would wait on it every time. After it failed once,
    every new connection of the process tries the other node first (broker/hosts.py)."""
    with socket.socket() as silent, TcpProxy(("127.0.0.1", 61613)) as alive:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshake; nobody ever reads
        hosts = (("127.0.0.1", silent.getsockname()[1]), ("127.0.0.1", alive.port))
        settings = dataclasses.replace(
            outbox_settings, DEFAULT_STOMP_HOST_AND_PORTS=hosts, DEFAULT_CONNECT_TIMEOUT=0.5
        )
        first = transport.StompTransport(settings)
        try:
            first.connect()  # this process may start at either node
        except exceptions.ConnectionFailed:
            first.connect()  # the silent node failed: the next attempt starts with the other
        assert first.host == hosts[1]
        first.disconnect()
        for _ in range(3):  # new transports too, as the consumer makes one per connection
            t = transport.StompTransport(settings)
            t.connect()
            assert t.host == hosts[1]
            t.disconnect()


def test_cut_connection_is_noticed(outbox_settings: conf.OutboxSettings, unique_name: str) -> None:
    with TcpProxy(("127.0.0.1", 61613)) as proxy:
        settings = dataclasses.replace(
            outbox_settings, DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", proxy.port),)
        )
        t = transport.StompTransport(settings)
        t.connect()
        proxy.cut()
        assert t.wait_for_receipts(["never"], 5) == set()
        assert not t.is_connected()
        with pytest.raises(exceptions.ConnectionClosed):
            t.send(f"/queue/{unique_name}", "x", {}, receipt="r")
        t.connect()
        assert t.is_connected()
        t.disconnect()


def test_broker_error_frame_is_recorded(stomp_transport: transport.StompTransport) -> None:
    receipt = wire.new_receipt_id()
    stomp_transport.send("/bogus/destination", "x", {}, receipt=receipt)
    assert stomp_transport.wait_for_receipts([receipt], 5) == set()
    assert stomp_transport.last_error is not None
    assert "destination" in stomp_transport.last_error.lower()


@pytest.mark.parametrize("how", ["flush", "disconnect"])
def test_deferred_acks_go_out_on_flush_or_a_clean_disconnect(
    outbox_settings: conf.OutboxSettings, unique_name: str, how: str
) -> None:
    destination = f"/queue/{unique_name}"
    first = transport.StompTransport(outbox_settings)
    first.connect()
    got: list[wire.Message] = []
    both = threading.Event()

    def handle(message: wire.Message) -> None:
        got.append(message)
        if len(got) == 2:
            both.set()

    first.set_message_handler(handle)
    first.subscribe(destination, "s1", {"prefetch-count": "10"}, ack="client-individual")
    receipts = [wire.new_receipt_id() for _ in range(2)]
    for n, receipt in enumerate(receipts):
        first.send(destination, f'{{"n": {n}}}', {"persistent": "true"}, receipt=receipt)
    assert first.wait_for_receipts(receipts, 5) == set(receipts)
    assert both.wait(5)
    for message in got:
        first.ack(message.ack_id, "s1", defer=True)
    if how == "flush":
        first.flush()
    first.disconnect()  # unacked messages would be redelivered to the next subscriber

    second = transport.StompTransport(outbox_settings)
    second.connect()
    later: list[bytes] = []
    marker_seen = threading.Event()

    def collect(message: wire.Message) -> None:
        later.append(message.body)
        if message.body == b'"marker"':
            marker_seen.set()

    try:
        second.set_message_handler(collect)
        second.subscribe(destination, "s2", {"prefetch-count": "10"}, ack="auto")
        receipt = wire.new_receipt_id()
        second.send(destination, '"marker"', {}, receipt=receipt)
        assert second.wait_for_receipts([receipt], 5) == {receipt}
        assert marker_seen.wait(5)
        assert later == [b'"marker"']  # both ACKs reached the broker: nothing came back
    finally:
        second.disconnect()
