"""Crash recovery in seconds: every relay process beats a heartbeat, and frees the rows of dead relays.

A side thread of each relay, with its own database connection, every ``BEAT_S`` seconds:

1. beats: sets its ``RelayProcess.beat_at`` to the database's clock (so clocks of other hosts never matter);
2. reaps: a relay whose beat is older than ``STALE_AFTER_S`` is dead (SIGKILL, lost host, lost database
   connection for good): the rows it leased are due at once, and when there were any, the own relay is
   woken to claim them instead of waiting for its next poll.

A relay that died is noticed within ``STALE_AFTER_S`` + ``BEAT_S`` seconds by any live relay, or by the
next one to start. Rows of a live relay are never released, however long its batch waits for receipts,
as long as its heartbeat thread reaches the database; the lease (DEFAULT_RELAY_LEASE) stays the backstop
for relays that keep no heartbeat (older releases) and for a relay cut off from the database. Database
errors are logged and retried on the next beat; any other error stops the relay (a relay without its
heartbeat would have its rows taken from it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from django.db import connections
from django.utils import timezone

from django_outbox_pattern import exceptions
from django_outbox_pattern.relaying import store

logger = logging.getLogger(__name__)

BEAT_S = 0.5
STALE_AFTER_S = 2.5  # five beats missed
JOIN_TIMEOUT_S = 10.0


class Heartbeat:
    """The heartbeat thread of one relay (``start``/``stop``, like the NOTIFY listener)."""

    def __init__(
        self,
        outbox: store.OutboxStore,
        relay_id: str,
        *,
        beat_s: float = BEAT_S,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.store = outbox
        self.relay_id = relay_id
        self.beat_s = beat_s
        self.stale_after_s = stale_after_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0  # successful beats, for tests and diagnostics

    def start(self, on_released: Callable[[], None], on_failure: Callable[[BaseException], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run,
            args=(on_released, on_failure),
            name=f"outbox-heartbeat-{self.relay_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove this relay's row (a clean stop is not a death)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            self._thread = None

    def beat_once(self, on_released: Callable[[], None]) -> None:
        """One beat and one reap (what the thread does every ``beat_s``)."""
        self.store.beat(self.relay_id, host=socket.gethostname(), pid=os.getpid())
        self.beats += 1
        released = self.store.release_dead(stale_after_s=self.stale_after_s, now=timezone.now())
        for dead, count in released.items():
            logger.warning(
                "Relay %s stopped beating: %d rows it held are due again",
                dead,
                count,
                extra={"action": "relay_dead_rows_released", "relay": dead, "count": count},
            )
        if any(released.values()):
            on_released()

    def _run(self, on_released: Callable[[], None], on_failure: Callable[[BaseException], None]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.beat_once(on_released)
                except exceptions.StorageError as exc:
                    logger.warning(
                        "Relay heartbeat failed, retrying: %s",
                        exc,
                        extra={"action": "relay_heartbeat_failed"},
                    )
                    _drop_unusable_connections()
                self._stop.wait(self.beat_s)
            self.store.forget(self.relay_id)
        except exceptions.StorageError as exc:  # forget() at a clean stop: the row goes stale by itself
            logger.warning(
                "Could not remove the relay's heartbeat: %s", exc, extra={"action": "relay_heartbeat_failed"}
            )
        except BaseException as exc:
            on_failure(exc)
        finally:
            connections.close_all()  # this thread's own connections


def _drop_unusable_connections() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
