"""The public names of django-outbox-pattern 3.2.1 exist here and behave as there (no broker needed).

Signatures are compared with 3.2.1's own in tests/compat/test_signatures.py (needs the 3.2.1 side venv).
"""

from __future__ import annotations

import inspect
from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.core import checks as django_checks
from django.test import override_settings

from django_outbox_pattern import checks, conf, exceptions, headers, payloads
from django_outbox_pattern import settings as dop_settings
from django_outbox_pattern.bases import Base, Connection
from django_outbox_pattern.consumers import Consumer
from django_outbox_pattern.factories import factory_connection, factory_consumer, factory_producer
from django_outbox_pattern.listeners import BaseListener, ConsumerListener, ProducerListener
from django_outbox_pattern.producers import Producer

RECORDED: list[tuple[str, Any]] = []


class RecordingListener(ConsumerListener):
    def on_connected(self, frame: Any) -> None:
        RECORDED.append(("connected", self.instance))


# --- django_outbox_pattern.settings ------------------------------------------------------------------


def test_settings_module_reads_the_one_settings_object_lazily() -> None:
    assert dop_settings.DEFAULT_MAXIMUM_RETRY_ATTEMPTS == conf.get_settings().DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_MAXIMUM_RETRY_ATTEMPTS": 7}):
        assert dop_settings.DEFAULT_MAXIMUM_RETRY_ATTEMPTS == 7
        assert dop_settings.DJANGO_OUTBOX_PATTERN == {"DEFAULT_MAXIMUM_RETRY_ATTEMPTS": 7}
    assert dop_settings.DEFAULT_MAXIMUM_RETRY_ATTEMPTS == conf.DEFAULTS.DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    assert "DEFAULT_STOMP_VHOST" in dir(dop_settings)
    with pytest.raises(AttributeError):
        dop_settings.NOT_A_SETTING  # noqa: B018


def test_mock_patch_of_a_setting_reaches_the_engine_and_is_undone() -> None:
    with mock.patch("django_outbox_pattern.settings.DEFAULT_CONSUMER_RETRY_WAIT", 0):
        assert dop_settings.DEFAULT_CONSUMER_RETRY_WAIT == 0
        assert conf.get_settings().DEFAULT_CONSUMER_RETRY_WAIT == 0
    assert conf.get_settings().DEFAULT_CONSUMER_RETRY_WAIT == conf.DEFAULTS.DEFAULT_CONSUMER_RETRY_WAIT
    assert conf._overrides == {}


def test_assignment_and_monkeypatch_leave_no_override_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    dop_settings.DEFAULT_EXCLUSIVE_QUEUE = True
    assert conf.get_settings().DEFAULT_EXCLUSIVE_QUEUE is True
    del dop_settings.DEFAULT_EXCLUSIVE_QUEUE
    assert conf.get_settings().DEFAULT_EXCLUSIVE_QUEUE is False
    with monkeypatch.context() as patch:
        patch.setattr(dop_settings, "DEFAULT_PUBLISHED_CHUNK_SIZE", 5)
        assert conf.get_settings().DEFAULT_PUBLISHED_CHUNK_SIZE == 5
    # monkeypatch restores by assigning the old value: that removes the override
    assert conf._overrides == {}
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_PUBLISHED_CHUNK_SIZE": 9}):
        assert dop_settings.DEFAULT_PUBLISHED_CHUNK_SIZE == 9


def test_an_override_wins_over_override_settings_until_removed() -> None:
    with mock.patch("django_outbox_pattern.settings.DEFAULT_WAIT_RETRY", 3):
        with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_WAIT_RETRY": 5}):
            assert conf.get_settings().DEFAULT_WAIT_RETRY == 3
        assert conf.get_settings().DEFAULT_WAIT_RETRY == 3


# --- Payload(connection, body, headers, message=None) -----------------------------------------------


