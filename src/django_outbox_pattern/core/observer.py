"""What the relay and the consumer report while they run: the ``Observer`` protocol and its plain forms.

The engine depends on this module only. Metrics (ops/metrics.py, needs prometheus-client) and the liveness
heartbeat (ops/health.py) are observers; the front-ends assemble the ones a command asked for
(ops/observability.py). Every method is called on the engine's own thread and must return quickly;
``MultiObserver`` shields the engine from an observer that raises, so a broken exporter never stops the
relay or the consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

__all__ = ["OPTIONAL_EVENTS", "MultiObserver", "NullObserver", "Observer", "report", "shielded"]

# Events added after the ``Observer`` protocol was published: optional, so observers written against it
# keep working. Engines send them through ``report()``; observers that lack the method are skipped.
#   consumer_unsettled_age(age_s, threshold_s): the consumer's oldest unsettled message is age_s old (0:
#     none); over threshold_s (DEFAULT_CONSUMER_STALL_THRESHOLD) it counts as stalled
#   destination_unroutable(destination, count, held): ``count`` rows of a destination no queue is bound
#     to were held back (held=True) or sent anyway (DEFAULT_UNROUTABLE_MESSAGES = "send")
OPTIONAL_EVENTS = ("consumer_unsettled_age", "destination_unroutable")


@runtime_checkable
class Observer(Protocol):
    """Events of the relay and the consumer. Counts are rows or messages."""

    def batch_published(
        self, count: int, destination_counts: Mapping[str, int], receipt_latencies_s: Sequence[float]
    ) -> None:
        """The broker confirmed ``count`` messages (per destination), with each RECEIPT's wait in seconds."""

    def send_failed(self, count: int, reason: str) -> None:
        """``count`` messages were sent but not confirmed (each is an attempt counted against the row)."""

    def dead_lettered(self, count: int, reason: str) -> None:
        """``count`` outbox rows became FAILED (attempts exhausted, expired or unsendable)."""

    def retried(self, count: int) -> None:
        """``count`` outbox rows were rescheduled with a backoff."""

    def consumed(self) -> None:
        """The consumer processed a message: saved by the callback (and committed) or acked by it."""

    def duplicate_discarded(self) -> None:
        """The consumer discarded a message already in the inbox (acked without running effects twice)."""

    def consumer_nacked(self) -> None:
        """The consumer nacked a message (the callback asked for it, or raised)."""

    def relay_up(self, up: bool) -> None:
        """The relay is connected to the broker (True) or is not (False)."""

    def consumer_up(self, up: bool) -> None:
        """The consumer is subscribed (True) or is not (False)."""

    def heartbeat(self) -> None:
        """The loop made a pass: proof of liveness (called at least once per poll interval)."""


class NullObserver:
    """Observes nothing: the default of the relay and the consumer."""

    def batch_published(
        self, count: int, destination_counts: Mapping[str, int], receipt_latencies_s: Sequence[float]
    ) -> None:
        pass

    def send_failed(self, count: int, reason: str) -> None:
        pass

    def dead_lettered(self, count: int, reason: str) -> None:
        pass

    def retried(self, count: int) -> None:
        pass

    def consumed(self) -> None:
        pass

    def duplicate_discarded(self) -> None:
        pass

    def consumer_nacked(self) -> None:
        pass

    def relay_up(self, up: bool) -> None:
        pass

    def consumer_up(self, up: bool) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def consumer_unsettled_age(self, age_s: float, threshold_s: float) -> None:
        pass

    def destination_unroutable(self, destination: str, count: int, held: bool) -> None:
        pass


class MultiObserver:
    """Forwards every event to each observer in turn; one that raises is logged and skipped."""

    def __init__(self, *observers: Observer) -> None:
        self.observers: tuple[Observer, ...] = observers

    def _each(self, method: str, *args: object) -> None:
        for observer in self.observers:
            if method in OPTIONAL_EVENTS and not hasattr(observer, method):
                continue
            try:
                getattr(observer, method)(*args)
            except Exception:
                logger.warning(
                    "Observer %r failed in %s",
                    observer,
                    method,
                    exc_info=True,
                    extra={"action": "observer_failed", "observer": type(observer).__name__, "event": method},
                )

    def batch_published(
        self, count: int, destination_counts: Mapping[str, int], receipt_latencies_s: Sequence[float]
    ) -> None:
        self._each("batch_published", count, destination_counts, receipt_latencies_s)

    def send_failed(self, count: int, reason: str) -> None:
        self._each("send_failed", count, reason)

    def dead_lettered(self, count: int, reason: str) -> None:
        self._each("dead_lettered", count, reason)

    def retried(self, count: int) -> None:
        self._each("retried", count)

    def consumed(self) -> None:
        self._each("consumed")

    def duplicate_discarded(self) -> None:
        self._each("duplicate_discarded")

    def consumer_nacked(self) -> None:
        self._each("consumer_nacked")

    def relay_up(self, up: bool) -> None:
        self._each("relay_up", up)

    def consumer_up(self, up: bool) -> None:
        self._each("consumer_up", up)

    def heartbeat(self) -> None:
        self._each("heartbeat")

    def consumer_unsettled_age(self, age_s: float, threshold_s: float) -> None:
        self._each("consumer_unsettled_age", age_s, threshold_s)

    def destination_unroutable(self, destination: str, count: int, held: bool) -> None:
        self._each("destination_unroutable", destination, count, held)


def report(observer: Observer, event: str, *args: object) -> None:
    """Send one of the ``OPTIONAL_EVENTS`` to ``observer`` if it has that method (never raises)."""
    method = getattr(observer, event, None)
    if method is None:
        return
    try:
        method(*args)
    except Exception:
        logger.warning(
            "Observer %r failed in %s",
            observer,
            event,
            exc_info=True,
            extra={"action": "observer_failed", "observer": type(observer).__name__, "event": event},
        )


def shielded(observer: Observer | None) -> Observer:
    """What an engine keeps: a ``NullObserver`` for None, else the observer behind a ``MultiObserver``."""
    if observer is None:
        return NullObserver()
    if type(observer) in (NullObserver, MultiObserver):  # a subclass may raise: shield it
        return observer
    return MultiObserver(observer)
