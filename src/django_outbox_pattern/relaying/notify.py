"""PostgreSQL LISTEN/NOTIFY wake-up for the relay (DEFAULT_RELAY_NOTIFY).

DEFAULT_RELAY_NOTIFY = None (the default) turns it on where it works: the outbox database is PostgreSQL
and Django talks to it through psycopg 3 (``available()``), which the listener needs; True asks for it
(with a warning where it cannot work), False turns it off. Its cost is one NOTIFY statement when a
transaction that inserted outbox rows commits (one per transaction, however many rows).

NOTIFY only wakes the relay early; polling every DEFAULT_PRODUCER_WAITING_TIME stays the source of truth,
so a lost notification costs at most one poll interval and never a row.

Write side: ``rows_inserted()`` is called (through wiring.py) whenever outbox rows are inserted. Inside a
transaction it registers one ``on_commit`` callback per transaction (however many rows are inserted), so
the relay wakes only once the rows are visible; in autocommit it notifies at once.

Read side: ``PostgresListener`` runs a side thread with its own psycopg connection (not Django's), which
only sets the relay's wake-up Event. It probes the connection with ``SELECT 1`` when idle and reconnects
with backoff on ``OperationalError``; any other error stops the relay (a dead side thread must not go
unnoticed). It waits on the connection's socket and on a wake-up socket of its own together, so ``stop()``
returns at once instead of after the rest of an idle wait (up to IDLE_PROBE_S, paid by every
``publish --until-empty``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connections, transaction

from django_outbox_pattern.core import backoff

logger = logging.getLogger(__name__)

CHANNEL = "django_outbox_pattern"
IDLE_PROBE_S = 1.0  # how long one wait for notifications lasts before the probe (and the stop check)
RECONNECT_CAP_S = 30.0


def rows_inserted(using: str | None = None) -> None:
    """Ask for one NOTIFY after the current transaction commits (PostgreSQL).

    Called through ``wiring.rows_inserted()``, which calls it only while DEFAULT_RELAY_NOTIFY is not False.
    """
    alias = using or "default"
    conn = connections[alias]
    if not available(alias):
        return
    callback = _callback_for(alias)
    if conn.in_atomic_block and any(entry[1] is callback for entry in conn.run_on_commit):
        return  # this transaction already notifies once at commit
    transaction.on_commit(callback, using=alias)


@functools.cache
def _callback_for(alias: str) -> Callable[[], None]:
    return functools.partial(_notify, alias)


def _notify(alias: str) -> None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    except DatabaseError as exc:  # the rows are committed; the relay's poll will find them
        logger.warning("NOTIFY failed: %s", exc, extra={"action": "relay_notify_failed"})


class PostgresListener:
    """LISTEN on a dedicated connection and set the relay's wake-up Event on every notification."""

    def __init__(self, connection_params: dict[str, Any]) -> None:
        self._params = connection_params
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waker: _Waker | None = None
        self.listening = threading.Event()  # set while LISTEN is active (tests and health checks wait on it)
        self.notifications = 0

    def start(self, wakeup: threading.Event, on_failure: Callable[[BaseException], None]) -> None:
        self._stop.clear()
        self._waker = _Waker()
        self._thread = threading.Thread(
            target=self._run, args=(wakeup, on_failure, self._waker), name="outbox-relay-listen", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; returns once the thread closed its connection (it does not finish its wait)."""
        self._stop.set()
        if self._waker is not None:
            self._waker.wake()
        if self._thread is not None:
            self._thread.join(timeout=IDLE_PROBE_S * 3)

    def _run(
        self, wakeup: threading.Event, on_failure: Callable[[BaseException], None], waker: _Waker
    ) -> None:
        import psycopg

        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    self._listen(wakeup, waker)
                except psycopg.OperationalError as exc:
                    failures += 1
                    delay = backoff.compute_backoff(failures, base=0.5, cap=RECONNECT_CAP_S)
                    logger.warning(
                        "LISTEN connection failed, reconnecting in %.1fs: %s",
                        delay,
                        exc,
                        extra={"action": "relay_listen_failed", "attempt": failures},
                    )
                    self._stop.wait(delay)
                except BaseException as exc:
                    on_failure(exc)
                    return
                else:
                    return
        finally:
            waker.close()

    def _listen(self, wakeup: threading.Event, waker: _Waker) -> None:
        import psycopg

        with psycopg.connect(**self._params, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            logger.debug("Listening on %s", CHANNEL, extra={"action": "relay_listen_started"})
            self.listening.set()
            wakeup.set()  # rows may have been committed while we were not listening
            try:
                with selectors.DefaultSelector() as selector:
                    selector.register(conn.fileno(), selectors.EVENT_READ)
                    selector.register(waker.fileno(), selectors.EVENT_READ)
                    while not self._stop.is_set():
                        if not selector.select(IDLE_PROBE_S):
                            # Idle: probe the connection; notifications arriving meanwhile wait in
                            # psycopg's backlog, which the next _deliver() empties.
                            conn.execute("SELECT 1")
                        if self._stop.is_set():
                            return
                        self._deliver(conn, wakeup)
            finally:
                self.listening.clear()

    def _deliver(self, conn: Any, wakeup: threading.Event) -> None:
        """Read what the server sent (without waiting) and wake the relay if it held a notification."""
        for _ in conn.notifies(timeout=0):
            self.notifications += 1
            wakeup.set()


class _Waker:
    """A socket pair: ``wake()`` makes ``fileno()`` readable, cutting the listener's wait short."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def fileno(self) -> int:
        return self._read.fileno()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # already woken (buffer full) or closed: it is stopping anyway
            self._write.send(b"\0")

    def close(self) -> None:
        self._read.close()
        self._write.close()


def available(alias: str) -> bool:
    """True when the database ``alias`` is PostgreSQL through psycopg 3 (what the listener needs)."""
    conn = connections[alias]
    driver = getattr(conn, "Database", None)  # the DB-API module the backend uses
    return conn.vendor == "postgresql" and getattr(driver, "__name__", "") == "psycopg"


def build_listener(alias: str) -> PostgresListener | None:
    """A listener for the database ``alias``, or None (with a warning) when it is not PostgreSQL."""
    conn = connections[alias]
    if conn.vendor != "postgresql":
        logger.warning(
            "DEFAULT_RELAY_NOTIFY needs PostgreSQL (database %r is %s): the relay polls only",
            alias,
            conn.vendor,
            extra={"action": "relay_notify_unavailable"},
        )
        return None
    params = dict(conn.get_connection_params())
    params.pop("cursor_factory", None)
    return PostgresListener(params)
