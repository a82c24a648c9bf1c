"""Operational checks for ``outboxctl check``: configuration, database and migrations, broker round trip.

Each check returns a ``CheckResult`` (pass, fail or skip, a detail, a hint for failures, timing). A failure
caused by an unreachable service says which one (``unreachable="database"`` / ``"broker"``), so a readiness
probe can tell "down" from "misconfigured". The broker checks go through ``transport.Transport``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport

Status = Literal["pass", "fail", "skip"]
TAG = "django_outbox_pattern"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""
    elapsed_ms: float | None = None
    unreachable: Literal["database", "broker"] | None = None


def run_checks(
    settings: conf.OutboxSettings,
    *,
    database: bool = True,
    broker: bool = True,
    alias: str = "default",
    transport_factory: Callable[[conf.OutboxSettings], transport.Transport] | None = None,
) -> list[CheckResult]:
    results = [check_configuration()]
    if database:
        results.extend(check_database(alias))
    if broker:
        results.extend(check_broker(settings, transport_factory or transport.StompTransport))
    return results


def preflight(
    settings: conf.OutboxSettings,
    *,
    transport_factory: Callable[[conf.OutboxSettings], transport.Transport] | None = None,
) -> None:
    """Fail fast before a one-shot run: StorageError if the outbox table cannot be read, ConnectionFailed
    if the broker refuses a connection (the relay's own supervisor would wait for both instead)."""
    from django.db import DatabaseError

    from django_outbox_pattern.models import Published

    try:
        Published.objects.exists()
    except DatabaseError as exc:
        raise exceptions.StorageError(
            f"Cannot read the outbox table: {_one_line(exc)}. "
            "Is the database up, and are the migrations applied?"
        ) from exc
    conn = (transport_factory or transport.StompTransport)(settings)
    conn.connect()
    conn.disconnect()


def check_configuration() -> CheckResult:
    from django.core import checks

    messages = [m for m in checks.run_checks(tags=[TAG]) if not m.is_silenced()]
    errors = [m for m in messages if m.level >= checks.ERROR]
    if errors:
        first = errors[0]
        return CheckResult(
            "configuration", "fail", f"{len(errors)} error(s): {first.id} {first.msg}", first.hint or ""
        )
    warnings = [m.id or "" for m in messages]
    detail = "settings valid" + (f"; warnings: {', '.join(warnings)}" if warnings else "")
    return CheckResult("configuration", "pass", detail)


def check_database(alias: str = "default") -> list[CheckResult]:
    from django.db import DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[alias]
    where = f"{connection.vendor} {connection.settings_dict.get('NAME')}"
    host = connection.settings_dict.get("HOST")
    where += f" on {host}:{connection.settings_dict.get('PORT') or 'default port'}" if host else ""
    start = time.monotonic()
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return [
            CheckResult(
                "database",
                "fail",
                f"{where}: {_one_line(exc)}",
                "Is the database running, and are host, "
                "port, name and credentials right? See `outboxctl config`.",
                _ms(start),
                "database",
            ),
            CheckResult("migrations", "skip", "database not reachable"),
        ]
    results = [CheckResult("database", "pass", f"connected to {where}", elapsed_ms=_ms(start))]
    try:
        executor = MigrationExecutor(connection)
        targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == TAG]
        missing = [m.name for m, _ in executor.migration_plan(targets) if m.app_label == TAG]
    except DatabaseError as exc:
        results.append(CheckResult("migrations", "fail", _one_line(exc), "Run `python manage.py migrate`."))
        return results
    if missing:
        results.append(
            CheckResult(
                "migrations",
                "fail",
                f"{len(missing)} not applied: {', '.join(missing)}",
                f"Run `python manage.py migrate {TAG}`.",
            )
        )
    else:
        results.append(CheckResult("migrations", "pass", f"all {_count(executor)} applied"))
    return results


def _count(executor: Any) -> int:
    return sum(1 for key in executor.loader.graph.nodes if key[0] == TAG)


def check_broker(
    settings: conf.OutboxSettings, factory: Callable[[conf.OutboxSettings], transport.Transport]
) -> list[CheckResult]:
    hosts = ", ".join(f"{h}:{p}" for h, p in settings.DEFAULT_STOMP_HOST_AND_PORTS)
    tls = _tls_files(settings)
    conn = factory(settings)
    start = time.monotonic()
    try:
        conn.connect()
    except exceptions.TransportError as exc:
        failed = CheckResult(
            "broker",
            "fail",
            _one_line(exc),
            "Is RabbitMQ running with the rabbitmq_stomp plugin, "
            "and are host, port, vhost and credentials right?",
            _ms(start),
            "broker",
        )
        tls_result = tls or CheckResult("tls", "skip", "TLS not configured")
        if tls is not None and tls.status == "pass":
            tls_result = CheckResult(
                "tls",
                "fail",
                "no TLS session (connection failed)",
                tls.hint or "Check DEFAULT_STOMP_USE_SSL matches the broker's listener and the CA file.",
            )
        return [
            failed,
            tls_result,
            CheckResult("heartbeat", "skip", "not connected"),
            CheckResult("send_receipt", "skip", "not connected"),
        ]
    try:
        server = getattr(conn, "server", "") or "broker"
        results = [
            CheckResult("broker", "pass", f"STOMP CONNECT to {hosts} ({server})", elapsed_ms=_ms(start))
        ]
        if tls is None:
            results.append(CheckResult("tls", "skip", "TLS not configured (DEFAULT_STOMP_USE_SSL is false)"))
        else:
            results.append(dataclasses.replace(tls, detail="TLS session established; " + tls.detail))
        results.append(_heartbeat(settings, getattr(conn, "negotiated_heartbeat", None)))
        results.append(_round_trip(conn, settings.DEFAULT_RECEIPT_TIMEOUT))
        return results
    finally:
        conn.disconnect()


