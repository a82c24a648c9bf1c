"""Relays and consumers SIGKILLed in the middle of their work, again and again, while two of each run."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.support.fault_cluster import Cluster, settle, wait_then
from tests.support.faultdb import Books
from tests.support.rabbit_node import RabbitNode
from tests.support.runner import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

Report = Callable[[int, Books], None]

RELAY_KILLS = 24
CONSUMER_KILLS = 16


def test_relays_sigkilled_mid_batch_again_and_again(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], report: Report
) -> None:
    cluster = make_cluster(
        private_node.stomp_port,
        env={"OUTBOX_CHUNK_SIZE": "20", "OUTBOX_RELAY_LEASE": "3", "OUTBOX_RECEIPT_TIMEOUT": "1"},
    )
    cluster.write(1200)
    cluster.start_consumers(2)
    relays = [cluster.add_relay(), cluster.add_relay()]
    rng = random.Random(7)
    mid_batch = 0
    while sum(relay.kills for relay in relays) < RELAY_KILLS:
        if cluster.db.due() < 300:
            cluster.write(500)  # keep a backlog, so that every kill lands while batches are moving
        for relay in relays:
            relay.start()
        waiting = list(relays)
        while waiting:  # kill each relay as soon as it holds a lease, whichever comes first
            assert wait_until(
                lambda waiting=waiting: any(cluster.db.leased_by_pid(r.pid) or not r.alive for r in waiting),
                timeout=30,
            ), [r.log() for r in waiting]
            relay = next(r for r in waiting if cluster.db.leased_by_pid(r.pid) or not r.alive)
            assert relay.alive, relay.log()
            wait_then(rng.uniform(0, 0.05))  # land the kill at a different point of the batch each time
            relay.kill()
            mid_batch += cluster.db.leased_by_pid(relay.pid) > 0  # its lease is left behind: mid-batch
            waiting.remove(relay)
    assert mid_batch >= 20, f"only {mid_batch} of {RELAY_KILLS} kills landed while a batch was leased"
    cluster.start_relays(2)  # two fresh relays send the rest, and the dead relays' rows once leases end
    books = settle(cluster, private_node)
    report(sum(relay.kills for relay in relays), books)


def test_consumers_sigkilled_mid_callback_again_and_again(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], report: Report
) -> None:
    cluster = make_cluster(private_node.stomp_port, env={"OUTBOX_FAULT_WORK_S": "0.005"})
    cluster.write(600)
    consumers = cluster.start_consumers(2)
    cluster.start_relays(2)
    rng = random.Random(11)
    mid_callback = 0
    for kill in range(CONSUMER_KILLS):
        consumer = consumers[kill % 2]
        if cluster.db.books().rows - cluster.db.effects() < 100:
            cluster.write(300, wait=False)  # keep messages coming, so that every kill lands in a callback
        if not consumer.alive:
            consumer.start()
        assert consumer.wait_for_log("django_outbox_pattern.consuming.consumer: Consuming", timeout=60), (
            consumer.log()
        )
        wait_then(rng.uniform(0.1, 0.5))  # let it process a few messages first
        inside = wait_until(
            lambda consumer=consumer: cluster.db.in_transaction(consumer.app_name), timeout=30, interval=0.002
        )
        consumer.kill()
        mid_callback += inside
        consumer.start()  # restart at once; the other consumer keeps going meanwhile
    assert mid_callback >= CONSUMER_KILLS - 2, f"only {mid_callback} kills landed inside a callback"
    books = settle(cluster, private_node)
    report(sum(consumer.kills for consumer in consumers), books)