def test_payload_in_3x_form_acks_and_nacks_on_its_connection_by_message_id() -> None:
    connection = mock.Mock()
    payload = payloads.Payload(connection, {"a": 1}, {"message-id": "m-9", "dop-msg-id": "d"})
    assert payload.connection is connection
    assert payload.body == {"a": 1}
    assert payload.msg_id == "d"
    payload.nack()
    payload.ack()  # ignored once nacked, as 3.x
    connection.nack.assert_called_once_with("m-9", requeue=False)
    connection.ack.assert_not_called()
    acked = payloads.Payload(connection, {}, {"message-id": "m-10"})
    acked.ack()
    connection.ack.assert_called_once_with("m-10")


def test_payload_in_3x_form_keeps_headers_as_given_and_needs_no_id_until_saved() -> None:
    payload = payloads.Payload(None, "text", {"count": 3})
    assert payload.headers == {"count": 3}
    assert payload.connection is None
    with pytest.raises(exceptions.MessageDecodeError, match="cannot be saved"):
        payload.save()


def test_this_projects_form_still_works() -> None:
    payload = payloads.Payload({"id": 7}, {"dop-msg-id": "by-hand"})
    assert (payload.body, payload.msg_id, payload.connection) == ({"id": 7}, "by-hand", None)
    with pytest.raises(TypeError, match="needs a body and headers"):
        payloads.Payload({"id": 7})


@pytest.mark.django_db
def test_payload_message_is_the_received_row_and_save_stores_a_given_one() -> None:
    from django_outbox_pattern.models import Received

    built = payloads.Payload(None, {"x": 1}, {"dop-msg-id": "lazy-1"})
    assert isinstance(built.message, Received)
    assert (built.message.msg_id, built.message.body, built.message._state.adding) == (
        "lazy-1",
        {"x": 1},
        True,
    )
    given = Received(body={"y": 2}, headers={"dop-msg-id": "given-1"}, msg_id="given-1")
    payload = payloads.Payload(mock.Mock(), {"y": 2}, {"dop-msg-id": "given-1"}, given)
    assert payload.message is given
    payload.save()
    assert payload.saved
    assert Received.objects.get(msg_id="given-1").status == given.status


# --- exceptions, apps, headers ---------------------------------------------------------------------


def test_exceeded_send_attempts_exception_carries_attempts() -> None:
    exc = exceptions.ExceededSendAttemptsException(4)
    assert exc.attempts == 4
    assert "Exceeded send attempts: 4" in str(exc)
    not_confirmed = exceptions.SendNotConfirmed(50, "no receipt")
    assert isinstance(not_confirmed, exceptions.ExceededSendAttemptsException)
    assert isinstance(not_confirmed, exceptions.PublishNotConfirmed)
    assert not_confirmed.attempts == 50


def test_outbox_config_is_the_app_config_and_the_old_name_still_imports() -> None:
    from django_outbox_pattern.apps import DjangoOutboxPatternConfig, OutboxConfig

    assert type(apps.get_app_config("django_outbox_pattern")) is OutboxConfig
    assert DjangoOutboxPatternConfig is OutboxConfig


def test_get_message_headers_takes_published() -> None:
    assert list(inspect.signature(headers.get_message_headers).parameters) == ["published"]


# --- factories, Consumer, Producer (no connection is opened) -----------------------------------------


def test_factories_build_the_3x_objects_without_connecting() -> None:
    connection = factory_connection()
    assert isinstance(connection, Connection)
    assert not connection.is_connected()
    assert connection.settings().DEFAULT_STOMP_HEARTBEATS == conf.get_settings().DEFAULT_STOMP_HEARTBEATS
    assert factory_connection(use_heartbeats=False).settings().DEFAULT_STOMP_HEARTBEATS == (0, 0)
    consumer, producer = factory_consumer(), factory_producer()
    assert isinstance(consumer, Consumer) and isinstance(consumer, Base)
    assert isinstance(producer, Producer) and isinstance(producer, Base)
    assert not consumer.is_connected() and not producer.is_connected()
    assert consumer.subscribe_id is None
    assert isinstance(consumer.get_listener(consumer.listener_name), ConsumerListener)
    assert isinstance(producer.get_listener(producer.listener_name), ProducerListener)
    assert producer.connection.settings().DEFAULT_STOMP_HEARTBEATS == (0, 0)


