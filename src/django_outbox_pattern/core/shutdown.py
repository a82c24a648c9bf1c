"""Graceful shutdown for the long-running loops (relay, consumer), shared by manage.py and outboxctl.

First SIGTERM/SIGINT/SIGQUIT: call ``stop()`` so the loop finishes its current work and returns. Second
signal: exit at once with status 130. Handlers are installed only on the main thread and restored on exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

INTERRUPTED_EXIT_CODE = 130
# SIGQUIT too, as 3.x's subscribe command (not on Windows, which has none).
_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGQUIT", None)) if s is not None
)


@contextlib.contextmanager
def on_stop(stop: Callable[[], None]) -> Iterator[None]:
    """Within this block the first signal calls ``stop`` and the second exits the process (130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            logger.info(
                "Received %s: finishing current work, send it again to exit at once",
                signal.Signals(signum).name,
                extra={"action": "shutdown_requested"},
            )
            stop()
        else:
            logger.warning("Second signal: exiting now", extra={"action": "shutdown_forced"})
            os._exit(INTERRUPTED_EXIT_CODE)

    previous: dict[signal.Signals, Any] = {}
    for sig in _SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
