"""Queue names and SUBSCRIBE headers: compatible with the queues 2.x/3.x declared."""

from __future__ import annotations

import dataclasses

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.consuming import queues
from django_outbox_pattern.core import addressing


@pytest.fixture
def settings() -> conf.OutboxSettings:
    return conf.OutboxSettings()


@pytest.mark.parametrize(
    ("destination", "queue_name", "expected"),
    [
        ("/topic/orders.created", None, "orders.created"),
        ("/topic/orders.created", "billing.orders", "billing.orders"),
        ("/queue/orders", None, "orders"),
        ("/exchange/events/orders.v1", None, "orders.v1"),
        ("/exchange/events", None, "events"),
        ("/amq/queue/existing", None, "existing"),
        ("/topic/orders.*", None, "orders.*"),
        ("/topic/ordens.criadas", "fila-ção", "fila-ção"),
    ],
)
def test_queue_name_is_given_name_else_last_segment(
    destination: str, queue_name: str | None, expected: str
) -> None:
    assert addressing.queue_name_for(destination, queue_name) == expected


@pytest.mark.parametrize(
    ("destination", "fragment"),
    [
        ("orders", "must start with"),
        ("", "must start with"),
        ("/temp-queue/x", "a consumer subscribes to"),
        ("/reply-queue/x", "a consumer subscribes to"),
        ("/foo/x", "a consumer subscribes to"),
        ("/queue/", "must look like /queue/<name>"),
        ("/queue/a/b", "must look like /queue/<name>"),
        ("/topic/", "must look like /topic/<name>"),
        ("/exchange/", "must look like /exchange/<name>[/<routing key>]"),
        ("/exchange/a/b/c", "must look like /exchange/"),
        ("/amq/queue/", "must look like /amq/queue/<name>"),
        ("/topic/has space", "may contain only"),
        ("/topic/new\nline", "may contain only"),
    ],
)
def test_invalid_destinations_are_refused_up_front(destination: str, fragment: str) -> None:
    with pytest.raises(exceptions.InvalidDestination) as info:
        addressing.queue_name_for(destination)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("queue_name", "fragment"),
    [
        ("bad name", "may contain only"),
        ("a/b", "may contain only"),
        ("amq.mine", "reserved by RabbitMQ"),
        ("x" * 252, "longer than 251 bytes"),
    ],
)
def test_invalid_queue_names_are_refused(queue_name: str, fragment: str) -> None:
    with pytest.raises(exceptions.InvalidDestination) as info:
        addressing.queue_name_for("/topic/ok", queue_name)
    assert fragment in str(info.value)


def test_longest_allowed_queue_name_leaves_room_for_the_dlq_prefix() -> None:
    name = "x" * 251
    assert addressing.queue_name_for("/topic/ok", name) == name
    assert len(addressing.dead_letter_queue(name)) == 255


def test_main_headers_match_the_earlier_releases(settings: conf.OutboxSettings) -> None:
    assert queues.subscribe_headers(settings, "orders") == {
        "durable": "true",
        "auto-delete": "false",
        "prefetch-count": "1",
        "exclusive": "false",
        "x-queue-name": "orders",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "DLQ.orders",
    }


def test_dead_letter_headers_match_the_earlier_releases(settings: conf.OutboxSettings) -> None:
    assert queues.dead_letter_destination("orders") == "/queue/DLQ.orders"
    assert queues.dead_letter_headers(settings, "orders") == {
        "durable": "true",
        "auto-delete": "false",
        "prefetch-count": "1",
        "exclusive": "false",
        "x-queue-name": "DLQ.orders",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "DLQ.DLQ.DLQ.orders",  # three prefixes, as 3.2.1 declares it
    }


def test_exclusive_and_prefetch_come_from_the_settings_for_both_queues() -> None:
    settings = conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_EXCLUSIVE_QUEUE": True,
            "DEFAULT_STOMP_QUEUE_HEADERS": {"durable": True, "prefetch-count": 50},
        }
    )
    main = queues.subscribe_headers(settings, "q")
    assert main["exclusive"] == "true"
    assert main["prefetch-count"] == "50"
    assert main["durable"] == "true"
    assert "auto-delete" not in main  # only what the settings say, as before
    assert queues.dead_letter_headers(settings, "q")["exclusive"] == "true"  # as 3.2.1: both exclusive


def test_settings_headers_are_never_mutated(settings: conf.OutboxSettings) -> None:
    before = dict(settings.DEFAULT_STOMP_QUEUE_HEADERS)
    main = queues.subscribe_headers(settings, "a")
    dlq = queues.dead_letter_headers(settings, "b")
    main["extra"] = "1"
    assert dict(settings.DEFAULT_STOMP_QUEUE_HEADERS) == before
    assert dict(conf.OutboxSettings().DEFAULT_STOMP_QUEUE_HEADERS) == before
    assert dlq["x-queue-name"] == "DLQ.b"
    assert queues.subscribe_headers(settings, "a")["x-queue-name"] == "a"


def test_user_extra_queue_arguments_are_passed_through() -> None:
    base = conf.OutboxSettings()
    settings = dataclasses.replace(
        base, DEFAULT_STOMP_QUEUE_HEADERS={**base.DEFAULT_STOMP_QUEUE_HEADERS, "x-max-priority": "5"}
    )
    assert queues.subscribe_headers(settings, "q")["x-max-priority"] == "5"
    assert queues.dead_letter_headers(settings, "q")["x-max-priority"] == "5"
