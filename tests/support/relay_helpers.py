"""Helpers for relay tests: fast settings, outbox rows, relays in threads and in subprocesses."""

from __future__ import annotations

import datetime
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, connections
from django.utils import timezone

from django_outbox_pattern import conf
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import assembly, batches, relay, store

ROOT = pathlib.Path(__file__).resolve().parents[2]

FAST = {
    "DEFAULT_RECEIPT_TIMEOUT": 5,
    "DEFAULT_CONNECT_TIMEOUT": 5,
    "DEFAULT_PRODUCER_WAITING_TIME": 0.05,
    "DEFAULT_RETRY_BASE_DELAY": 0,
    "DEFAULT_PAUSE_FOR_RETRY": 0,
    "DEFAULT_WAIT_RETRY": 0,
    "DEFAULT_MAXIMUM_BACKOFF": 0.2,
}


def make_settings(**overrides: Any) -> conf.OutboxSettings:
    """The test project's DJANGO_OUTBOX_PATTERN with short timeouts and no retry delays, plus overrides."""
    base = dict(getattr(django_settings, conf.SETTINGS_NAME, {}))
    return conf.OutboxSettings.from_mapping({**base, **FAST, **overrides})


def make_rows(destination: str, count: int, **fields: Any) -> list[Published]:
    """``count`` outbox rows with body {"n": i}, created in order (one bulk INSERT)."""
    return Published.objects.bulk_create(
        [Published(destination=destination, body={"n": i}, **fields) for i in range(count)], batch_size=1000
    )


def make_relay(
    settings: conf.OutboxSettings, broker_transport: wire.Transport | None = None, **kwargs: Any
) -> relay.Relay:
    return assembly.build_relay(
        settings,
        outbox_store=store.OutboxStore(),
        transport=broker_transport or transport.StompTransport(settings),
        **kwargs,
    )


def statuses() -> dict[int, int]:
    rows = Published.objects.values_list("status", flat=True)
    out = {StatusChoice.SCHEDULE.value: 0, StatusChoice.SUCCEEDED.value: 0, StatusChoice.FAILED.value: 0}
    for status in rows:
        out[status] += 1
    return out


def past(seconds: float = 60) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=seconds)


class RelayThread(threading.Thread):
    """Run a relay in a thread with its own database connection; keep any exception it raised."""

    def __init__(self, engine: relay.Relay, *, until_empty: bool = False) -> None:
        super().__init__(name=f"relay-{engine.relay_id}", daemon=True)
        self.engine = engine
        self.until_empty = until_empty
        self.error: BaseException | None = None
        self.batches: list[batches.BatchResult] = []

    def run(self) -> None:
        try:
            self.engine.run(until_empty=self.until_empty, on_batch=self.batches.append)
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()

    def stop(self, timeout: float = 30) -> None:
        self.engine.stop()
        self.join(timeout)
        assert not self.is_alive(), "the relay did not stop"
        if self.error is not None:
            raise self.error


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for ``python -m django ...`` against the current test database."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        env["OUTBOX_SQLITE_PATH"] = name
    else:
        env["OUTBOX_TEST_DB_NAME"] = name
    env.update(extra)
    return env


def django_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


def wait_until(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until true or the deadline (a bounded wait on a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
