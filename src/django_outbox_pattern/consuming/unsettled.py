"""Which messages the consumer received and has not settled yet, and since when (thread-safe).

The receiver thread adds each message as it hands it off; the worker removes it when it is settled (or
dropped because its connection is gone). The supervisor asks for the oldest one's age: a message that stays
unsettled for long means a stuck callback or a stalled queue, which a health probe should report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django_outbox_pattern.broker import wire


class Unsettled:
    """Received-and-not-settled messages keyed by their ack id, with the time each arrived."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}  # insertion order is arrival order
        self._reported: str | None = None  # the stalled message already logged

    def add(self, message: wire.Message) -> None:
        with self._lock:
            self._since.setdefault(message.ack_id, self._clock())

    def remove(self, message: wire.Message) -> None:
        with self._lock:
            self._since.pop(message.ack_id, None)

    def clear(self) -> None:
        with self._lock:
            self._since.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._since)

    def oldest(self) -> tuple[str, float] | None:
        """(ack id, age in seconds) of the oldest unsettled message, or None."""
        with self._lock:
            for ack_id, since in self._since.items():
                return ack_id, max(0.0, self._clock() - since)
        return None

    def oldest_age(self) -> float:
        """Age of the oldest unsettled message in seconds; 0 when every message is settled."""
        oldest = self.oldest()
        return 0.0 if oldest is None else oldest[1]

    def newly_stalled(self, threshold_s: float) -> str | None:
        """The ack id of the oldest message when it is older than ``threshold_s`` and was not reported
        before (so a stall is logged once per message), else None."""
        oldest = self.oldest()
        if oldest is None or oldest[1] <= threshold_s or oldest[0] == self._reported:
            return None
        self._reported = oldest[0]
        return oldest[0]
