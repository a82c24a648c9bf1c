"""A dedicated database for the fault suite's subprocesses, and the books kept in it.

``FaultDatabase.create()`` makes ``faults_<random>`` on PostgreSQL (``MariaDatabase``: on MariaDB),
migrates it with ``python -m django migrate`` in a subprocess, and ``drop()`` removes it (with whatever
is left connected). The test process never uses Django's ORM on it: it reads the books and cuts
connections with plain SQL (psycopg, PyMySQL).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pymysql

from tests.support.processes import ROOT

SCHEDULE, SUCCEEDED, FAILED = 1, 2, -1  # StatusChoice values


def pg_params(dbname: str) -> dict[str, Any]:
    return {
        "host": os.environ.get("OUTBOX_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("OUTBOX_PG_PORT", "5432")),
        "user": os.environ.get("OUTBOX_PG_USER", "postgres"),
        "password": os.environ.get("OUTBOX_PG_PASSWORD", ""),
        "dbname": dbname,
    }


def available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(**pg_params("postgres"), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL is not available ({exc})"


@dataclasses.dataclass(frozen=True)
class Books:
    """What the outbox, the inbox and the business table hold after a run."""

    rows: int  # outbox rows written
    statuses: dict[int, int]  # outbox status -> rows
    received: int  # outbox rows whose dop-msg-id is in the inbox (Received)
    effects: int  # Effect rows
    distinct_effects: int  # distinct msg_ids among the Effect rows
    effects_for_rows: int  # outbox rows with at least one Effect
    dead_lettered: int = 0  # messages left in the consumer's dead-letter queue

    @property
    def lost(self) -> int:
        """Outbox rows that never produced their effect."""
        return self.rows - self.effects_for_rows

    @property
    def duplicated_effects(self) -> int:
        return self.effects - self.distinct_effects

    @property
    def complete(self) -> bool:
        return (
            self.rows > 0
            and self.statuses.get(SUCCEEDED, 0) == self.rows
            and self.received == self.rows
            and self.effects_for_rows == self.rows
        )


class FaultDatabase:
    """PostgreSQL."""

    vendor = "postgres"
    ID_TEXT = "p.id::text"  # an outbox row's id as its dop-msg-id header spells it

    def __init__(self) -> None:
        self.name = f"faults_{uuid.uuid4().hex[:10]}"
        self._conn: Any = None

    def env(self) -> dict[str, str]:
        """The environment variables that point tests.settings at this database."""
        return {"OUTBOX_TEST_DB": self.vendor, "OUTBOX_TEST_DB_NAME": self.name}

    def create(self) -> None:
        with psycopg.connect(**pg_params("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.migrate()

    def migrate(self) -> None:
        env = {
            **os.environ,
            **self.env(),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        }
        done = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed: {done.stdout}{done.stderr}")

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with psycopg.connect(**pg_params("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                **pg_params(self.name), autocommit=True, application_name="faults-books"
            )
        return self._conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def reset(self) -> None:
        """Empty the outbox, the inbox, the business table and the ordering keys' counters (between the tests
        of a module)."""
        for table in ("published", "received", "testapp_effect", "dop_relay_process", "dop_ordering_key"):
            self.execute(f"TRUNCATE {table}")

    def books(self) -> Books:
        statuses = {
            int(status): int(count)
            for status, count in self.query("SELECT status, count(*) FROM published GROUP BY status")
        }
        return Books(
            rows=sum(statuses.values()),
            statuses=statuses,
            received=int(
                self.scalar(
                    "SELECT count(*) FROM published p WHERE EXISTS "
                    f"(SELECT 1 FROM received r WHERE r.msg_id = {self.ID_TEXT})"
                )
            ),
            effects=int(self.scalar("SELECT count(*) FROM testapp_effect")),
            distinct_effects=int(self.scalar("SELECT count(DISTINCT msg_id) FROM testapp_effect")),
            effects_for_rows=int(
                self.scalar(
                    "SELECT count(*) FROM published p WHERE EXISTS "
                    f"(SELECT 1 FROM testapp_effect e WHERE e.msg_id = {self.ID_TEXT})"
                )
            ),
        )

    def effects(self) -> int:
        return int(self.scalar("SELECT count(DISTINCT msg_id) FROM testapp_effect"))

    def due(self) -> int:
        """Rows waiting to be sent that no relay holds."""
        return int(
            self.scalar("SELECT count(*) FROM published WHERE status = %s AND locked_by = ''", (SCHEDULE,))
        )

    def leased_by_pid(self, pid: int) -> int:
        """Rows a relay process holds a lease on (its relay id is ``<host>:<pid>:<hex>``)."""
        return int(
            self.scalar(
                "SELECT count(*) FROM published WHERE status = %s AND locked_by LIKE %s",
                (SCHEDULE, f"%:{pid}:%"),
            )
        )

    def held_by_pid(self, pid: int) -> list[str]:
        """The ids of the rows a relay process holds a lease on."""
        return [
            str(row[0])
            for row in self.query(
                "SELECT id FROM published WHERE status = %s AND locked_by LIKE %s", (SCHEDULE, f"%:{pid}:%")
            )
        ]

    def published_among(self, ids: list[str]) -> int:
        """How many of these rows are published."""
        return int(
            self.scalar(
                "SELECT count(*) FROM published WHERE status = %s AND id::text = ANY(%s)", (SUCCEEDED, ids)
            )
        )

    def in_transaction(self, application_name: str) -> bool:
        """True while a session of that application is inside a transaction (a callback mid-way)."""
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                "AND state IN ('idle in transaction', 'active') AND xact_start IS NOT NULL "
                "AND backend_xid IS NOT NULL",
                (self.name, application_name),
            )
        )

    def terminate(self, application_prefix: str, *, idle_in_transaction: bool = False) -> int:
        """``pg_terminate_backend`` every session whose application_name starts with the prefix."""
        sql = (
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE %s"
        )
        if idle_in_transaction:
            sql += " AND state = 'idle in transaction'"
        return int(self.scalar(sql, (self.name, f"{application_prefix}%")))


def maria_params(dbname: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "host": os.environ.get("OUTBOX_MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("OUTBOX_MYSQL_PORT", "3306")),
        "user": os.environ.get("OUTBOX_MYSQL_USER", "root"),
        "password": os.environ.get("OUTBOX_MYSQL_PASSWORD", ""),
        "autocommit": True,
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",  # the tables' collation: comparisons need no conversion
    }
    if dbname:
        params["database"] = dbname
    return params


def maria_available() -> str | None:
    try:
        pymysql.connect(**maria_params(), connect_timeout=3).close()
        return None
    except pymysql.Error as exc:
        return f"MariaDB is not available ({exc})"


class MariaDatabase(FaultDatabase):
    """MariaDB (or MySQL): connections are cut with KILL."""

    vendor = "mysql"
    # Django stores UUIDField as MariaDB's native uuid type (10.7+), as 32 hex digits on MySQL.
    ID_TEXT = (
        "IF(LENGTH(p.id) = 32, LOWER(CONCAT_WS('-', SUBSTR(p.id, 1, 8), SUBSTR(p.id, 9, 4), "
        "SUBSTR(p.id, 13, 4), SUBSTR(p.id, 17, 4), SUBSTR(p.id, 21, 12))), CAST(p.id AS CHAR))"
    )

    def create(self) -> None:
        admin = pymysql.connect(**maria_params())
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        finally:
            admin.close()
        self.migrate()

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.kill_sessions()
        admin = pymysql.connect(**maria_params())
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        finally:
            admin.close()

    @property
    def conn(self) -> Any:
        if self._conn is None or not self._conn.open:
            self._conn = pymysql.connect(**maria_params(self.name))
        return self._conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params or None)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())

    def kill_sessions(self) -> int:
        """KILL every connection to this database but our own (the relays', the consumers')."""
        ids = self.query(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
            (self.name,),
        )
        killed = 0
        for (session,) in ids:
            try:
                self.execute(f"KILL {int(session)}")
                killed += 1
            except pymysql.err.OperationalError:  # gone meanwhile
                pass
        return killed
