"""Secrets never show (logs at DEBUG, failure paths, exception messages, reprs, `check`), and only JSON
crosses the wire: nothing in a message is unpickled or evaluated."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import pickle
import re
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction

from django_outbox_pattern import conf, exceptions, payloads
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.consuming import assembly as consumer_assembly
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import assembly, producer, store
from tests.support.broker_helpers import QueueDrain
from tests.support.consumers import make_consumer
from tests.support.fault_cluster import CONSUMER_READY, Cluster
from tests.support.processes import ROOT
from tests.support.rabbit_node import RabbitNode
from tests.support.relay_helpers import make_relay, make_settings
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import settings_with

pytestmark = [pytest.mark.broker]

SECRET = f"Pz-{uuid.uuid4().hex[:10]}-s3cret"  # the passcode of a user made for this module
WRONG = f"Wr0ng-{uuid.uuid4().hex[:10]}"  # a passcode the broker refuses
PACKAGE = ROOT / "src" / "django_outbox_pattern"


@pytest.fixture(scope="module")
def stomp_user(private_node: RabbitNode) -> Iterator[str]:
    user = f"faults-{uuid.uuid4().hex[:8]}"
    assert private_node._ctl("add_user", user, SECRET).returncode == 0
    assert private_node._ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*").returncode == 0
    yield user
    private_node._ctl("delete_user", user)


def secrets_in(text: str) -> list[str]:
    return [secret for secret in (SECRET, WRONG) if secret in text]


def test_debug_logs_of_a_relay_and_a_consumer_never_show_the_passcode(
    private_node: RabbitNode, stomp_user: str, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = make_cluster(
        private_node.stomp_port,
        env={"OUTBOX_TEST_LOG_LEVEL": "DEBUG"},
        settings={"DEFAULT_STOMP_USERNAME": stomp_user, "DEFAULT_STOMP_PASSCODE": SECRET},
    )
    cluster.start_consumers(1)
    cluster.write(20)
    cluster.start_relays(1)
    assert cluster.wait_for_books(20, timeout=60).complete, cluster.log_text()[-3000:]
    assert set(cluster.stop_all().values()) == {0}
    logs = cluster.log_text()
    assert "sending frame" in logs and "CONNECT" in logs, "stomp.py's DEBUG frame log was not on"
    assert "passcode:********" in logs  # the CONNECT frame is logged, masked
    assert not secrets_in(logs)


def test_a_refused_passcode_is_reported_without_showing_it(
    private_node: RabbitNode, stomp_user: str, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = make_cluster(
        private_node.stomp_port,
        env={"OUTBOX_TEST_LOG_LEVEL": "DEBUG"},
        settings={"DEFAULT_STOMP_USERNAME": stomp_user, "DEFAULT_STOMP_PASSCODE": WRONG},
    )
    relay_proc, consumer_proc = cluster.add_relay().start(), cluster.add_consumer().start()
    assert relay_proc.wait_for_log("Broker unavailable, retrying", timeout=60), relay_proc.log()
    assert consumer_proc.wait_for_log("has no broker connection", timeout=60), consumer_proc.log()
    assert set(cluster.stop_all().values()) == {0}
    logs = cluster.log_text()
    assert "check the username, passcode" in logs and "Access refused" in logs  # a clear reason
    assert CONSUMER_READY not in logs
    assert not secrets_in(logs)


def test_exception_messages_and_reprs_never_show_secrets(
    private_node: RabbitNode, stomp_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_STOMP_HOST_AND_PORTS": [("127.0.0.1", private_node.stomp_port)],
            "DEFAULT_STOMP_USERNAME": stomp_user,
            "DEFAULT_STOMP_PASSCODE": WRONG,
            "DEFAULT_STOMP_SSL_PASSWORD": SECRET,
            "DEFAULT_CONNECT_TIMEOUT": 5,
        }
    )
    stomp = transport.StompTransport(settings)
    texts = [
        repr(settings),
        str(settings.public_dict()),
        json.dumps(settings.public_dict(), default=str),
        repr(stomp),
        repr(producer.Producer(stomp, receipt_timeout=1)),
        repr(assembly.build_relay(settings, outbox_store=store.OutboxStore(), transport=stomp)),
        repr(consumer_assembly.build_consumer(lambda payload: None, "/topic/k", settings=settings)),
    ]
    with caplog.at_level(logging.DEBUG), pytest.raises(exceptions.ConnectionFailed) as refused:
        stomp.connect()
    texts.append("".join(traceback.format_exception(refused.value)))  # with every chained cause
    texts += [record.getMessage() for record in caplog.records]
    assert "Access refused" in texts[-len(caplog.records) - 1]
    assert any("sending frame" in text for text in texts), "stomp.py's DEBUG log was not captured"
    assert not secrets_in("\n".join(texts))


@pytest.mark.parametrize("key", sorted(conf.SECRET_KEYS))
def test_invalid_secret_settings_are_reported_without_their_value(key: str) -> None:
    with pytest.raises(exceptions.ConfigurationError) as invalid:
        conf.OutboxSettings.from_mapping({key: [SECRET]})
    assert key in str(invalid.value)
    assert not secrets_in(str(invalid.value))
    checked = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        env={
            "DJANGO_SETTINGS_MODULE": "tests.support.fault_settings",
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
            "OUTBOX_TEST_SETTINGS_JSON": json.dumps({key: [SECRET]}),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0 and key in checked.stderr, checked.stderr
    assert not secrets_in(checked.stdout + checked.stderr)


class _Touch:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.path,))


def test_the_package_has_no_way_to_unpickle_or_evaluate() -> None:
    pattern = re.compile(r"\b(pickle|marshal|shelve|yaml|jsonpickle|eval|exec)\b|__import__")
    found = [
        f"{path.name}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []


@pytest.mark.django_db(transaction=True)
def test_only_json_crosses_the_wire_pickles_and_code_arrive_as_text(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "unpickled"
    pickled = pickle.dumps(_Touch(marker), protocol=0)
    pickle.loads(pickle.dumps(_Touch(tmp_path / "proof"), protocol=0))
    assert (tmp_path / "proof").exists()  # such a payload really runs code when unpickled
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    sneaky = {"py/object": "os.system", "__reduce__": ["os.system", ["true"]], "__class__": "Touch"}

    # Outbox -> broker: whatever the body, the wire carries its JSON text.
    destination = f"/queue/{unique_name}"
    rows = [Published.objects.create(destination=destination, body=body) for body in (pickled.decode(), code)]
    with QueueDrain(make_settings(), destination) as drain:
        engine = make_relay(make_settings())
        try:
            engine.run_once()
        finally:
            engine.close()
        sent = drain.sync()
    assert [m.body for m in sent] == [json.dumps(row.body).encode() for row in rows]
    assert {m.headers["content-type"] for m in sent} == {"application/json"}

    # Broker -> callback: a pickle, code and a JSON object shaped like a pickle arrive as plain data.
    bodies: dict[str, Any] = {}

    def callback(payload: payloads.Payload) -> None:
        bodies[payload.msg_id] = payload.body
        with transaction.atomic():
            payload.save()

    topic = f"/topic/{unique_name}-in"  # its own queue: /queue/<unique_name> above has no x- arguments
    c = make_consumer(callback, topic)
    with running(c):
        t = transport.StompTransport(settings_with())
        t.connect()
        try:
            receipts = [wire.new_receipt_id() for _ in range(3)]
            for receipt, (msg_id, body) in zip(
                receipts,
                [("pickle", pickled), ("code", code.encode()), ("sneaky", json.dumps(sneaky).encode())],
                strict=True,
            ):
                t.send(topic, body, {"dop-msg-id": msg_id}, receipt=receipt)  # type: ignore[arg-type]
            assert t.wait_for_receipts(receipts, 10) == set(receipts)
        finally:
            t.disconnect()
        assert wait_until(lambda: c.stats.processed == 3, timeout=20), c.stats
    assert bodies == {"pickle": pickled.decode(), "code": code, "sneaky": sneaky}
    assert not marker.exists()
    assert dataclasses.asdict(c.stats)["errors"] == 0
