"""The database connections of two relays, two consumers and a writer are KILLed on MariaDB."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.support.fault_cluster import Cluster, settle, wait_then
from tests.support.faultdb import Books, MariaDatabase
from tests.support.rabbit_node import RabbitNode

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KILLS = 15


def test_mariadb_connections_killed_under_relays_and_consumers(
    private_node: RabbitNode,
    maria_db: MariaDatabase,
    make_cluster: Callable[..., Cluster],
    report: Callable[[int, Books], None],
) -> None:
    cluster = make_cluster(private_node.stomp_port, db=maria_db, env={"OUTBOX_FAULT_WORK_S": "0.005"})
    cluster.start_consumers(2)
    cluster.start_relays(2)
    cluster.write(900, rate=60, wait=False)
    assert cluster.wait_for_effects(50, timeout=60), cluster.log_text()[-3000:]
    rng = random.Random(5)
    cuts = 0
    for _ in range(KILLS):
        wait_then(rng.uniform(0.2, 0.6))
        cuts += maria_db.kill_sessions() > 0  # KILL <id> for every session on the test database
    assert cuts >= KILLS - 2, f"only {cuts} cuts found a session to kill"
    assert all(proc.alive for proc in [*cluster.relays, *cluster.consumers]), "a process died of a cut"
    books = settle(cluster, private_node)
    report(cuts, books)
