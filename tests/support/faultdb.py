"""A dedicated PostgreSQL database for the fault suite's subprocesses, and the books kept in it.

``FaultDatabase.create()`` makes ``faults_<random>``, migrates it with ``python -m django migrate`` in a
subprocess, and ``drop()`` removes it (terminating what is left connected). The test process never
uses Django's ORM on it: it reads the books and cuts connections with plain SQL over psycopg.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg

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
    def __init__(self) -> None:
        self.name = f"faults_{uuid.uuid4().hex[:10]}"
        self._conn: psycopg.Connection[Any] | None = None

    def env(self) -> dict[str, str]:
        """The environment variables that point tests.settings at this database."""
        return {"OUTBOX_TEST_DB": "postgres", "OUTBOX_TEST_DB_NAME": self.name}

    def create(self) -> None:
        with psycopg.connect(**pg_params("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
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
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                **pg_params(self.name), autocommit=True, application_name="faults-books"
            )
        return self._conn

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def reset(self) -> None:
        """Empty the outbox, the inbox and the business table (between the tests of a module)."""
        self.conn.execute("TRUNCATE published, received, testapp_effect")

    def books(self) -> Books:
        statuses = dict(
            self.conn.execute("SELECT status, count(*) FROM published GROUP BY status").fetchall()
        )
        return Books(
            rows=sum(statuses.values()),
            statuses=statuses,
            received=self.scalar(
                "SELECT count(*) FROM published p WHERE EXISTS "
                "(SELECT 1 FROM received r WHERE r.msg_id = p.id::text)"
            ),
            effects=self.scalar("SELECT count(*) FROM testapp_effect"),
            distinct_effects=self.scalar("SELECT count(DISTINCT msg_id) FROM testapp_effect"),
            effects_for_rows=self.scalar(
                "SELECT count(*) FROM published p WHERE EXISTS "
                "(SELECT 1 FROM testapp_effect e WHERE e.msg_id = p.id::text)"
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
