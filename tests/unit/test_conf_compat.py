"""Settings are read as 3.x read them: unknown keys warn, coerced values warn, only unusable values fail
(at `check` and at the start of publish/subscribe, never on the write path)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from django.test import override_settings

from django_outbox_pattern import checks, conf, exceptions
from django_outbox_pattern.consuming import assembly as consumer_assembly
from django_outbox_pattern.relaying import assembly as relay_assembly


def check_ids(mapping: dict[str, Any], **top_level: Any) -> list[str]:
    with override_settings(DJANGO_OUTBOX_PATTERN=mapping, **top_level):
        return [m.id.rsplit(".", 1)[-1] for m in checks.check_settings()]


def read(mapping: dict[str, Any]) -> conf.OutboxSettings:
    return conf.OutboxSettings.from_mapping(mapping)


def test_an_unknown_key_is_a_warning_with_a_hint_and_is_ignored() -> None:
    found = conf.review({"DEFAULT_STOMP_PASSCOD": "x", "DEFAULT_STOMP_VHOST": "/v"})
    assert [(k, h) for k, _, h in found.unknown] == [
        ("DEFAULT_STOMP_PASSCOD", "did you mean DEFAULT_STOMP_PASSCODE?")
    ]
    assert found.errors == [] and found.values == {"DEFAULT_STOMP_VHOST": "/v"}
    assert check_ids({"DEFAULT_STOMP_PASSCOD": "x"}) == ["W010"]
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_PASSCOD": "x", "DEFAULT_STOMP_VHOST": "/v"}):
        assert conf.get_settings().DEFAULT_STOMP_VHOST == "/v"  # no ConfigurationError


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("DEFAULT_STOMP_HOST_AND_PORTS", [("rabbit", "61613")], (("rabbit", 61613),)),
        ("DEFAULT_STOMP_HEARTBEATS", (5000.0, 2500.4), (5000, 2500)),
        ("DEFAULT_STOMP_USE_SSL", 1, True),
        ("DEFAULT_STOMP_USE_SSL", "false", True),  # 3.x tested truth: a non-empty string is true
        ("DEFAULT_STOMP_USE_SSL", 0, False),
        ("DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND", "yes", True),
        ("DEFAULT_EXCLUSIVE_QUEUE", "True", True),  # 3.x sent str(value); RabbitMQ reads "True" as true
        ("DEFAULT_EXCLUSIVE_QUEUE", 1, False),  # ... and ignores "1": the queue was never exclusive
        ("DEFAULT_STOMP_SSL_VERSION", "PROTOCOL_TLS_CLIENT", ssl.PROTOCOL_TLS_CLIENT),
        ("DEFAULT_STOMP_SSL_VERSION", "ssl.PROTOCOL_TLS", ssl.PROTOCOL_TLS),
        ("DEFAULT_STOMP_SSL_VERSION", "TLS_CLIENT", ssl.PROTOCOL_TLS_CLIENT),
        ("DEFAULT_STOMP_SSL_VERSION", "TLSv9", None),  # stomp.py 8 ignored it: the modern default
        ("DEFAULT_MAXIMUM_RETRY_ATTEMPTS", 50.0, 50),
        ("DEFAULT_PUBLISHED_CHUNK_SIZE", 50000, 10000),
    ],
)
def test_values_3x_coerced_are_coerced_the_same_way_with_a_warning(
    key: str, value: Any, expected: Any
) -> None:
    assert getattr(read({key: value}), key) == expected
    no_effect = ["W012"] if key == "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND" else []  # accepted, unused
    assert check_ids({key: value}) == ["W011", *no_effect]


def test_a_numeric_string_is_accepted_silently_as_before() -> None:
    assert read({"DEFAULT_PUBLISHED_CHUNK_SIZE": "50"}).DEFAULT_PUBLISHED_CHUNK_SIZE == 50
    assert check_ids({"DEFAULT_PUBLISHED_CHUNK_SIZE": "50", "DEFAULT_STOMP_USE_SSL": False}) == []


def test_a_shutdown_timeout_of_none_means_no_limit() -> None:
    assert read({"DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": None}).DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT is None
    assert check_ids({"DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": None}) == []


def test_heartbeat_overrides_win_per_direction() -> None:
    base = {"DEFAULT_STOMP_HEARTBEATS": (1000, 2000)}
    assert read(base).DEFAULT_STOMP_HEARTBEATS == (1000, 2000)
    assert read({**base, "DEFAULT_STOMP_OUTGOING_HEARTBEAT": 0}).DEFAULT_STOMP_HEARTBEATS == (0, 2000)
    assert read({"DEFAULT_STOMP_INCOMING_HEARTBEAT": "4000"}).DEFAULT_STOMP_HEARTBEATS == (10000, 4000)
    top = {"STOMP_OUTGOING_HEARTBEAT": 7000, "STOMP_INCOMING_HEARTBEAT": 8000}
    assert conf.OutboxSettings.from_mapping(base, top).DEFAULT_STOMP_HEARTBEATS == (7000, 8000)
    both = {**base, "DEFAULT_STOMP_INCOMING_HEARTBEAT": 9000}
    assert conf.OutboxSettings.from_mapping(both, top).DEFAULT_STOMP_HEARTBEATS == (7000, 9000)
    assert check_ids({"DEFAULT_STOMP_OUTGOING_HEARTBEAT": 0}) == []  # documented by 3.x: not unknown


def test_top_level_django_heartbeat_settings_are_read_lazily() -> None:
    before = conf.get_settings().DEFAULT_STOMP_HEARTBEATS
    assert before != (3000, 4000)
    with override_settings(STOMP_OUTGOING_HEARTBEAT=3000, STOMP_INCOMING_HEARTBEAT=4000.0):
        assert conf.get_settings().DEFAULT_STOMP_HEARTBEATS == (3000, 4000)
    assert before == conf.get_settings().DEFAULT_STOMP_HEARTBEATS


@pytest.mark.parametrize(
    ("mapping", "top_level", "key"),
    [
        ({"DEFAULT_STOMP_HOST_AND_PORTS": "rabbit:61613"}, {}, "DEFAULT_STOMP_HOST_AND_PORTS"),
        ({"DEFAULT_STOMP_HEARTBEATS": ("fast", 0)}, {}, "DEFAULT_STOMP_HEARTBEATS"),
        ({"DEFAULT_STOMP_OUTGOING_HEARTBEAT": -1}, {}, "DEFAULT_STOMP_OUTGOING_HEARTBEAT"),
        ({}, {"STOMP_INCOMING_HEARTBEAT": "often"}, "STOMP_INCOMING_HEARTBEAT"),
        ({"DEFAULT_PUBLISHED_CHUNK_SIZE": 0}, {}, "DEFAULT_PUBLISHED_CHUNK_SIZE"),
        ({"DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": "soon"}, {}, "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT"),
    ],
)
def test_unusable_values_fail_loudly_at_check_and_at_startup(
    mapping: dict[str, Any], top_level: dict[str, Any], key: str
) -> None:
    assert check_ids(mapping, **top_level) == ["E001"]
    with override_settings(DJANGO_OUTBOX_PATTERN=mapping, **top_level):
        with pytest.raises(exceptions.ConfigurationError, match=key) as failed:
            conf.get_settings()
        assert "manage.py check" in str(failed.value)
        with pytest.raises(exceptions.ConfigurationError, match=key):
            relay_assembly.build_relay()  # `publish`
        with pytest.raises(exceptions.ConfigurationError, match=key):
            consumer_assembly.build_consumer(lambda payload: None, "/topic/orders")  # `subscribe`
        lenient = conf.get_settings(strict=False)  # the write path: the default instead
        assert getattr(lenient, key, None) == getattr(conf.DEFAULTS, key, None)


def test_warnings_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    mapping = {"DEFAULT_STOMP_USE_SSL": "no-such-flag-value-" + str(id(caplog))}
    for _ in range(2):
        with override_settings(DJANGO_OUTBOX_PATTERN=mapping):
            conf.get_settings()
    logged = [r for r in caplog.records if getattr(r, "action", "") == "settings_problem_found"]
    assert len(logged) == 1 and "DEFAULT_STOMP_USE_SSL" in logged[0].getMessage()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mapping",
    [
        {"DEFAULT_STOMP_OUTGOING_HEARTBEAT": 0, "SOME_KEY_OF_A_LATER_RELEASE": 1},  # 3.x README keys, unknown
        {"DEFAULT_STOMP_HOST_AND_PORTS": "rabbit:61613"},  # unusable: the relay fails on it, saves do not
    ],
)
def test_the_write_path_never_fails_because_of_the_settings(mapping: dict[str, Any]) -> None:
    from django_outbox_pattern.models import Published
    from tests.testapp.models import MyModel

    with override_settings(DJANGO_OUTBOX_PATTERN=mapping):
        row = Published.objects.create(destination="/topic/a", body={"n": 1})
        MyModel.objects.create(field_one="saved", field_two="too")
    assert row.headers["dop-msg-id"] == str(row.id)
    assert Published.objects.filter(destination="/topic/my_route_key").count() == 1
