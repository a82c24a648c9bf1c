"""The one implementation of every probe: is the database reachable and migrated, does the broker connect.

Every probe returns a ``CheckResult`` (pass, fail or skip, a detail, a hint for failures, timing). A failure
caused by an unreachable service says which one (``unreachable="database"`` / ``"broker"``), so a readiness
probe can tell "down" from "misconfigured". Rendered by the Django system checks (checks.py, with
``--database``), ``outboxctl check`` (diagnostics.py adds TLS, heart-beat and a round trip on the same
connection), ``outboxctl check --readiness`` and the health view (views.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from django_outbox_pattern import conf, exceptions

if TYPE_CHECKING:
    from django_outbox_pattern.broker import wire

Status = Literal["pass", "fail", "skip"]
TransportFactory = Callable[[conf.OutboxSettings], "wire.Transport"]
TAG = "django_outbox_pattern"
DATABASE_HINT = (
    "Is the database running, and are host, port, name and credentials right? See `outboxctl config`."
)
BROKER_HINT = (
    "Is RabbitMQ running with the rabbitmq_stomp plugin, and are host, port, vhost and credentials right?"
)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The result of one probe: ``status``, a sentence saying why, and a hint when it failed."""

    name: str
    status: Status
    detail: str
    hint: str = ""
    elapsed_ms: float | None = None
    unreachable: Literal["database", "broker"] | None = None
    age_s: float | None = None  # liveness: how old the heartbeat is

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def as_dict(self) -> dict[str, Any]:
        """The stable keys of ``outboxctl check --json``."""
        keys = ("name", "status", "detail", "hint", "elapsed_ms", "unreachable")
        return {key: getattr(self, key) for key in keys}

    def as_probe(self) -> dict[str, Any]:
        """The stable keys of a quick probe (``check --readiness/--liveness --json``, the health view)."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "age_s": self.age_s}


def database(alias: str = "default") -> CheckResult:
    """A connection to ``alias`` and ``SELECT 1``."""
    from django.db import connections

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
        detail = f"database {alias!r} ({where}) is not reachable: {one_line(exc)}"
        return CheckResult("database", "fail", detail, DATABASE_HINT, ms_since(start), "database")
    return CheckResult("database", "pass", f"connected to {where}", elapsed_ms=ms_since(start))


def migrations(alias: str = "default") -> CheckResult:
    """Every migration of this app applied on ``alias`` (call after ``database()`` passed)."""
    from django.db import DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[alias])
        targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == TAG]
        missing = [m.name for m, _ in executor.migration_plan(targets) if m.app_label == TAG]
    except DatabaseError as exc:
        return CheckResult("migrations", "fail", one_line(exc), "Run `python manage.py migrate`.")
    if missing:
        detail = f"{len(missing)} not applied: {', '.join(missing)}"
        return CheckResult("migrations", "fail", detail, f"Run `python manage.py migrate {TAG}`.")
    count = sum(1 for key in executor.loader.graph.nodes if key[0] == TAG)
    return CheckResult("migrations", "pass", f"all {count} applied")


def connect_broker(
    settings: conf.OutboxSettings, factory: TransportFactory | None = None
) -> tuple[CheckResult, wire.Transport | None]:
    """A STOMP CONNECT with the configured credentials; on success the caller disconnects the transport."""
    if factory is None:
        from django_outbox_pattern.broker import transport

        factory = transport.StompTransport
    hosts = ", ".join(f"{h}:{p}" for h, p in settings.DEFAULT_STOMP_HOST_AND_PORTS)
    conn = factory(settings)
    start = time.monotonic()
    try:
        conn.connect()
    except exceptions.TransportError as exc:
        conn.disconnect()
        return CheckResult("broker", "fail", one_line(exc), BROKER_HINT, ms_since(start), "broker"), None
    server = getattr(conn, "server", "") or "broker"
    detail = f"STOMP CONNECT to {hosts} ({server})"
    return CheckResult("broker", "pass", detail, elapsed_ms=ms_since(start)), conn


def broker(settings: conf.OutboxSettings, factory: TransportFactory | None = None) -> CheckResult:
    """A STOMP CONNECT, then DISCONNECT."""
    result, conn = connect_broker(settings, factory)
    if conn is not None:
        conn.disconnect()
    return result


def readiness(
    settings: conf.OutboxSettings, *, alias: str = "default", factory: TransportFactory | None = None
) -> list[CheckResult]:
    """Database, then broker: the process is ready when both pass."""
    return [database(alias), broker(settings, factory)]


def ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
