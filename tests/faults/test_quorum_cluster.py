"""Quorum queues on the three-node cluster: what ``x-queue-type: quorum`` in DEFAULT_STOMP_QUEUE_HEADERS
declares, where NACKed messages go, and what ``outboxctl check`` reports about the nodes and the queues."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from django_outbox_pattern import conf
from django_outbox_pattern.ops import cluster as cluster_checks
from tests.support.fault_cluster import CONSUMER_READY, Cluster
from tests.support.rabbit_cluster import POLICY, RabbitCluster
from tests.support.runner import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.cluster]

QUORUM = {"durable": "true", "auto-delete": "false", "prefetch-count": "1", "x-queue-type": "quorum"}
MESSAGES = 20


def test_quorum_queue_and_its_dead_letter_queue_span_the_cluster(
    rabbit_three: RabbitCluster, make_cluster: Callable[..., Cluster]
) -> None:
    hosts = ",".join(f"{host}:{port}" for host, port in rabbit_three.stomp_hosts)
    cluster = make_cluster(
        rabbit_three.nodes[1].stomp_port,
        env={"OUTBOX_STOMP_HOSTS": hosts},
        settings={"DEFAULT_STOMP_QUEUE_HEADERS": QUORUM},
    )
    args = ["-m", "django", "subscribe", "tests.support.callbacks.nack", cluster.topic, cluster.queue]
    nacker = cluster._proc("nacker", args).start()
    cluster.consumers.append(nacker)
    assert nacker.wait_for_log(CONSUMER_READY, timeout=60), nacker.log()
    cluster.start_relays(1)
    cluster.write(MESSAGES)
    dlq = f"DLQ.{cluster.queue}"
    node = rabbit_three.nodes[0]
    assert wait_until(lambda: node.queue_depth(dlq) == MESSAGES, timeout=60, interval=0.5), nacker.log()
    assert cluster.wait_for_books(MESSAGES, timeout=30).statuses.get(2) == MESSAGES  # all published
    codes = cluster.stop_all()
    assert all(code == 0 for code in codes.values()), codes

    main, dead = rabbit_three.queue_info(cluster.queue), rabbit_three.queue_info(dlq)
    assert main["type"] == dead["type"] == "quorum"
    for info in (main, dead):  # replicated on every node, dead-lettering at least once (the policy)
        assert all(n.name in info["members"] for n in rabbit_three.nodes), info
        assert info["policy"] == POLICY, info
    assert node.queue_depth(cluster.queue) == 0


def test_outboxctl_check_reports_every_node_and_the_queue_type(rabbit_three: RabbitCluster) -> None:
    settings = conf.OutboxSettings.from_mapping(
        {"DEFAULT_STOMP_HOST_AND_PORTS": rabbit_three.stomp_hosts, "DEFAULT_STOMP_QUEUE_HEADERS": QUORUM}
    )
    nodes = cluster_checks.check_nodes(settings)
    assert [r.status for r in nodes] == ["pass"] * 3, nodes
    assert sum("same cluster as" in r.detail for r in nodes) == 2, nodes
    assert sum("would try it first" in r.detail for r in nodes) == 1, nodes

    queue = f"q{uuid.uuid4().hex[:10]}"
    missing = cluster_checks.queue_type(settings, queue)
    assert (missing.status, missing.detail) == (
        "pass",
        "does not exist (a consumer declares it when it starts)",
    )
    assert rabbit_three.queue_info(queue) == {}  # the probe declared nothing

    from django_outbox_pattern.broker import transport, wire
    from django_outbox_pattern.consuming import queues

    conn = transport.StompTransport(settings)
    conn.connect()
    try:  # declared as the consumer declares it
        receipt = wire.new_receipt_id()
        headers = {**queues.subscribe_headers(settings, queue), "receipt": receipt}
        conn.subscribe(f"/topic/{queue}", "s", headers, ack="client-individual")
        assert conn.wait_for_receipts([receipt], 10) == {receipt}
    finally:
        conn.disconnect()
    found = cluster_checks.queue_type(settings, queue)
    assert (found.status, found.detail) == ("pass", "quorum queue")
    classic = conf.OutboxSettings.from_mapping({"DEFAULT_STOMP_HOST_AND_PORTS": rabbit_three.stomp_hosts})
    mismatch = cluster_checks.queue_type(classic, queue)
    assert mismatch.detail.startswith("quorum queue (DEFAULT_STOMP_QUEUE_HEADERS asks for classic"), mismatch
    assert rabbit_three.queue_info(queue)["type"] == "quorum"
