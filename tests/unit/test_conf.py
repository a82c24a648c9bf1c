from __future__ import annotations

import ssl

import pytest
from django.test import override_settings

from django_outbox_pattern import conf, exceptions

SPEC_DEFAULTS = {
    "DEFAULT_CONNECTION_CLASS": "stomp.StompConnection12",
    "DEFAULT_CONSUMER_LISTENER_CLASS": "django_outbox_pattern.listeners.ConsumerListener",
    "DEFAULT_GENERATE_HEADERS": "django_outbox_pattern.headers.generate_headers",
    "DEFAULT_MAXIMUM_BACKOFF": 3600,
    "DEFAULT_MAXIMUM_RETRY_ATTEMPTS": 50,
    "DEFAULT_PAUSE_FOR_RETRY": 240,
    "DEFAULT_WAIT_RETRY": 60,
    "DEFAULT_PRODUCER_LISTENER_CLASS": "django_outbox_pattern.listeners.ProducerListener",
    "DEFAULT_STOMP_HOST_AND_PORTS": (("127.0.0.1", 61613),),
    "DEFAULT_STOMP_HEARTBEATS": (3000, 3000),  # the spec said (10000, 10000): see conf.py
    "DEFAULT_STOMP_VHOST": "/",
    "DEFAULT_STOMP_USERNAME": "guest",
    "DEFAULT_STOMP_PASSCODE": "guest",
    "DEFAULT_STOMP_USE_SSL": False,
    "DEFAULT_STOMP_KEY_FILE": None,
    "DEFAULT_STOMP_CERT_FILE": None,
    "DEFAULT_STOMP_CA_CERTS": None,
    "DEFAULT_STOMP_CERT_VALIDATOR": None,
    "DEFAULT_STOMP_SSL_PASSWORD": None,
    "DEFAULT_EXCLUSIVE_QUEUE": False,
    "DAYS_TO_KEEP_DATA": 30,
    "REMOVE_DATA_CACHE_TTL": 86400,
    "OUTBOX_PATTERN_PUBLISHER_CACHE_KEY": "remove_old_messages_django_outbox_pattern_publisher",
    "OUTBOX_PATTERN_CONSUMER_CACHE_KEY": "remove_old_messages_django_outbox_pattern_consumer",
    "DEFAULT_PUBLISHED_CHUNK_SIZE": 200,
    "DEFAULT_PUBLISHED_CLASS": "django_outbox_pattern.models.Published",
    "DEFAULT_RECEIVED_CLASS": "django_outbox_pattern.models.Received",
    "DEFAULT_PRODUCER_WAITING_TIME": 1,
    "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND": False,
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": 90,
    "DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS": 3,
    "DEFAULT_CONSUMER_RETRY_WAIT": 2,
}


def test_every_spec_default() -> None:
    defaults = conf.OutboxSettings()
    for key, value in SPEC_DEFAULTS.items():
        assert getattr(defaults, key) == value, key
    assert dict(defaults.DEFAULT_STOMP_QUEUE_HEADERS) == {
        "durable": "true",
        "auto-delete": "false",
        "prefetch-count": "1",
    }


def test_ssl_defaults_to_a_modern_client_context() -> None:
    assert conf.OutboxSettings().ssl_version == ssl.PROTOCOL_TLS_CLIENT
    assert conf.OutboxSettings(DEFAULT_STOMP_SSL_VERSION=ssl.PROTOCOL_TLS).ssl_version == ssl.PROTOCOL_TLS


def test_override_settings_is_seen_lazily() -> None:
    before = conf.get_settings().DEFAULT_PUBLISHED_CHUNK_SIZE
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_PUBLISHED_CHUNK_SIZE": 7}):
        assert conf.get_settings().DEFAULT_PUBLISHED_CHUNK_SIZE == 7
    assert before == conf.get_settings().DEFAULT_PUBLISHED_CHUNK_SIZE


