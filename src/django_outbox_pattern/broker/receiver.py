"""What stomp.py's receiver thread does with a connection's frames (no stomp.py import here).

``Listener`` is the stomp.py listener: it records CONNECTED, RECEIPT, ERROR and the disconnect on a
``Tracker``, which the caller's thread waits on, and hands MESSAGE frames to the message handler. It never
blocks and never reconnects: the relay's and the consumer's supervisors own reconnecting.
``mask_stomp_logs()`` hides the passcode in stomp.py's own DEBUG records.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from django_outbox_pattern.broker.wire import Message, MessageHandler

logger = logging.getLogger(__name__)


class Tracker:
    """State shared between the receiver thread (writes) and the caller's thread (waits)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.receipts: set[str] = set()
        self.connected = False
        self.closed = False
        self.closing = False  # we closed it on purpose: its on_disconnected is no news
        self.error: str | None = None
        self.error_receipt: str | None = None
        self.handler: MessageHandler | None = None
        self.server: str = ""
        self.heartbeat: str = ""

    def reset(self) -> None:
        with self.cond:
            self.receipts.clear()
            self.connected = self.closed = self.closing = False
            self.error = self.error_receipt = None

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True


class Listener:
    """stomp.py listener: records frames on the tracker, never blocks, never reconnects."""

    def __init__(self, tracker: Tracker) -> None:
        self._t = tracker

    def on_connected(self, frame: Any) -> None:
        with self._t.cond:
            self._t.connected = True
            self._t.server = frame.headers.get("server", "")
            self._t.heartbeat = frame.headers.get("heart-beat", "")
            self._t.cond.notify_all()

    def on_receipt(self, frame: Any) -> None:
        with self._t.cond:
            self._t.receipts.add(frame.headers.get("receipt-id", ""))
            self._t.cond.notify_all()

    def on_error(self, frame: Any) -> None:
        message = frame.headers.get("message", "") or "ERROR frame"
        body = frame.body or b""
        detail = (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)).strip()
        detail = " ".join(detail.split())[:300]
        with self._t.cond:
            self._t.error = f"{message}: {detail}" if detail else message
            self._t.error_receipt = frame.headers.get("receipt-id")
            self._t.cond.notify_all()
        logger.warning("Broker sent ERROR: %s", self._t.error, extra={"action": "broker_error_received"})

    def on_disconnected(self) -> None:
        with self._t.cond:
            self._t.connected = False
            self._t.closed = True
            self._t.cond.notify_all()
        if self._t.closing:
            logger.debug("Broker connection closed", extra={"action": "broker_disconnected"})
        else:
            logger.warning("Broker connection lost", extra={"action": "broker_connection_lost"})

    def on_heartbeat_timeout(self) -> None:
        logger.warning("Broker heartbeat timed out", extra={"action": "broker_heartbeat_timed_out"})

    def on_message(self, frame: Any) -> None:
        handler = self._t.handler
        if handler is not None:
            handler(Message.from_frame(frame))


class _MaskPasscodes(logging.Filter):
    """Hides the passcode in stomp.py's own log records.

    stomp.py 9 logs every frame it sends at DEBUG ("sending frame: [b'CONNECT', ..., b'passcode:...']").
    Its own mask only matches "passcode: <value>" with a space, which the frame never has, so the CONNECT
    frame's passcode reaches every DEBUG handler. This filter, on the "stomp.py" logger, rewrites it.
    """

    _PASSCODE = re.compile(r"(passcode:).*?(?=\\n['\"]|\\r\\n|[\r\n]|$)")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is stomp.py's own problem: leave it as it is
            return True
        if "passcode:" in message:
            record.msg, record.args = self._PASSCODE.sub(r"\1********", message), ()
        return True


MASK = _MaskPasscodes()


def mask_stomp_logs() -> None:
    """Install the passcode mask on stomp.py's logger (once)."""
    stomp_logger = logging.getLogger("stomp.py")
    if MASK not in stomp_logger.filters:
        stomp_logger.addFilter(MASK)
