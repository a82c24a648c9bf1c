"""Operational checks for ``outboxctl check``: configuration, database and migrations, broker round trip.

The database and broker probes are probes.py's (one implementation, one ``CheckResult`` type); this
module adds what only the full check does: the Django system checks, TLS files, heart-beat negotiation
and a SEND with receipt on the probe's connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable

from django_outbox_pattern import conf, exceptions, wiring
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.ops import probes

TAG = probes.TAG


def run_checks(
    settings: conf.OutboxSettings,
    *,
    database: bool = True,
    broker: bool = True,
    alias: str = "default",
    transport_factory: Callable[[conf.OutboxSettings], wire.Transport] | None = None,
) -> list[probes.CheckResult]:
    results = [check_configuration()]
    if database:
        results.extend(database_checks(alias))
    if broker:
        results.extend(broker_checks(settings, transport_factory or transport.StompTransport))
    return results


def preflight(
    settings: conf.OutboxSettings,
    *,
    transport_factory: Callable[[conf.OutboxSettings], wire.Transport] | None = None,
) -> None:
    """Fail fast before a one-shot run: StorageError if the outbox table cannot be read, ConnectionFailed
    if the broker refuses a connection (the relay's own supervisor would wait for both instead)."""
    from django.db import DatabaseError

    try:
        wiring.published_model(settings).objects.exists()
    except DatabaseError as exc:
        raise exceptions.StorageError(
            f"Cannot read the outbox table: {probes.one_line(exc)}. "
            "Is the database up, and are the migrations applied?"
        ) from exc
    conn = (transport_factory or transport.StompTransport)(settings)
    conn.connect()
    conn.disconnect()


def check_configuration() -> probes.CheckResult:
    from django.core import checks

    messages = [m for m in checks.run_checks(tags=[TAG]) if not m.is_silenced()]
    errors = [m for m in messages if m.level >= checks.ERROR]
    if errors:
        first = errors[0]
        return probes.CheckResult(
            "configuration", "fail", f"{len(errors)} error(s): {first.id} {first.msg}", first.hint or ""
        )
    warnings = [m.id or "" for m in messages]
    detail = "settings valid" + (f"; warnings: {', '.join(warnings)}" if warnings else "")
    return probes.CheckResult("configuration", "pass", detail)


def database_checks(alias: str = "default") -> list[probes.CheckResult]:
    """The database probe, then the migrations (skipped when the database is not reachable)."""
    reached = probes.database(alias)
    if not reached.ok:
        return [reached, probes.CheckResult("migrations", "skip", "database not reachable")]
    return [reached, probes.migrations(alias)]


def broker_checks(
    settings: conf.OutboxSettings, factory: Callable[[conf.OutboxSettings], wire.Transport]
) -> list[probes.CheckResult]:
    """The broker probe, then TLS, heart-beat and a round trip over the same connection."""
    tls = _tls_files(settings)
    connected, conn = probes.connect_broker(settings, factory)
    if conn is None:
        tls_result = tls or probes.CheckResult("tls", "skip", "TLS not configured")
        if tls is not None and tls.status == "pass":
            tls_result = probes.CheckResult(
                "tls",
                "fail",
                "no TLS session (connection failed)",
                tls.hint or "Check DEFAULT_STOMP_USE_SSL matches the broker's listener and the CA file.",
            )
        return [
            connected,
            tls_result,
            probes.CheckResult("heartbeat", "skip", "not connected"),
            probes.CheckResult("send_receipt", "skip", "not connected"),
        ]
    try:
        results = [connected]
        if tls is None:
            results.append(
                probes.CheckResult("tls", "skip", "TLS not configured (DEFAULT_STOMP_USE_SSL is false)")
            )
        else:
            results.append(dataclasses.replace(tls, detail="TLS session established; " + tls.detail))
        results.append(_heartbeat(settings, getattr(conn, "negotiated_heartbeat", None)))
        results.append(_round_trip(conn, settings.DEFAULT_RECEIPT_TIMEOUT))
        return results
    finally:
        conn.disconnect()


def _tls_files(settings: conf.OutboxSettings) -> probes.CheckResult | None:
    if not settings.DEFAULT_STOMP_USE_SSL:
        return None
    files = {
        "DEFAULT_STOMP_CA_CERTS": settings.DEFAULT_STOMP_CA_CERTS,
        "DEFAULT_STOMP_CERT_FILE": settings.DEFAULT_STOMP_CERT_FILE,
        "DEFAULT_STOMP_KEY_FILE": settings.DEFAULT_STOMP_KEY_FILE,
    }
    bad = [f"{key}={path}" for key, path in files.items() if path and not os.access(path, os.R_OK)]
    if bad:
        return probes.CheckResult(
            "tls", "fail", f"unreadable: {', '.join(bad)}", "Fix the paths or the file permissions."
        )
    given = [key.removeprefix("DEFAULT_STOMP_").lower() for key, path in files.items() if path]
    return probes.CheckResult("tls", "pass", f"files: {', '.join(given) or 'none (no server verification)'}")


def negotiate(requested: tuple[int, int], server: str) -> tuple[int, int]:
    """Effective (client->server, server->client) heart-beat intervals in ms, per STOMP 1.2 section 6.1."""
    cx, cy = requested
    try:
        sx, sy = (int(v) for v in server.split(","))
    except ValueError:
        return (0, 0)
    return (0 if cx == 0 or sy == 0 else max(cx, sy), 0 if cy == 0 or sx == 0 else max(cy, sx))


def _heartbeat(settings: conf.OutboxSettings, server: str | None) -> probes.CheckResult:
    requested = settings.DEFAULT_STOMP_HEARTBEATS
    if server is None:
        return probes.CheckResult("heartbeat", "skip", "this transport does not report heart-beats")
    if requested == (0, 0):
        return probes.CheckResult("heartbeat", "pass", "disabled by DEFAULT_STOMP_HEARTBEATS (0, 0)")
    out, back = negotiate(requested, server)
    detail = (
        f"requested {requested[0]},{requested[1]} ms; broker {server or 'none'}; "
        f"effective send {out} ms, receive {back} ms"
    )
    if out == 0 and back == 0:
        return probes.CheckResult(
            "heartbeat",
            "fail",
            detail,
            "The broker turned heart-beats off: dead connections will "
            "go unnoticed. Check RabbitMQ's STOMP heart-beat configuration.",
        )
    return probes.CheckResult("heartbeat", "pass", detail)


def _round_trip(conn: wire.Transport, timeout: float) -> probes.CheckResult:
    """SUBSCRIBE to a throwaway topic, SEND to it with a receipt, wait for the RECEIPT and the MESSAGE."""
    destination = f"/topic/outboxctl.check.{uuid.uuid4().hex}"
    arrived = threading.Event()
    conn.set_message_handler(lambda message: arrived.set())
    sub_id, receipt = "outboxctl-check", wire.new_receipt_id()
    start = time.monotonic()
    try:
        conn.subscribe(destination, sub_id, {}, ack="auto")
        conn.send(destination, "outboxctl check", {"content-type": "text/plain"}, receipt=receipt)
        confirmed = receipt in conn.wait_for_receipts([receipt], timeout)
        receipt_ms = probes.ms_since(start)
        delivered = confirmed and arrived.wait(timeout)
        with contextlib.suppress(exceptions.TransportError):
            conn.unsubscribe(sub_id)
    except exceptions.TransportError as exc:
        return probes.CheckResult(
            "send_receipt",
            "fail",
            probes.one_line(exc),
            "The broker closed the connection during a SEND.",
            probes.ms_since(start),
        )
    finally:
        conn.set_message_handler(None)
    if not confirmed:
        return probes.CheckResult(
            "send_receipt",
            "fail",
            f"no RECEIPT within {timeout}s",
            "Is the broker overloaded or "
            "blocking publishers (memory/disk alarm)? Check `rabbitmq-diagnostics alarms`.",
            receipt_ms,
        )
    if not delivered:
        return probes.CheckResult(
            "send_receipt",
            "fail",
            "RECEIPT arrived but the message did not come back",
            "Check the amq.topic exchange and the user's permissions on the vhost.",
            probes.ms_since(start),
        )
    return probes.CheckResult(
        "send_receipt",
        "pass",
        f"RECEIPT in {receipt_ms:.1f} ms, message back in {probes.ms_since(start):.1f} ms",
        elapsed_ms=receipt_ms,
    )
