"""On the real broker: the headers a subscriber gets from our relay are those it gets from 3.2.1's (plus
``persistent`` and ``content-type``), and a callback's outbox rows carry the message's correlation id.

3.2.1's relay runs in a child process of the 3.2.1 side environment (``.venv-321``, see conftest.py) on a
SQLite database of its own.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import textwrap
import uuid

import pytest
from django.db import transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.models import Published
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.broker_helpers import QueueDrain
from tests.support.consumers import make_consumer
from tests.support.relay_helpers import make_relay, make_settings
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import publish, settings_with

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

SENT_TIME_321 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
PER_MESSAGE = {"message-id", "destination", "subscription", "redelivered", "content-length", "ack"}

RELAY_321 = """
import django, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["DJANGO_SETTINGS_MODULE"] = "ref_settings"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django_outbox_pattern.models import Published
from django_outbox_pattern.factories import factory_producer
Published.objects.create(destination=sys.argv[1], body={"order": 7}, headers={"x-tenant": "acme"})
factory_producer().publish_message_from_database()
"""


def relay_with_321(side_python: pathlib.Path, tmp_path: pathlib.Path, destination: str) -> None:
    db = str(tmp_path / "db.sqlite3")
    (tmp_path / "ref_settings.py").write_text(
        textwrap.dedent(f"""
        SECRET_KEY = "x"
        USE_TZ = True
        INSTALLED_APPS = ["django_outbox_pattern"]
        DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
        DJANGO_OUTBOX_PATTERN = {{
            "DEFAULT_STOMP_HOST_AND_PORTS": [({STOMP_HOST!r}, {STOMP_PORT})],
            "DEFAULT_PRODUCER_WAITING_TIME": 0,
        }}
        """)
    )
    (tmp_path / "relay.py").write_text(RELAY_321)
    done = subprocess.run(
        [str(side_python), str(tmp_path / "relay.py"), destination],
        env={"PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_subscriber_gets_the_headers_321_sent(
    side_python: pathlib.Path, tmp_path: pathlib.Path, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    settings = make_settings()
    with QueueDrain(settings, destination) as drain:
        relay_with_321(side_python, tmp_path, destination)
        Published.objects.create(destination=destination, body={"order": 7}, headers={"x-tenant": "acme"})
        engine = make_relay(settings)
        try:
            assert engine.run_once() == 1
        finally:
            engine.close()
        theirs, ours = drain.wait_for(2)[:2]
    for message in (theirs, ours):
        assert json.loads(message.body) == {"order": 7}
        h = message.headers
        assert SENT_TIME_321.match(h["dop-msg-sent-time"]), h["dop-msg-sent-time"]
        assert (h["dop-msg-type"], h["dop-msg-destination"], h["x-tenant"]) == (
            "Published",
            destination,
            "acme",
        )
        assert str(uuid.UUID(h["dop-correlation-id"])) != h["dop-msg-id"]  # no request: a new id
        assert "receipt" not in h
    names = {name: set(m.headers) - PER_MESSAGE for name, m in (("theirs", theirs), ("ours", ours))}
    # Deliberate: persistent messages (survive a broker restart) that say they are JSON.
    assert names["ours"] - names["theirs"] == {"persistent", "content-type"}
    assert names["theirs"] - names["ours"] == set()


def test_rows_written_in_a_callback_carry_the_message_correlation_id(unique_name: str) -> None:
    destination = f"/topic/{unique_name}"

    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Published.objects.create(destination=f"/queue/{unique_name}-next", body=payload.body)
            payload.save()

    c = make_consumer(callback, destination)
    with running(c):
        publish(
            settings_with(),
            destination,
            [
                ('{"n": 1}', {"dop-msg-id": "one", "dop-correlation-id": "corr-from-upstream"}),
                ('{"n": 2}', {"dop-msg-id": "two"}),
            ],
        )
        assert wait_until(lambda: c.stats.processed == 2)
    rows = {r.body["n"]: r.headers["dop-correlation-id"] for r in Published.objects.all()}
    assert rows[1] == "corr-from-upstream"
    assert str(uuid.UUID(rows[2])) == rows[2]  # a message without one: a new id, as 3.2.1


def test_a_consumer_never_sees_the_receipt_header_the_broker_copies(unique_name: str) -> None:
    destination = f"/queue/{unique_name}"
    received: list[wire.Message] = []
    sender = transport.StompTransport(settings_with())
    with QueueDrain(settings_with(), destination) as drain:
        sender.connect()
        try:
            receipt = wire.new_receipt_id()
            sender.send(destination, "{}", {"x-a": "1"}, receipt=receipt)
            assert sender.wait_for_receipts([receipt], 10) == {receipt}
        finally:
            sender.disconnect()
        received = drain.wait_for(1)
    assert received[0].headers["x-a"] == "1" and "receipt" not in received[0].headers