def test_from_mapping_normalises_types() -> None:
    s = conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_STOMP_HOST_AND_PORTS": [["broker", 61614], ("other", 61615)],
            "DEFAULT_STOMP_HEARTBEATS": [5000, 6000],
            "DEFAULT_STOMP_QUEUE_HEADERS": {"durable": True, "prefetch-count": 10},
            "DEFAULT_PRODUCER_WAITING_TIME": 0.25,
            "DEFAULT_PUBLISHED_CHUNK_SIZE": "50",
        }
    )
    assert s.DEFAULT_STOMP_HOST_AND_PORTS == (("broker", 61614), ("other", 61615))
    assert s.DEFAULT_STOMP_HEARTBEATS == (5000, 6000)
    assert dict(s.DEFAULT_STOMP_QUEUE_HEADERS) == {"durable": "true", "prefetch-count": "10"}
    assert s.queue_prefetch == 10
    assert s.DEFAULT_PRODUCER_WAITING_TIME == 0.25
    assert s.DEFAULT_PUBLISHED_CHUNK_SIZE == 50


def test_queue_headers_cannot_be_mutated() -> None:
    s = conf.OutboxSettings.from_mapping({"DEFAULT_STOMP_QUEUE_HEADERS": {"durable": "true"}})
    with pytest.raises(TypeError):
        s.DEFAULT_STOMP_QUEUE_HEADERS["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("mapping", "key", "fragment"),
    [
        (
            {"DEFAULT_STOMP_HOST_AND_PORT": []},
            "DEFAULT_STOMP_HOST_AND_PORT",
            "did you mean DEFAULT_STOMP_HOST_AND_PORTS",
        ),
        ({"DEFAULT_PUBLISHED_CHUNK_SIZE": 0}, "DEFAULT_PUBLISHED_CHUNK_SIZE", "between 1 and 10000"),
        ({"DEFAULT_PUBLISHED_CHUNK_SIZE": "many"}, "DEFAULT_PUBLISHED_CHUNK_SIZE", "whole number"),
        ({"DEFAULT_STOMP_USE_SSL": "yes"}, "DEFAULT_STOMP_USE_SSL", "True or False"),
        ({"DEFAULT_STOMP_HOST_AND_PORTS": [("h", 0)]}, "DEFAULT_STOMP_HOST_AND_PORTS", "port"),
        ({"DEFAULT_STOMP_HOST_AND_PORTS": "localhost:61613"}, "DEFAULT_STOMP_HOST_AND_PORTS", "pairs"),
        ({"DEFAULT_STOMP_HEARTBEATS": (1,)}, "DEFAULT_STOMP_HEARTBEATS", "two"),
        ({"DEFAULT_MAXIMUM_BACKOFF": -1}, "DEFAULT_MAXIMUM_BACKOFF", "at least 0"),
    ],
)
def test_invalid_settings_are_reported(mapping: dict[str, object], key: str, fragment: str) -> None:
    problems = conf.validate(mapping)
    assert [p[0] for p in problems] == [key]
    assert fragment in problems[0][1] + " " + problems[0][2]
    with pytest.raises(exceptions.ConfigurationError, match=key):
        conf.OutboxSettings.from_mapping(mapping)


def test_public_dict_masks_secrets() -> None:
    s = conf.OutboxSettings(DEFAULT_STOMP_PASSCODE="s3cret-pass", DEFAULT_STOMP_SSL_PASSWORD="k3y-pass")
    shown = repr(s) + str(s.public_dict())
    assert "s3cret-pass" not in shown
    assert "k3y-pass" not in shown
    assert s.public_dict()["DEFAULT_STOMP_PASSCODE"] == "********"


def test_import_object_error_is_clear() -> None:
    with pytest.raises(exceptions.ConfigurationError, match=r"Cannot import 'no\.such\.thing'"):
        conf.import_object("no.such.thing")


def test_import_object_reports_a_module_that_fails_on_import() -> None:
    with pytest.raises(exceptions.ConfigurationError, match="RuntimeError: this module is broken on purpose"):
        conf.import_object("tests.support.broken_callbacks.handle")


@pytest.mark.parametrize("key", sorted(conf.SECRET_KEYS))
@pytest.mark.parametrize("value", [["s3cret-in-a-list"], 424242, b"s3cret-bytes"])
def test_a_malformed_secret_is_reported_without_its_value(key: str, value: object) -> None:
    problems = conf.validate({key: value})
    assert [p[0] for p in problems] == [key]
    shown = " ".join(problems[0]) + repr(problems)
    assert "s3cret" not in shown and "424242" not in shown
    assert "value (hidden)" in problems[0][1]
