"""Crash recovery: the rows a SIGKILLed relay held are sent by the relay that is still running, within
seconds (heartbeats, relaying/liveness.py), not when their 120 s lease ends."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from tests.support.fault_cluster import RELAY_READY, Cluster, settle
from tests.support.faultdb import Books
from tests.support.rabbit_node import RabbitNode
from tests.support.runner import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KILLS = 5


def test_rows_of_a_killed_relay_are_sent_again_by_the_live_one_within_seconds(
    private_node: RabbitNode,
    make_cluster: Callable[..., Cluster],
    report: Callable[[int, Books], None],
    request: pytest.FixtureRequest,
) -> None:
    # The default lease (120 s): only the heartbeat can bring the rows back this early.
    cluster = make_cluster(
        private_node.stomp_port, env={"OUTBOX_RELAY_LEASE": "120", "OUTBOX_CHUNK_SIZE": "50"}
    )
    cluster.start_consumers(1)
    survivor = cluster.add_relay().start()
    victim = cluster.add_relay()
    delays: list[float] = []
    for _ in range(KILLS):
        victim.start()  # connected before the backlog comes, so both relays compete for it
        assert victim.wait_for_log(RELAY_READY, timeout=60), victim.log()
        cluster.write(3000, wait=False)
        assert wait_until(lambda: bool(cluster.db.held_by_pid(victim.pid)), timeout=60, interval=0.002), (
            victim.log()
        )
        victim.kill()
        killed_at = time.monotonic()
        held = cluster.db.held_by_pid(victim.pid)  # what it held when it died (still leased to it)
        assert held, "the relay released its rows before the kill landed"
        assert wait_until(
            lambda held=held: cluster.db.published_among(held) == len(held), timeout=150, interval=0.02
        ), survivor.log()
        delays.append(time.monotonic() - killed_at)
    books = settle(cluster, private_node)
    line = (
        f"crash recovery: {KILLS} relays killed holding rows; held rows sent again after "
        f"median {statistics.median(delays):.2f} s, max {max(delays):.2f} s (lease 120 s)"
    )
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)
    assert all(delay < 60 for delay in delays), line  # far below the lease: the heartbeat did it
    report(KILLS, books)
