"""The services fail under two relays and two consumers: RabbitMQ restarts, the network to it stalls, the
database connections are cut. Each test checks the books afterwards."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.support.fault_cluster import CONSUMER_READY, RELAY_READY, Cluster, settle, wait_then
from tests.support.faultdb import Books
from tests.support.rabbit_node import RabbitNode
from tests.support.runner import wait_until
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.broker, pytest.mark.slow]

Report = Callable[[int, Books], None]

STALLS = 3
DB_CUTS = 20
HEARTBEAT_TIMEOUT = "Broker heartbeat timed out"  # transport.py's listener logs this


def progress(cluster: Cluster, more: int = 100, timeout: float = 90) -> None:
    """Wait until ``more`` messages beyond the current count had their effect (the pipeline flows)."""
    target = cluster.db.effects() + more
    assert cluster.wait_for_effects(target, timeout=timeout), (cluster.db.books(), cluster.log_text()[-3000:])


def test_rabbitmq_restarted_while_relays_and_consumers_run(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], report: Report
) -> None:
    cluster = make_cluster(private_node.stomp_port)
    cluster.start_consumers(2)
    cluster.start_relays(2)
    cluster.write(1200, rate=60, wait=False)  # rows keep coming while the broker is away
    progress(cluster)
    private_node.stop_app()
    wait_then(1)
    private_node.start_app()
    progress(cluster)
    private_node.restart()  # the whole node: every connection drops, persistent messages stay
    progress(cluster)
    books = settle(cluster, private_node)
    for proc in cluster.relays:  # connected at start, after start_app and after the restart
        assert proc.logs().count(RELAY_READY) >= 3, proc.logs()[-2000:]
    for proc in cluster.consumers:
        assert proc.logs().count(CONSUMER_READY) >= 3, proc.logs()[-2000:]
    report(2, books)


def test_a_stalled_network_is_detected_by_heartbeats_and_both_sides_reconnect(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], report: Report
) -> None:
    with TcpProxy(("127.0.0.1", private_node.stomp_port)) as proxy:
        cluster = make_cluster(proxy.port, env={"OUTBOX_HEARTBEAT_MS": "1000"})
        cluster.start_consumers(2)
        cluster.start_relays(2)
        cluster.write(900, rate=60, wait=False)
        sides = [*cluster.relays, *cluster.consumers]
        for _ in range(STALLS):
            progress(cluster)
            seen = {proc.name: proc.logs().count(HEARTBEAT_TIMEOUT) for proc in sides}
            proxy.stall(True)  # sockets stay open, nothing flows: only heartbeats can tell
            noticed = wait_until(
                lambda seen=seen: all(
                    proc.logs().count(HEARTBEAT_TIMEOUT) > seen[proc.name] for proc in sides
                ),
                timeout=20,
                interval=0.1,
            )
            proxy.stall(False)
            assert noticed, {proc.name: proc.logs()[-1500:] for proc in sides}
        books = settle(cluster, private_node)
    for proc in cluster.relays:
        assert proc.logs().count(RELAY_READY) > STALLS, proc.logs()[-2000:]
    for proc in cluster.consumers:
        assert proc.logs().count(CONSUMER_READY) > STALLS, proc.logs()[-2000:]
    report(STALLS, books)


def test_database_connections_cut_under_relays_and_consumers(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], report: Report
) -> None:
    cluster = make_cluster(private_node.stomp_port, env={"OUTBOX_FAULT_WORK_S": "0.005"})
    consumers = cluster.start_consumers(2)
    cluster.start_relays(2)
    cluster.write(1200, rate=60, wait=False)  # the writer's own connection is never cut
    progress(cluster, 50)
    db, rng = cluster.db, random.Random(3)
    cuts = 0
    for index in range(DB_CUTS):
        wait_then(rng.uniform(0.2, 0.6))
        if index % 3 == 2:  # a consumer in the middle of its callback's transaction
            wait_until(
                lambda: any(db.in_transaction(c.app_name) for c in consumers), timeout=10, interval=0.002
            )
            cut = db.terminate("faults-cons-", idle_in_transaction=True)
        else:
            cut = db.terminate("faults-relay-" if index % 3 == 0 else "faults-cons-")
        cuts += cut > 0
    assert cuts >= DB_CUTS - 2, f"only {cuts} cuts found a session to terminate"
    assert all(proc.alive for proc in [*cluster.relays, *cluster.consumers]), "a process died of a cut"
    books = settle(cluster, private_node)
    report(cuts, books)
