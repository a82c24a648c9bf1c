"""Database work inside a worker: create and migrate the bench database, empty it, load the outbox.

Runs only in ``bench.worker`` processes (Django configured by ``bench.settings``).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection

LOAD_BATCH = 1000


def prepare() -> dict[str, Any]:
    """Create the database if it does not exist, migrate it, empty the tables; the server version."""
    _create_database()
    call_command("migrate", verbosity=0, interactive=False)
    truncate()
    return {"version": server_version()}


def _create_database() -> None:
    db: dict[str, Any] = dict(settings.DATABASES["default"])
    vendor = os.environ.get("BENCH_DB", "postgres")
    if vendor == "sqlite":
        os.makedirs(os.path.dirname(db["NAME"]), exist_ok=True)
    elif vendor == "postgres":
        import psycopg

        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
                conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    elif vendor == "mysql":
        import pymysql

        conn = pymysql.connect(
            host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"]
        )
        try:
            with conn.cursor() as cursor:
                charset = "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{db['NAME']}` {charset}")
        finally:
            conn.close()


def server_version() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
        cursor.execute("SELECT VERSION()")
        return f"MySQL/MariaDB {cursor.fetchone()[0]}"


TABLES = ("published", "received", "benchapp_decorated", "benchapp_plain", "dop_ordering_key")


def truncate() -> None:
    with connection.cursor() as cursor:
        for table in TABLES:
            name = connection.ops.quote_name(table)
            if connection.vendor == "sqlite":
                cursor.execute(f"DELETE FROM {name}")
            else:
                cursor.execute(f"TRUNCATE TABLE {name}")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")


def analyze() -> None:
    """Fresh planner statistics after a bulk load (what autovacuum would do on a live system)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE published")
        elif connection.vendor == "mysql":
            cursor.execute("ANALYZE TABLE published")
            cursor.fetchall()
        else:
            cursor.execute("ANALYZE")


def load(
    destination: str,
    rows: int,
    body_bytes: int = 200,
    *,
    clone_above: int | None = None,
    keys: int = 0,
) -> dict[str, Any]:
    """Empty the outbox, then bulk-insert ``rows`` rows of ~``body_bytes`` JSON through ``bulk_create``.

    ``clone_above`` (PostgreSQL only): insert that many rows through the ORM, then copy them server-side
    with fresh ids (and ``dop-msg-id``) up to ``rows``: the memory scenario's 200,000-row backlog loads in
    seconds instead of a minute, and the relay cannot tell the difference.

    ``keys`` (> 0): row ``i`` gets the ordering key ``key-<i % keys>``, so the keys' rows are interleaved
    (numbered by ``bulk_create`` in the loading transaction, as a writer's would be). Not with
    ``clone_above``.
    """
    from bench import broker
    from django_outbox_pattern.models import Published

    if keys and clone_above is not None:
        raise ValueError("keyed rows cannot be cloned: their ordering_seq would repeat")
    truncate()
    through_orm = rows if clone_above is None or connection.vendor != "postgresql" else min(rows, clone_above)
    for start in range(0, through_orm, LOAD_BATCH):
        batch = [
            Published(
                destination=destination,
                body=broker.make_body(seq, body_bytes),
                ordering_key=f"key-{seq % keys}" if keys else None,
            )
            for seq in range(start, min(through_orm, start + LOAD_BATCH))
        ]
        Published.objects.bulk_create(batch)
    if rows > through_orm:
        _clone(rows - through_orm, copies=-(-rows // through_orm))
    analyze()
    connection.close()
    return {"rows": Published.objects.count()}


def _clone(count: int, *, copies: int) -> None:
    from django_outbox_pattern.models import Published

    quote = connection.ops.quote_name
    columns, values = [], []
    for field in Published._meta.concrete_fields:
        column = str(field.column)
        columns.append(quote(column))
        if column == "id":
            values.append("q.bench_new_id")
        elif column == "headers":
            values.append(
                "q.headers || jsonb_build_object('dop-msg-id', q.bench_new_id::text, "
                "'dop-correlation-id', q.bench_new_id::text)"
            )
        else:
            values.append(f"q.{quote(column)}")
    table = quote(Published._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM "
            f"(SELECT gen_random_uuid() AS bench_new_id, p.* FROM {table} p "
            f"CROSS JOIN generate_series(1, %s) LIMIT %s) q",
            [copies, count],
        )


def status_counts() -> dict[str, int]:
    """Outbox rows per status name."""
    from django.db.models import Count

    from django_outbox_pattern.models import Published, StatusChoice

    counts = {label.lower(): 0 for label in StatusChoice.labels}
    for row in Published.objects.values("status").annotate(n=Count("id")):
        counts[StatusChoice(row["status"]).label.lower()] = row["n"]
    return counts


def held_by(pid: int) -> list[str]:
    """Ids of the rows a relay process holds a lease on (its relay id is ``<host>:<pid>:<hex>``)."""
    from django_outbox_pattern.models import Published, StatusChoice

    rows = Published.objects.filter(status=StatusChoice.SCHEDULE, locked_by__contains=f":{pid}:")
    return [str(row_id) for row_id in rows.values_list("id", flat=True)]


def published_among(ids: list[str]) -> int:
    from django_outbox_pattern.models import Published, StatusChoice

    return Published.objects.filter(id__in=ids, status=StatusChoice.SUCCEEDED).count()


def wal_snapshot() -> dict[str, Any]:
    """PostgreSQL: the WAL position and the outbox table's write counters, to compare after a run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_current_wal_lsn()::text, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'published'"
        )
        lsn, updated, hot = cursor.fetchone()
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        (commits,) = cursor.fetchone()
    return {"lsn": lsn, "updated": updated, "hot": hot, "commits": commits}


def wal_per_message(before: dict[str, Any], messages: int) -> dict[str, float]:
    """WAL bytes, row rewrites (and how many were HOT) and commits per message since ``before``.

    The statistics collector reports with a delay; a forced flush (PostgreSQL 15+) or a short wait
    makes the counters current.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int")
        if cursor.fetchone()[0] >= 150000:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
    after = wal_snapshot()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", [after["lsn"], before["lsn"]])
        (wal,) = cursor.fetchone()
    return {
        "wal_bytes": float(wal) / messages,
        "row_updates": (after["updated"] - before["updated"]) / messages,
        "hot_updates": (after["hot"] - before["hot"]) / messages,
        "commits": (after["commits"] - before["commits"]) / messages,
    }
