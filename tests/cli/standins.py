"""Stand-ins for the relay and consumer engines (``django_outbox_pattern.relaying.relay`` / ``.consumer``).

They keep outboxctl's wiring tests fast and independent of the broker. They follow the engines' API
(``build_relay(settings, *, chunk_size, poll_interval, notify) -> Relay`` with
``run(until_empty, once, on_batch)`` and ``stop()``;
``build_consumer(callback, destination, queue_name, *, settings) -> Consumer`` with ``run()``,
``stop()``, ``stats``) and replace only ``build_relay`` / ``build_consumer``, so these tests check
outboxctl's wiring (flags, signals, output, exit codes). The real engines run in the subprocess tests
of test_publish.py / test_subscribe.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest


@dataclasses.dataclass(frozen=True)
class StandInBatch:
    """STAND-IN for ``batches.BatchResult``."""

    published: int
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    elapsed: float = 0.01


class StandInRelay:
    """STAND-IN for ``relay.Relay``: replays ``batches`` through ``on_batch``; raises ``error`` if given."""

    def __init__(self, batches: list[StandInBatch], error: BaseException | None, sigterm_self: bool) -> None:
        self.batches, self.error, self.sigterm_self = list(batches), error, sigterm_self
        self.calls: list[str] = []
        self.stopped = threading.Event()

    def run(
        self, *, until_empty: bool = False, once: bool = False, on_batch: Callable[[Any], None] | None = None
    ) -> None:
        self.calls.append(f"run(until_empty={until_empty}, once={once})")
        if self.error is not None:
            raise self.error
        for batch in self.batches[:1] if once else self.batches:
            if self.stopped.is_set():
                break
            if on_batch is not None:
                on_batch(batch)
        if until_empty or once:
            return
        if self.sigterm_self:
            os.kill(os.getpid(), signal.SIGTERM)  # outboxctl's shutdown.on_stop must turn this into stop()
        assert self.stopped.wait(10), "stop() was not called"

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopped.set()


class StandInConsumer:
    """STAND-IN for ``consumer.Consumer``."""

    def __init__(self, error: BaseException | None, sigterm_self: bool) -> None:
        self.error, self.sigterm_self = error, sigterm_self
        self.stopped = threading.Event()
        self.stats = {"processed": 3, "duplicates": 1, "nacked": 0, "errors": 0, "reconnects": 0}

    def run(self) -> None:
        if self.error is not None:
            raise self.error
        if self.sigterm_self:
            os.kill(os.getpid(), signal.SIGTERM)
        assert self.stopped.wait(10), "stop() was not called"

    def stop(self) -> None:
        self.stopped.set()


@dataclasses.dataclass
class Engine:
    """What a test configures, and what outboxctl passed to the factory."""

    batches: list[StandInBatch] = dataclasses.field(default_factory=list)
    error: BaseException | None = None
    sigterm_self: bool = False
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    built: Any = None


def _install(monkeypatch: pytest.MonkeyPatch, module_name: str, factory_name: str, factory: Any) -> None:
    module = importlib.import_module(f"django_outbox_pattern.{module_name}")
    monkeypatch.setattr(module, factory_name, factory)


@pytest.fixture
def relay_standin(monkeypatch: pytest.MonkeyPatch) -> Engine:
    engine = Engine()

    def build_relay(*args: Any, **kwargs: Any) -> StandInRelay:
        engine.args, engine.kwargs = args, kwargs
        engine.built = StandInRelay(engine.batches, engine.error, engine.sigterm_self)
        return engine.built

    _install(monkeypatch, "relaying.assembly", "build_relay", build_relay)
    return engine


@pytest.fixture
def consumer_standin(monkeypatch: pytest.MonkeyPatch) -> Engine:
    engine = Engine()

    def build_consumer(*args: Any, **kwargs: Any) -> StandInConsumer:
        engine.args, engine.kwargs = args, kwargs
        engine.built = StandInConsumer(engine.error, engine.sigterm_self)
        return engine.built

    _install(monkeypatch, "consuming.assembly", "build_consumer", build_consumer)
    return engine
