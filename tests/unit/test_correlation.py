"""Headers as 3.2.1 writes them: the sent time's format, the correlation id taken from (and given to) the
current request id of request-id-django-log, with or without that package installed."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from django_outbox_pattern import conf, headers, payloads
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import consumer
from django_outbox_pattern.core import requestid
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import TransportFactory
from tests.support.runner import running, wait_until

SENT_TIME_321 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")  # DjangoJSONEncoder, UTC


def request_id_module() -> Any:
    try:
        import request_id_django_log
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("request-id-django-log is not installed")
    return request_id_django_log


@pytest.fixture(params=["request-id-django-log", "without it"])
def local(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The thread-local holding the current request id: the package's, or ours when it is missing."""
    if request.param == "without it":
        monkeypatch.setitem(sys.modules, "request_id_django_log", None)  # import fails
        yield requestid._fallback
    else:
        yield request_id_module().local_threading


def row(**fields: Any) -> Any:
    return types.SimpleNamespace(**{"id": uuid.uuid4(), "destination": "/topic/x", "headers": {}, **fields})


def test_sent_time_is_written_as_3x_wrote_it() -> None:
    when = datetime.datetime(2026, 12, 4, 15, 37, 22, 362890, tzinfo=datetime.timezone.utc)
    assert headers.json_time(when) == "2026-12-04T15:37:22.362Z"
    assert SENT_TIME_321.match(headers.generate_headers(row())["dop-msg-sent-time"])
    custom = headers.get_message_headers(row(headers={"x-when": when}))  # custom values alike
    assert custom["x-when"] == "2026-12-04T15:37:22.362Z"


def test_the_current_request_id_is_the_correlation_id(local: Any) -> None:
    with requestid.bound("req-42"):
        assert local.request_id == "req-42"
        assert headers.generate_headers(row())["dop-correlation-id"] == "req-42"
        own = headers.get_message_headers(row(headers={"dop-correlation-id": "mine"}))
        assert own["dop-correlation-id"] == "mine"  # a row's own header still wins
    assert not hasattr(local, "request_id")  # restored


@pytest.mark.parametrize("value", [None, "", requestid.NO_REQUEST_ID])
def test_without_a_request_id_each_row_gets_a_new_one(local: Any, value: str | None) -> None:
    local.request_id = value
    try:
        ids = {headers.generate_headers(row())["dop-correlation-id"] for _ in range(2)}
    finally:
        del local.request_id
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)


def test_the_package_middleware_request_id_is_read() -> None:
    module = request_id_module()
    module.local_threading.request_id = "from-middleware"
    try:
        assert requestid.current() == "from-middleware"
    finally:
        del module.local_threading.request_id


def test_a_receipt_header_the_broker_copied_never_reaches_consumers() -> None:
    frame = types.SimpleNamespace(headers={"receipt": "r-1", "dop-msg-id": "m", "message-id": "x"}, body="{}")
    assert wire.Message.from_frame(frame).headers == {"dop-msg-id": "m", "message-id": "x"}


def test_while_a_callback_runs_the_message_correlation_id_is_the_request_id(local: Any) -> None:
    seen: list[tuple[str, str | None]] = []

    def callback(payload: payloads.Payload) -> None:
        written = headers.generate_headers(row())  # what an outbox row written here would carry
        seen.append((written["dop-correlation-id"], getattr(local, "request_id", None)))
        payload.save()

    factory = TransportFactory()
    settings = dataclasses.replace(conf.OutboxSettings(), DEFAULT_RECEIPT_TIMEOUT=2)
    c = consumer.Consumer(
        callback, "/queue/orders", settings=settings, transport_factory=factory, store=MemoryInbox()
    )
    with running(c):
        factory.broker.publish("/queue/orders", "{}", {"dop-msg-id": "a", "dop-correlation-id": "corr-a"})
        factory.broker.publish("/queue/orders", "{}", {"dop-msg-id": "b"})
        factory.broker.publish("/queue/orders", "{}", {"dop-msg-id": "c"})
        assert wait_until(lambda: c.stats.processed == 3)
    assert seen[0] == ("corr-a", "corr-a")
    (b, b_local), (c_id, c_local) = seen[1:]
    assert b == b_local and c_id == c_local and b != c_id  # a new id per message without one
    assert uuid.UUID(b) and uuid.UUID(c_id)
    assert requestid.current() is None  # nothing leaks out of the callbacks (this thread never had one)


def test_a_custom_generator_returning_datetimes_gets_3x_format() -> None:
    """3.x custom generators returned timezone.now() itself; its JSON encoder wrote it (the same here)."""
    when = datetime.datetime(2026, 12, 4, 15, 37, 22, tzinfo=datetime.timezone.utc)
    assert headers.json_time(when) == "2026-12-04T15:37:22Z"
    assert headers.json_time(datetime.date(2026, 12, 4)) == "2026-12-04"
    aware = datetime.time(1, 2, tzinfo=datetime.timezone.utc)
    assert headers.json_time(aware) == aware.isoformat()  # the encoder refuses these: kept as they are
