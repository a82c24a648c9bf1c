"""Run a consumer in a thread for a test, and wait on conditions without fixed sleeps."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def running(
    consumer: Any, *, ready_timeout: float | None = 10.0, join_timeout: float = 15.0
) -> Iterator[threading.Thread]:
    """Run ``consumer.run()`` in a thread for the block; stop it and check it returned at the end."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-consumer", daemon=True)
    thread.start()
    try:
        if ready_timeout is not None:
            assert consumer.wait_ready(ready_timeout), "consumer did not subscribe in time"
        yield thread
    finally:
        consumer.stop()
        thread.join(join_timeout)
    assert not thread.is_alive(), "consumer.run() did not return after stop()"
    assert not errors, f"consumer.run() raised {errors[0]!r}"