def test_a_custom_listener_class_is_built_with_the_consumer_and_registered() -> None:
    path = f"{__name__}.RecordingListener"
    with mock.patch("django_outbox_pattern.settings.DEFAULT_CONSUMER_LISTENER_CLASS", path):
        consumer = factory_consumer()
    listener = consumer.get_listener(consumer.listener_name)
    assert isinstance(listener, RecordingListener)
    assert listener.instance is consumer
    transport = consumer.connection.new_transport()  # every transport the engine opens carries it
    assert transport.get_listener(consumer.listener_name) is listener
    consumer.remove_listener(consumer.listener_name)
    assert consumer.get_listener(consumer.listener_name) is None
    assert transport.get_listener(consumer.listener_name) is None


def test_default_listeners_accept_every_stomp_event() -> None:
    listener = BaseListener(object())
    frame = mock.Mock()
    for name in ("on_connected", "on_message", "on_error", "on_receipt", "on_send", "on_before_message"):
        assert getattr(listener, name)(frame) is None
    assert listener.on_disconnected() is None
    assert listener.on_heartbeat_timeout() is None


def test_producer_send_event_refuses_an_unsendable_message_before_connecting() -> None:
    producer = factory_producer()
    with pytest.raises(exceptions.UnsendableMessage):
        producer.send_event({"a": 1}, "/queue/")
    assert not producer.is_connected()


# --- settings accepted without effect ----------------------------------------------------------------


def test_a_setting_without_effect_is_warned_about() -> None:
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND": True}):
        messages = checks.check_settings()
    assert [m.id for m in messages] == ["django_outbox_pattern.W012"]
    assert messages[0].level == django_checks.WARNING
    assert "worker thread" in messages[0].msg


def test_a_listener_class_that_does_not_import_is_an_error() -> None:
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_CONSUMER_LISTENER_CLASS": "nowhere.Listener"}):
        messages = checks.check_settings()
    assert [m.id for m in messages] == ["django_outbox_pattern.E002"]


def test_every_3x_setting_is_acted_on_or_warned_about() -> None:
    """Each 3.2.1 key is read by our code (grep-able in src) or listed in checks.NO_EFFECT."""
    import pathlib

    src = pathlib.Path(conf.__file__).parent
    code = "\n".join(p.read_text() for p in src.rglob("*.py") if p.name not in ("settings.py", "checks.py"))
    keys_321 = [name for name in conf.FIELD_NAMES if name not in THIS_PROJECTS_KEYS]
    for key in keys_321:
        used = f".{key}" in code
        assert used or key in checks.NO_EFFECT, f"{key} is accepted but neither used nor warned about"


THIS_PROJECTS_KEYS = {
    "DEFAULT_RECEIPT_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_RELAY_LEASE",
    "DEFAULT_RELAY_NOTIFY",
    "DEFAULT_RETRY_BASE_DELAY",
}


def test_sigquit_stops_gracefully_as_3x_subscribe() -> None:
    import os
    import signal

    from django_outbox_pattern.core import shutdown

    stopped: list[bool] = []
    with shutdown.on_stop(lambda: stopped.append(True)):
        os.kill(os.getpid(), signal.SIGQUIT)
    assert stopped == [True]


def test_manage_py_subscribe_and_publish_register_the_listener_classes() -> None:
    from django_outbox_pattern.consuming import assembly as consumer_assembly
    from django_outbox_pattern.relaying import assembly as relay_assembly

    path = f"{__name__}.RecordingListener"
    with mock.patch("django_outbox_pattern.settings.DEFAULT_CONSUMER_LISTENER_CLASS", path):
        built = consumer_assembly.build_consumer(lambda payload: None, "/queue/listened")
    name = f"consumer-listener-{built.subscription_id}"
    transport = built._new_transport()  # what each (re)connection of the consumer uses
    assert isinstance(transport.get_listener(name), RecordingListener)
    assert transport.get_listener(name).instance is built
    with mock.patch("django_outbox_pattern.settings.DEFAULT_PRODUCER_LISTENER_CLASS", path):
        r = relay_assembly.build_relay()
    listener = r.producer.transport.get_listener(f"producer-listener-{r.relay_id}")
    assert isinstance(listener, RecordingListener)
    assert listener.instance is r
