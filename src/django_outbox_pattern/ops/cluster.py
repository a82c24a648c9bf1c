"""``outboxctl check`` on a cluster: every configured node, and the type of a queue.

``check_nodes()`` connects to each host of ``DEFAULT_STOMP_HOST_AND_PORTS`` on its own (reachable, how
fast, which RabbitMQ), proves the reachable nodes form one cluster (a message sent through each node
arrives at a subscription held on the first one: they share exchanges and queues), and says which node
this process would try first (``broker.hosts``: every process starts at its own node). STOMP does not
carry the cluster's name: the detail says so and points at ``rabbitmqctl cluster_status``.

``queue_type()`` asks the broker the type of an existing queue without declaring or consuming anything: it
SUBSCRIBEs to ``/queue/<name>`` with the headers the consumer would declare it with and an
``x-queue-type`` no queue can have. RabbitMQ answers with an ERROR that names the queue's real type
(``inequivalent arg 'x-queue-type' ... current is 'quorum'``), or, for a queue that does not exist,
refuses the unknown type without creating anything. When another argument differs first, the probe adopts
the broker's value and asks again.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import hosts as host_order
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.consuming import queues
from django_outbox_pattern.core import addressing
from django_outbox_pattern.ops.probes import CheckResult

PROBE_TYPE = "outboxctl-probe"  # an x-queue-type no queue has: declaring with it never creates a queue
MAX_PROBES = 6
_INEQUIVALENT = re.compile(
    r"inequivalent arg '([^']+)' for queue '[^']*' in vhost '[^']*': received .+ but current is (.+?)\s*$"
)
_CURRENT = re.compile(r"^(?:the value )?'([^']*)'(?: of type '[^']*')?$")

Factory = Callable[..., wire.Transport]  # (settings, hosts=[(host, port)]) -> Transport


def check_nodes(settings: conf.OutboxSettings, factory: Factory | None = None) -> list[CheckResult]:
    """One result per configured node (none when a single host is configured: the broker check covers it)."""
    configured = list(settings.DEFAULT_STOMP_HOST_AND_PORTS)
    if len(configured) < 2:
        return []
    make = factory or transport.StompTransport
    first = host_order.ORDER.order(configured)[0]
    connected: list[tuple[tuple[str, int], wire.Transport, str, float]] = []
    results: dict[tuple[str, int], CheckResult] = {}
    for host in configured:
        name = f"node {host[0]}:{host[1]}"
        conn = make(settings, hosts=[host])
        start = time.monotonic()
        try:
            conn.connect()
        except exceptions.TransportError as exc:
            results[host] = CheckResult(
                name,
                "fail",
                f"unreachable: {' '.join(str(exc).split())}",
                "The relays and consumers use the other nodes meanwhile; is this node running "
                "with the rabbitmq_stomp plugin?",
                _ms(start),
            )
            continue
        connected.append((host, conn, getattr(conn, "server", "") or "broker", _ms(start)))
    try:
        joined = _same_cluster([conn for _, conn, _, _ in connected], settings.DEFAULT_RECEIPT_TIMEOUT)
        anchor = connected[0][0] if connected else None
        for (host, _, server, ms), same in zip(connected, joined, strict=True):
            role = "; this process would try it first" if host == first else ""
            if host == anchor:
                membership = "cluster name not carried by STOMP (rabbitmqctl cluster_status)"
            elif same:
                membership = f"same cluster as {anchor[0]}:{anchor[1]}" if anchor else ""
            else:
                results[host] = CheckResult(
                    f"node {host[0]}:{host[1]}",
                    "fail",
                    f"reachable ({server}) but a message sent through it did not reach "
                    f"{anchor[0]}:{anchor[1]}"
                    if anchor
                    else "reachable",
                    "Are these nodes of one cluster? `rabbitmqctl cluster_status` on each.",
                    ms,
                )
                continue
            results[host] = CheckResult(
                f"node {host[0]}:{host[1]}",
                "pass",
                f"reachable in {ms:.0f} ms ({server}); {membership}{role}",
                elapsed_ms=ms,
            )
    finally:
        for _, conn, _, _ in connected:
            conn.disconnect()
    return [results[host] for host in configured]


def _same_cluster(conns: Sequence[wire.Transport], timeout: float) -> list[bool]:
    """For each connection, whether a message sent through it reaches a subscription on the first one."""
    if not conns:
        return []
    destination = f"/topic/outboxctl.nodes.{uuid.uuid4().hex}"
    arrived: set[str] = set()
    cond = threading.Condition()

    def received(message: wire.Message) -> None:
        with cond:
            arrived.add(message.body.decode("utf-8", "replace"))
            cond.notify_all()

    anchor = conns[0]
    anchor.set_message_handler(received)
    try:
        receipt = wire.new_receipt_id()
        anchor.subscribe(destination, "outboxctl-nodes", {"receipt": receipt}, ack="auto")
        anchor.wait_for_receipts([receipt], timeout)
        for index, conn in enumerate(conns):
            conn.send(destination, str(index), {"content-type": "text/plain"})
        deadline = time.monotonic() + timeout
        with cond:
            while len(arrived) < len(conns) and time.monotonic() < deadline:
                cond.wait(max(0.0, deadline - time.monotonic()))
    except exceptions.TransportError:
        pass
    finally:
        anchor.set_message_handler(None)
    return [str(index) in arrived for index in range(len(conns))]


def queue_type(settings: conf.OutboxSettings, queue: str, factory: Factory | None = None) -> CheckResult:
    """The type of ``queue`` (classic, quorum, stream), or that it does not exist; declares nothing."""
    name = f"queue {queue}"
    try:
        addressing.validate_queue_name(queue)
    except exceptions.OutboxError as exc:
        return CheckResult(name, "fail", str(exc), "Give the name of the consumer's queue.")
    if queue.startswith(addressing.DEAD_LETTER_PREFIX):
        headers = queues.dead_letter_headers(settings, queue[len(addressing.DEAD_LETTER_PREFIX) :])
    else:
        headers = queues.subscribe_headers(settings, queue)
    headers.pop("prefetch-count", None)
    make = factory or transport.StompTransport
    for _ in range(MAX_PROBES):
        error = _probe(make(settings), queue, {**headers, "x-queue-type": PROBE_TYPE}, settings)
        if error is None:
            return CheckResult(name, "fail", "the broker did not answer the probe", "Run it again.")
        if "unsupported queue type" in error:
            return CheckResult(name, "pass", "does not exist (a consumer declares it when it starts)")
        found = _INEQUIVALENT.search(error)
        if found is None:
            return CheckResult(name, "fail", f"the broker refused the probe: {error}", "")
        arg, current = found.group(1), _current(found.group(2))
        if arg == "x-queue-type":
            kind = current or "classic"
            return CheckResult(name, "pass", f"{kind} queue" + _expected(settings, kind))
        if current is None:
            headers.pop(arg, None)
        else:
            headers[arg] = current
    return CheckResult(name, "fail", "could not tell its type", "Ask `rabbitmqctl list_queues name type`.")


def _probe(
    conn: wire.Transport, queue: str, headers: dict[str, str], settings: conf.OutboxSettings
) -> str | None:
    """SUBSCRIBE with ``headers`` and return the broker's ERROR (None if none came)."""
    try:
        conn.connect()
    except exceptions.TransportError as exc:
        return f"cannot connect: {exc}"
    try:
        receipt = wire.new_receipt_id()
        conn.subscribe(f"/queue/{queue}", "outboxctl-probe", {**headers, "receipt": receipt}, ack="client")
        conn.wait_for_receipts([receipt], settings.DEFAULT_RECEIPT_TIMEOUT)
        deadline = time.monotonic() + 1.0  # RabbitMQ may confirm first, then send the ERROR
        while getattr(conn, "last_error", None) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return getattr(conn, "last_error", None)
    except exceptions.TransportError as exc:
        return getattr(conn, "last_error", None) or str(exc)
    finally:
        conn.disconnect()


def _current(text: str) -> str | None:
    if text.strip() == "none":
        return None
    found = _CURRENT.match(text.strip())
    return found.group(1) if found else text.strip()


def _expected(settings: conf.OutboxSettings, kind: str) -> str:
    wanted = settings.DEFAULT_STOMP_QUEUE_HEADERS.get("x-queue-type", "classic").lower()
    return "" if wanted == kind else f" (DEFAULT_STOMP_QUEUE_HEADERS asks for {wanted}: precondition_failed)"


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
