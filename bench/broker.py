"""Raw broker work through the project's ``StompTransport`` (never stomp directly), no database.

Every benchmark queue is declared here with ``x-expires``, so RabbitMQ deletes it by itself once the
bench stops using it; messages are then sent to and read from ``/amq/queue/<name>``, which addresses the
existing queue without redeclaring it. Queues are counted by consuming them (no root, no management API).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone

from django_outbox_pattern import conf
from django_outbox_pattern.broker.transport import StompTransport
from django_outbox_pattern.broker.wire import Message, new_receipt_id

QUEUE_EXPIRES_MS = 120_000  # an unused benchmark queue disappears two minutes after its last use
RECEIPT_TIMEOUT_S = 120.0


def settings() -> conf.OutboxSettings:
    return conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_STOMP_HOST_AND_PORTS": [
                ("127.0.0.1", int(os.environ.get("OUTBOX_STOMP_PORT", "61613")))
            ],
            "DEFAULT_STOMP_USERNAME": os.environ.get("OUTBOX_STOMP_USERNAME", "guest"),
            "DEFAULT_STOMP_PASSCODE": os.environ.get("OUTBOX_STOMP_PASSCODE", "guest"),
        }
    )


def connect() -> StompTransport:
    transport = StompTransport(settings())
    transport.connect()
    return transport


def unique_queue(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:10]}"


def declare_queue(transport: StompTransport, name: str, *, expires_ms: int = QUEUE_EXPIRES_MS) -> str:
    """Create the durable queue ``name`` (deleted by the broker ``expires_ms`` after its last use)."""
    receipt = new_receipt_id()
    headers = {"durable": "true", "auto-delete": "false", "x-expires": str(expires_ms), "receipt": receipt}
    transport.subscribe(f"/queue/{name}", "bench-declare", headers, ack="auto")
    if not transport.wait_for_receipts({receipt}, 30):
        raise RuntimeError(
            f"RabbitMQ did not confirm the declaration of queue {name}: {transport.last_error}"
        )
    transport.unsubscribe("bench-declare")
    return f"/amq/queue/{name}"


def make_body(seq: int, size: int = 200) -> dict[str, object]:
    """A JSON object of about ``size`` bytes once serialised."""
    body: dict[str, object] = {
        "seq": seq,
        "kind": "order.created",
        "customer": f"customer-{seq:08d}",
        "amount": "1234.56",
        "currency": "EUR",
        "note": "",
    }
    body["note"] = "x" * max(0, size - len(json.dumps(body)))
    return body


def make_messages(destination: str, count: int, size: int = 200) -> list[tuple[str, dict[str, str]]]:
    """Bodies and headers like the relay sends: the ``dop-*`` headers, persistent, JSON content type."""
    now = datetime.now(timezone.utc).isoformat()
    messages = []
    for seq in range(count):
        msg_id = str(uuid.uuid4())
        headers = {
            "dop-msg-id": msg_id,
            "dop-msg-destination": destination,
            "dop-msg-type": "Published",
            "dop-msg-sent-time": now,
            "dop-correlation-id": msg_id,
            "persistent": "true",
            "content-type": "application/json",
        }
        messages.append((json.dumps(make_body(seq, size)), headers))
    return messages


def send_pipelined(
    transport: StompTransport, destination: str, messages: Sequence[tuple[str, dict[str, str]]]
) -> float:
    """Send everything with a receipt each, then wait for all receipts; the seconds it took."""
    receipts = [new_receipt_id() for _ in messages]
    started = time.perf_counter()
    for (body, headers), receipt in zip(messages, receipts, strict=True):
        transport.send(destination, body, headers, receipt=receipt)
    got = transport.wait_for_receipts(receipts, RECEIPT_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if len(got) != len(receipts):
        raise RuntimeError(f"{len(receipts) - len(got)} receipts missing: {transport.last_error}")
    return seconds


@dataclasses.dataclass
class QueueCount:
    total: int
    unique: int
    ids: Counter[str]

    @property
    def duplicates(self) -> int:
        return self.total - self.unique


def drain(name: str, *, expected: int, idle_s: float = 0.3, timeout_s: float = 120) -> QueueCount:
    """Consume queue ``name`` (auto ack) until ``expected`` arrived and ``idle_s`` passed without more."""
    ids: Counter[str] = Counter()
    lock = threading.Lock()
    last = [time.monotonic()]

    def handler(message: Message) -> None:
        with lock:
            ids[message.headers.get("dop-msg-id", message.headers.get("message-id", ""))] += 1
            last[0] = time.monotonic()

    transport = connect()
    try:
        transport.set_message_handler(handler)
        transport.subscribe(f"/amq/queue/{name}", "bench-drain", {}, ack="auto")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with lock:
                done = sum(ids.values()) >= expected and time.monotonic() - last[0] >= idle_s
            if done:
                break
        transport.unsubscribe("bench-drain")
    finally:
        transport.disconnect()
    with lock:
        return QueueCount(total=sum(ids.values()), unique=len(ids), ids=ids)


def receive_and_ack(name: str, *, count: int, prefetch: int, timeout_s: float = 300) -> float:
    """Raw consumer limit: client-individual acks, ``prefetch`` in flight, ack each.

    Returns the seconds from the first to the ``count``-th message (so the rate is ``(count - 1) / s``).
    """
    done = threading.Event()
    received = [0]
    transport = connect()

    times = [0.0, 0.0]  # first and last message

    def handler(message: Message) -> None:
        transport.ack(message.ack_id, "bench-raw")
        received[0] += 1
        if received[0] == 1:
            times[0] = time.perf_counter()
        if received[0] >= count:
            times[1] = time.perf_counter()
            done.set()

    try:
        transport.set_message_handler(handler)
        transport.subscribe(
            f"/amq/queue/{name}", "bench-raw", {"prefetch-count": str(prefetch)}, ack="client-individual"
        )
        if not done.wait(timeout_s):
            raise RuntimeError(f"raw consumer got {received[0]} of {count} messages in {timeout_s}s")
        seconds = times[1] - times[0]
        transport.unsubscribe("bench-raw")
    finally:
        transport.disconnect()
    return seconds
