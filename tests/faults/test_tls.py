"""TLS to RabbitMQ's STOMP listener: certificates verified, a wrong CA refused, no secrets shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport, wire
from tests.support.rabbit_node import RabbitNode


def tls_settings(node: RabbitNode, ca: Path, host: str = "127.0.0.1") -> conf.OutboxSettings:
    assert node.tls_port is not None
    return conf.OutboxSettings(
        DEFAULT_STOMP_HOST_AND_PORTS=((host, node.tls_port),),
        DEFAULT_STOMP_USE_SSL=True,
        DEFAULT_STOMP_CA_CERTS=str(ca),
        DEFAULT_STOMP_PASSCODE="guest",
    )


def test_verified_tls_connection_sends_with_receipt(
    tls_node: RabbitNode, tls_material: dict[str, Path]
) -> None:
    t = transport.StompTransport(tls_settings(tls_node, tls_material["ca"]))
    t.connect()
    try:
        receipt = wire.new_receipt_id()
        t.send("/queue/tls-check", "{}", {"persistent": "true"}, receipt=receipt)
        assert t.wait_for_receipts([receipt], 10) == {receipt}
        # frames written together (the relay's path) go through stomp.py's TLS writer thread
        receipts = [wire.new_receipt_id() for _ in range(3)]
        t.send_many([wire.OutgoingFrame("/queue/tls-check", "{}", {}, r) for r in receipts])
        assert t.wait_for_receipts(receipts, 10) == set(receipts)
    finally:
        t.disconnect()


def test_wrong_ca_is_refused(tls_node: RabbitNode, tls_material: dict[str, Path]) -> None:
    t = transport.StompTransport(tls_settings(tls_node, tls_material["wrong_ca"]))
    with pytest.raises(exceptions.ConnectionFailed, match="TLS") as info:
        t.connect()
    assert not t.is_connected()
    assert "guest" not in str(info.value).replace("'guest'", "")


def test_plain_client_on_the_tls_port_is_refused(tls_node: RabbitNode) -> None:
    assert tls_node.tls_port is not None
    plain = conf.OutboxSettings(
        DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", tls_node.tls_port),), DEFAULT_CONNECT_TIMEOUT=3
    )
    with pytest.raises(exceptions.ConnectionFailed):
        transport.StompTransport(plain).connect()