def _tls_files(settings: conf.OutboxSettings) -> CheckResult | None:
    if not settings.DEFAULT_STOMP_USE_SSL:
        return None
    files = {
        "DEFAULT_STOMP_CA_CERTS": settings.DEFAULT_STOMP_CA_CERTS,
        "DEFAULT_STOMP_CERT_FILE": settings.DEFAULT_STOMP_CERT_FILE,
        "DEFAULT_STOMP_KEY_FILE": settings.DEFAULT_STOMP_KEY_FILE,
    }
    bad = [f"{key}={path}" for key, path in files.items() if path and not os.access(path, os.R_OK)]
    if bad:
        return CheckResult(
            "tls", "fail", f"unreadable: {', '.join(bad)}", "Fix the paths or the file permissions."
        )
    given = [key.removeprefix("DEFAULT_STOMP_").lower() for key, path in files.items() if path]
    return CheckResult("tls", "pass", f"files: {', '.join(given) or 'none (no server verification)'}")


def negotiate(requested: tuple[int, int], server: str) -> tuple[int, int]:
    """Effective (client->server, server->client) heart-beat intervals in ms, per STOMP 1.2 section 6.1."""
    cx, cy = requested
    try:
        sx, sy = (int(v) for v in server.split(","))
    except ValueError:
        return (0, 0)
    return (0 if cx == 0 or sy == 0 else max(cx, sy), 0 if cy == 0 or sx == 0 else max(cy, sx))


def _heartbeat(settings: conf.OutboxSettings, server: str | None) -> CheckResult:
    requested = settings.DEFAULT_STOMP_HEARTBEATS
    if server is None:
        return CheckResult("heartbeat", "skip", "this transport does not report heart-beats")
    if requested == (0, 0):
        return CheckResult("heartbeat", "pass", "disabled by DEFAULT_STOMP_HEARTBEATS (0, 0)")
    out, back = negotiate(requested, server)
    detail = (
        f"requested {requested[0]},{requested[1]} ms; broker {server or 'none'}; "
        f"effective send {out} ms, receive {back} ms"
    )
    if out == 0 and back == 0:
        return CheckResult(
            "heartbeat",
            "fail",
            detail,
            "The broker turned heart-beats off: dead connections will "
            "go unnoticed. Check RabbitMQ's STOMP heart-beat configuration.",
        )
    return CheckResult("heartbeat", "pass", detail)


def _round_trip(conn: transport.Transport, timeout: float) -> CheckResult:
    """SUBSCRIBE to a throwaway topic, SEND to it with a receipt, wait for the RECEIPT and the MESSAGE."""
    destination = f"/topic/outboxctl.check.{uuid.uuid4().hex}"
    arrived = threading.Event()
    conn.set_message_handler(lambda message: arrived.set())
    sub_id, receipt = "outboxctl-check", transport.new_receipt_id()
    start = time.monotonic()
    try:
        conn.subscribe(destination, sub_id, {}, ack="auto")
        conn.send(destination, "outboxctl check", {"content-type": "text/plain"}, receipt=receipt)
        confirmed = receipt in conn.wait_for_receipts([receipt], timeout)
        receipt_ms = _ms(start)
        delivered = confirmed and arrived.wait(timeout)
        with contextlib.suppress(exceptions.TransportError):
            conn.unsubscribe(sub_id)
    except exceptions.TransportError as exc:
        return CheckResult(
            "send_receipt",
            "fail",
            _one_line(exc),
            "The broker closed the connection during a SEND.",
            _ms(start),
        )
    finally:
        conn.set_message_handler(None)
    if not confirmed:
        return CheckResult(
            "send_receipt",
            "fail",
            f"no RECEIPT within {timeout}s",
            "Is the broker overloaded or "
            "blocking publishers (memory/disk alarm)? Check `rabbitmq-diagnostics alarms`.",
            receipt_ms,
        )
    if not delivered:
        return CheckResult(
            "send_receipt",
            "fail",
            "RECEIPT arrived but the message did not come back",
            "Check the amq.topic exchange and the user's permissions on the vhost.",
            _ms(start),
        )
    return CheckResult(
        "send_receipt",
        "pass",
        f"RECEIPT in {receipt_ms:.1f} ms, message back in {_ms(start):.1f} ms",
        elapsed_ms=receipt_ms,
    )


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
