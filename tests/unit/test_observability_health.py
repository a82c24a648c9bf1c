"""Liveness heartbeat file and the broker readiness probe (over the in-memory broker)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from django_outbox_pattern import conf, testing
from django_outbox_pattern.ops import health, probes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_heartbeat_is_alive(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    health.write_heartbeat(path, component="relay")
    probe = health.read_heartbeat(path, max_age_s=10)
    assert probe.ok, probe
    assert probe.age_s is not None and probe.age_s < 10
    content = json.loads(path.read_text())
    assert (content["pid"], content["component"]) == (os.getpid(), "relay")


def test_a_stale_heartbeat_is_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    health.write_heartbeat(path, now=time.time() - 120)
    probe = health.read_heartbeat(path, max_age_s=60)
    assert not probe.ok
    assert "over 60s" in probe.detail
    assert probe.age_s is not None and probe.age_s >= 120


def test_a_missing_heartbeat_says_how_to_start_one(tmp_path: Path) -> None:
    probe = health.read_heartbeat(tmp_path / "nothing", max_age_s=60)
    assert not probe.ok
    assert "--health-file" in probe.detail


def test_a_garbled_heartbeat_is_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    path.write_text("{not json")
    probe = health.read_heartbeat(path, max_age_s=60)
    assert not probe.ok
    assert "cannot read" in probe.detail


def test_an_empty_heartbeat_file_falls_back_to_its_modification_time(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    path.touch()  # e.g. written by `touch` in a wrapper script
    assert health.read_heartbeat(path, max_age_s=60).ok
    old = time.time() - 300
    os.utime(path, (old, old))
    assert not health.read_heartbeat(path, max_age_s=60).ok


def test_the_observer_writes_at_most_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    clock = FakeClock()
    observer = health.HeartbeatObserver(path, component="consumer", interval_s=1.0, clock=clock)
    first = json.loads(path.read_text())["time"]
    health.write_heartbeat(path, now=1.0)  # mark the file, to see whether the observer rewrites it
    clock.now += 0.5
    observer.heartbeat()
    assert json.loads(path.read_text())["time"] == 1.0
    clock.now += 0.6
    observer.heartbeat()
    assert json.loads(path.read_text())["time"] >= first
    assert not list(tmp_path.glob(".alive.*"))  # no temporary file left behind


def test_the_observer_logs_a_failing_write_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    clock = FakeClock()
    observer = health.HeartbeatObserver(directory / "alive", clock=clock)
    (directory / "alive").unlink()
    directory.rmdir()
    for _ in range(3):
        clock.now += 2
        observer.heartbeat()
    assert [r.action for r in caplog.records] == ["heartbeat_failed"]  # type: ignore[attr-defined]
    directory.mkdir()
    clock.now += 2
    observer.heartbeat()
    assert health.read_heartbeat(directory / "alive", 5).ok


def test_broker_readiness_follows_the_broker() -> None:
    broker = testing.MemoryBroker()
    probe = probes.broker(conf.OutboxSettings(), lambda s: testing.MemoryTransport(broker))
    assert probe.ok and probe.name == "broker"
    broker.down = True
    probe = probes.broker(conf.OutboxSettings(), lambda s: testing.MemoryTransport(broker))
    assert not probe.ok
    assert "down" in probe.detail
