"""``diagnostics``: heart-beat arithmetic and the broker checks driven by the in-memory transport."""

from __future__ import annotations

import dataclasses

import pytest

from django_outbox_pattern import conf
from django_outbox_pattern.ops import diagnostics, probes
from django_outbox_pattern.testing import MemoryBroker, MemoryTransport


@pytest.mark.parametrize(
    ("requested", "server", "expected"),
    [
        ((10000, 10000), "5000,5000", (10000, 10000)),
        ((2000, 2000), "10000,10000", (10000, 10000)),
        ((2000, 0), "5000,5000", (5000, 0)),
        ((0, 2000), "5000,1000", (0, 5000)),
        ((2000, 2000), "0,0", (0, 0)),
        ((2000, 2000), "", (0, 0)),
    ],
)
def test_negotiate(requested: tuple[int, int], server: str, expected: tuple[int, int]) -> None:
    assert diagnostics.negotiate(requested, server) == expected


class HeartbeatTransport(MemoryTransport):
    def __init__(self, broker: MemoryBroker, heartbeat: str) -> None:
        super().__init__(broker)
        self.negotiated_heartbeat = heartbeat


def by_name(results: list[probes.CheckResult]) -> dict[str, probes.CheckResult]:
    return {r.name: r for r in results}


def test_broker_checks_pass_over_a_working_transport() -> None:
    broker = MemoryBroker()
    results = by_name(
        diagnostics.broker_checks(conf.OutboxSettings(), lambda s: HeartbeatTransport(broker, "10000,10000"))
    )
    assert [r.status for r in results.values()] == ["pass", "skip", "pass", "pass"]
    assert "effective send 10000 ms, receive 10000 ms" in results["heartbeat"].detail
    assert results["send_receipt"].elapsed_ms is not None


def test_heartbeats_turned_off_by_the_broker_fail() -> None:
    results = by_name(
        diagnostics.broker_checks(conf.OutboxSettings(), lambda s: HeartbeatTransport(MemoryBroker(), "0,0"))
    )
    assert results["heartbeat"].status == "fail"
    assert "heart-beats off" in results["heartbeat"].hint


def test_heartbeats_disabled_in_settings_pass() -> None:
    settings = conf.OutboxSettings.from_mapping({"DEFAULT_STOMP_HEARTBEATS": (0, 0)})
    results = by_name(
        diagnostics.broker_checks(settings, lambda s: HeartbeatTransport(MemoryBroker(), "0,0"))
    )
    assert results["heartbeat"].status == "pass"


def test_transport_without_heartbeat_report_is_skipped() -> None:
    results = by_name(diagnostics.broker_checks(conf.OutboxSettings(), lambda s: MemoryTransport()))
    assert results["heartbeat"].status == "skip"


def test_missing_receipt_fails_with_a_hint() -> None:
    broker = MemoryBroker()
    broker.withhold_receipts = True
    settings = conf.OutboxSettings.from_mapping({"DEFAULT_RECEIPT_TIMEOUT": 0.05})
    results = by_name(diagnostics.broker_checks(settings, lambda s: MemoryTransport(broker)))
    assert results["send_receipt"].status == "fail"
    assert "no RECEIPT within 0.05s" in results["send_receipt"].detail
    assert results["send_receipt"].unreachable is None


def test_unreachable_broker_skips_the_rest() -> None:
    broker = MemoryBroker()
    broker.down = True
    results = diagnostics.broker_checks(conf.OutboxSettings(), lambda s: MemoryTransport(broker))
    assert [(r.name, r.status) for r in results] == [
        ("broker", "fail"),
        ("tls", "skip"),
        ("heartbeat", "skip"),
        ("send_receipt", "skip"),
    ]
    assert results[0].unreachable == "broker"


def test_tls_files_must_be_readable(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_STOMP_USE_SSL": True,
            "DEFAULT_STOMP_CA_CERTS": str(ca),
            "DEFAULT_STOMP_CERT_FILE": "/nonexistent.pem",
        }
    )
    results = by_name(diagnostics.broker_checks(settings, lambda s: MemoryTransport()))
    assert results["tls"].status == "fail"
    assert "DEFAULT_STOMP_CERT_FILE=/nonexistent.pem" in results["tls"].detail
    ok = dataclasses.replace(settings, DEFAULT_STOMP_CERT_FILE=None)
    assert by_name(diagnostics.broker_checks(ok, lambda s: MemoryTransport()))["tls"].status == "pass"


@pytest.mark.django_db
def test_preflight() -> None:
    from django_outbox_pattern import exceptions

    diagnostics.preflight(conf.OutboxSettings(), transport_factory=lambda s: MemoryTransport())
    broker = MemoryBroker()
    broker.down = True
    with pytest.raises(exceptions.ConnectionFailed):
        diagnostics.preflight(conf.OutboxSettings(), transport_factory=lambda s: MemoryTransport(broker))
