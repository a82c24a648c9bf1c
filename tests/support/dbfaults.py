"""Break the current thread's database connection for real, as a lost connection would."""

from __future__ import annotations

from django.db import OperationalError, connection


def break_connection() -> None:
    """Kill this thread's database session from inside it; the statement raises OperationalError.

    PostgreSQL terminates its own backend, MariaDB/MySQL kills its own connection. SQLite has no server
    to lose, so the error is raised as Django would wrap it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    elif connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("KILL CONNECTION_ID()")
    raise OperationalError("simulated: the database connection was lost")
