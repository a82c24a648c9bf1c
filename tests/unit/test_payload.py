"""Payload: body decoding, identity, save/ack/nack settle exactly once (in-memory inbox, no broker)."""

from __future__ import annotations

import logging

import pytest

from django_outbox_pattern import exceptions, payloads
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import inbox
from django_outbox_pattern.testing import MemoryInbox


class Recorder:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, ack: bool) -> None:
        self.calls.append(ack)


def make(body: bytes = b'{"id": 1}', **headers: str) -> tuple[payloads.Payload, Recorder, MemoryInbox]:
    settle, store = Recorder(), MemoryInbox()
    message = wire.Message(headers={"message-id": "m-1", **headers}, body=body)
    msg_id = inbox.message_id(message.headers)
    return payloads.Payload.from_message(message, msg_id=msg_id, settle=settle, store=store), settle, store


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cap-msg-id": "cap", "dop-msg-id": "dop", "message-id": "broker"}, "cap"),
        ({"dop-msg-id": "dop", "message-id": "broker"}, "dop"),
        ({"message-id": "broker"}, "broker"),
        ({"cap-msg-id": "", "dop-msg-id": "dop", "message-id": "broker"}, "dop"),
    ],
)
def test_identity_prefers_cap_then_dop_then_broker_id(headers: dict[str, str], expected: str) -> None:
    assert inbox.message_id(headers) == expected


def test_long_ids_become_a_stable_digest_that_fits_the_column() -> None:
    long_id = "x" * 300
    first = inbox.message_id({"dop-msg-id": long_id})
    assert first == inbox.message_id({"dop-msg-id": long_id})
    assert first.startswith("sha256:")
    assert len(first) <= inbox.MAX_MSG_ID_LENGTH
    assert inbox.message_id({"dop-msg-id": "y" * 100}) == "y" * 100


def test_a_message_without_any_id_cannot_be_deduplicated() -> None:
    with pytest.raises(exceptions.MessageDecodeError, match="cannot be deduplicated"):
        inbox.message_id({"destination": "/queue/x"})


def test_json_body_is_decoded_and_headers_are_strings() -> None:
    payload, _, _ = make(b'{"id": 1, "name": "caf\xc3\xa9"}', **{"dop-msg-id": "abc"})
    assert payload.body == {"id": 1, "name": "café"}
    assert payload.headers == {"message-id": "m-1", "dop-msg-id": "abc"}
    assert payload.msg_id == "abc"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in payload.headers.items())


def test_non_json_body_reaches_the_callback_as_text_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern.payloads"):
        payload, _, _ = make(b"plain text, not json")
    assert payload.body == "plain text, not json"
    assert [r.action for r in caplog.records] == ["message_body_not_json"]  # type: ignore[attr-defined]
    assert "m-1" in caplog.records[0].getMessage()


def test_non_utf8_body_is_decoded_with_replacement_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern.payloads"):
        payload, _, _ = make(b'{"a": "\xff\xfe"}')
    assert payload.body == '{"a": "\ufffd\ufffd"}'
    assert [r.action for r in caplog.records] == ["message_body_not_utf8"]  # type: ignore[attr-defined]


def test_empty_body_is_an_empty_string() -> None:
    payload, _, _ = make(b"")
    assert payload.body == ""


def test_save_records_the_inbox_row_then_acks_once() -> None:
    payload, settle, store = make(**{"dop-msg-id": "abc"})
    payload.save()
    payload.save()  # a second save is a no-op
    payload.ack()
    payload.nack()  # ignored: already acked
    assert settle.calls == [True]
    assert payload.saved and payload.acked and not payload.nacked
    headers, body, _ = store.rows["abc"]
    assert body == {"id": 1}
    assert headers["dop-msg-id"] == "abc"


def test_nack_touches_no_inbox_and_settles_once() -> None:
    payload, settle, store = make()
    payload.nack()
    payload.nack()
    payload.ack()
    assert settle.calls == [False]
    assert payload.nacked and not payload.acked and payload.settled
    assert store.rows == {}


def test_save_after_nack_is_refused() -> None:
    payload, settle, store = make()
    payload.nack()
    with pytest.raises(exceptions.OutboxError, match="already nacked"):
        payload.save()
    assert store.rows == {}
    assert settle.calls == [False]


def test_saving_a_duplicate_raises_and_sends_nothing() -> None:
    payload, settle, store = make(**{"dop-msg-id": "abc"})
    store.record("abc", {}, None)
    with pytest.raises(inbox.DuplicateMessage):
        payload.save()
    assert settle.calls == []
    assert not payload.saved


def test_a_payload_built_by_hand_needs_no_broker() -> None:
    payload = payloads.Payload({"id": 7}, {"dop-msg-id": "by-hand", "count": 3})  # type: ignore[dict-item]
    payload.ack()
    assert payload.acked
    assert payload.headers["count"] == "3"
    assert payload.msg_id == "by-hand"
    assert "by-hand" in repr(payload)
