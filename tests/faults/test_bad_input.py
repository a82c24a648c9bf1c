"""Bad input gets a clear answer: a dead-letter with its reason, a plain value, or one line of error.

What the relay and consumer suites already cover is not repeated here: a missing exchange (not_found),
nested headers and bodies over the relay's own limit (unit), text bodies, identity by message-id.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from django_outbox_pattern import conf, payloads
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, Received
from tests.support.broker_helpers import QueueDrain, count_ids
from tests.support.consumers import make_consumer
from tests.support.processes import ROOT
from tests.support.rabbit_node import RabbitNode
from tests.support.relay_helpers import make_relay, make_rows, make_settings
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, settings_with

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

BROKER_MAX_MESSAGE_BYTES = 65536  # set on the private node for one test (RabbitMQ 3.10 default: 128 MiB)


@pytest.fixture
def small_messages(private_node: RabbitNode) -> Iterator[conf.OutboxSettings]:
    """The private node with max_message_size lowered (new connections only), restored afterwards."""
    before = private_node._ctl("eval", "application:get_env(rabbit, max_message_size).").stdout.strip()
    assert before.startswith("{ok,"), before
    private_node._ctl("eval", f"application:set_env(rabbit, max_message_size, {BROKER_MAX_MESSAGE_BYTES}).")
    yield make_settings(
        DEFAULT_STOMP_HOST_AND_PORTS=[("127.0.0.1", private_node.stomp_port)],
        DEFAULT_MAXIMUM_RETRY_ATTEMPTS=5,
    )
    private_node._ctl("eval", f"application:set_env(rabbit, max_message_size, {before[4:-1]}).")


def test_rows_the_broker_refuses_are_dead_lettered_with_their_reason_and_the_rest_go(
    small_messages: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    good = make_rows(destination, 3)
    too_big = Published.objects.create(destination=destination, body={"blob": "x" * BROKER_MAX_MESSAGE_BYTES})
    good += make_rows(destination, 3)
    reserved = Published.objects.create(destination=f"/queue/amq.{unique_name}", body={})
    good += make_rows(destination, 3)
    not_text = Published.objects.create(destination=destination, body={}, headers={"x-list": ["a", "b"]})
    good += make_rows(destination, 3)
    engine = make_relay(small_messages)
    with QueueDrain(small_messages, destination) as drain:
        try:
            for _ in range(20):  # a bounded number of passes: each refusal costs a reconnect, no more
                if (
                    not engine.run_once()
                    and not Published.objects.filter(status=StatusChoice.SCHEDULE).exists()
                ):
                    break
        finally:
            engine.close()
        received = drain.sync()
    # Every good row arrived. One sent in the same pipelined batch as the too-large row may arrive twice:
    # the broker closed the connection before its RECEIPT (at-least-once; the inbox deduplicates).
    assert set(count_ids(received)) == {str(row.id) for row in good}
    reasons = {
        row.id: (row.status, row.last_error)
        for row in Published.objects.filter(id__in=[too_big.id, reserved.id, not_text.id])
    }
    assert reasons[too_big.id][0] == StatusChoice.FAILED
    assert "larger than configured max size 65536" in reasons[too_big.id][1]
    assert reasons[reserved.id] == (StatusChoice.FAILED, reasons[reserved.id][1])
    assert "reserved" in reasons[reserved.id][1] and "amq." in reasons[reserved.id][1]
    assert reasons[not_text.id][0] == StatusChoice.FAILED
    assert reasons[not_text.id][1].startswith("unsendable: header 'x-list' is a list")
    too_big.refresh_from_db()
    assert too_big.retry <= 2, "a message the broker can never take must not be retried again and again"


def test_odd_incoming_messages_reach_the_callback_as_plain_values(
    unique_name: str, broker_available: None, caplog: pytest.LogCaptureFixture
) -> None:
    bodies: dict[str, Any] = {}

    def callback(payload: payloads.Payload) -> None:
        bodies[payload.msg_id] = payload.body
        with transaction.atomic():
            payload.save()

    topic = f"/topic/{unique_name}"
    consumer = make_consumer(callback, topic)
    huge = "h" * 200_000
    long_id = "L" * 300
    messages: list[tuple[str | bytes, dict[str, str]]] = [
        ('{"unclosed": ', {"dop-msg-id": "bad-json"}),
        (b'{"name": "caf\xe9 \xff"}', {"dop-msg-id": "bad-utf8"}),
        ("", {"dop-msg-id": "empty"}),
        ('{"no": "ids"}', {}),
        (
            '{"big": "headers"}',
            {"dop-msg-id": long_id, "x-huge": huge, **{f"x-{i}": str(i) for i in range(500)}},
        ),
        ('{"last": true}', {"dop-msg-id": "last"}),
    ]
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(consumer):
        send_raw(settings_with(), topic, messages)
        assert wait_until(lambda: consumer.stats.processed == len(messages), timeout=30), consumer.stats
    assert consumer.stats.errors == consumer.stats.nacked == 0
    assert bodies["bad-json"] == '{"unclosed": '
    assert bodies["bad-utf8"] == '{"name": "caf\ufffd \ufffd"}'
    assert bodies["empty"] == ""
    assert bodies["last"] == {"last": True}
    (no_ids,) = [msg_id for msg_id, body in bodies.items() if body == {"no": "ids"}]  # the broker's id
    (hashed,) = [msg_id for msg_id, body in bodies.items() if body == {"big": "headers"}]
    assert hashed.startswith("sha256:") and len(hashed) <= 100
    assert Received.objects.get(msg_id=hashed).headers["x-huge"] == huge
    assert Received.objects.filter(msg_id=no_ids).exists()
    actions = {getattr(record, "action", "") for record in caplog.records}
    assert {"message_body_not_json", "message_body_not_utf8"} <= actions
    assert_queue_empty(settings_with(), unique_name)
    assert_queue_empty(settings_with(), f"DLQ.{unique_name}")


def send_raw(
    settings: conf.OutboxSettings, destination: str, messages: list[tuple[str | bytes, dict[str, str]]]
) -> None:
    """Send bodies as given (bytes stay bytes, so a body can be invalid UTF-8), each with a receipt."""
    t = transport.StompTransport(dataclasses.replace(settings))
    t.connect()
    try:
        receipts = []
        for body, headers in messages:
            receipt = wire.new_receipt_id()
            t.send(destination, body, {"persistent": "true", **headers}, receipt=receipt)  # type: ignore[arg-type]
            receipts.append(receipt)
        assert t.wait_for_receipts(receipts, 10) == set(receipts), t.last_error
    finally:
        t.disconnect()


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("subscribe", "tests.support.fault_callbacks.nowhere", "/queue/q"), "Cannot import the callback"),
        (("subscribe", "tests.support.no_such_module.handle", "/queue/q"), "Cannot import the callback"),
        (
            ("subscribe", "tests.support.broken_callbacks.handle", "/queue/q"),
            "this module is broken on purpose",
        ),
        (("subscribe", "tests.support.consumers.FAST", "/queue/q"), "is not callable"),
        (("subscribe", "tests.support.fault_callbacks.record_effect", "queue/q"), "must start with /queue/"),
        (
            ("subscribe", "tests.support.fault_callbacks.record_effect", "/nowhere/q"),
            "a consumer subscribes to",
        ),
        (
            ("subscribe", "tests.support.fault_callbacks.record_effect", "/queue/a/b"),
            "must look like /queue/<name>",
        ),
        (
            ("subscribe", "tests.support.fault_callbacks.record_effect", "/topic/k", "bad name"),
            "may contain only",
        ),
        (("subscribe", "tests.support.fault_callbacks.record_effect", "/topic/k", "a/b"), "may contain only"),
        (("subscribe", "tests.support.fault_callbacks.record_effect", "/topic/k", "amq.mine"), "reserved"),
        (("subscribe", "tests.support.fault_callbacks.record_effect", "/topic/k", "q" * 300), "longer than"),
        (("publish", "--chunk-size", "0"), "DEFAULT_PUBLISHED_CHUNK_SIZE"),
    ],
)
def test_bad_command_arguments_get_one_clear_line_and_exit_1(args: tuple[str, ...], expected: str) -> None:
    done = manage(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert json.dumps(lines[0])  # printable
