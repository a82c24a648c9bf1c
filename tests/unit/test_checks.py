from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from django_outbox_pattern import checks
from django_outbox_pattern.decorators import Config, publish


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_valid_settings_pass() -> None:
    assert checks.check_settings() == []


@override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_PASSCOD": "x", "DEFAULT_PUBLISHED_CHUNK_SIZE": -5})
def test_unknown_and_invalid_keys_are_errors_with_hints() -> None:
    errors = checks.check_settings()
    assert ids(errors) == ["django_outbox_pattern.E001", "django_outbox_pattern.E001"]
    assert "did you mean DEFAULT_STOMP_PASSCODE?" in errors[0].hint


@override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_GENERATE_HEADERS": "nowhere.headers"})
def test_unimportable_path_is_an_error() -> None:
    assert ids(checks.check_settings()) == ["django_outbox_pattern.E002"]


@isolate_apps("tests.testapp")
def test_missing_serializer_and_field_are_errors() -> None:
    @publish(
        [Config(destination="/topic/a", serializer="nope"), Config(destination="/topic/b", fields=["ghost"])]
    )
    class Broken(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    found = checks.check_model_configs(Broken)
    assert ids(found) == ["django_outbox_pattern.E003", "django_outbox_pattern.E004"]
    assert "nope" in found[0].msg
    assert "ghost" in found[1].msg


def test_sqlite_relaying_warns() -> None:
    from django.db import connection

    expected = ["django_outbox_pattern.W001"] if connection.vendor == "sqlite" else []
    assert ids(checks.check_database()) == expected


@pytest.mark.django_db  # Django 6 runs database checks in `check` too
def test_manage_py_check_fails_on_bad_settings() -> None:
    with (
        override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_USE_SSL": "maybe"}),
        pytest.raises(SystemCheckError, match="E001"),
    ):
        call_command("check")
    call_command("check")  # and passes on the good ones


QUORUM = {"durable": "true", "auto-delete": "false", "prefetch-count": "1", "x-queue-type": "quorum"}


def test_quorum_queue_with_the_default_properties_passes() -> None:
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_QUEUE_HEADERS": QUORUM}):
        assert checks.check_queue_type() == []
    assert checks.check_queue_type() == []  # classic stays the default


@pytest.mark.parametrize(
    ("outbox", "expected"),
    [
        ({"DEFAULT_EXCLUSIVE_QUEUE": True}, ["E010"]),
        ({"DEFAULT_STOMP_QUEUE_HEADERS": {**QUORUM, "exclusive": "true"}}, ["E010"]),
        ({"DEFAULT_STOMP_QUEUE_HEADERS": {**QUORUM, "auto-delete": True}}, ["E011"]),
        ({"DEFAULT_STOMP_QUEUE_HEADERS": {"x-queue-type": "quorum"}}, ["E011"]),  # not durable
        (
            {"DEFAULT_EXCLUSIVE_QUEUE": True, "DEFAULT_STOMP_QUEUE_HEADERS": {"x-queue-type": "Quorum"}},
            ["E010", "E011"],
        ),
        ({"DEFAULT_STOMP_QUEUE_HEADERS": {**QUORUM, "x-queue-type": "stream"}}, ["E012"]),
    ],
)
def test_quorum_queue_combinations_rabbitmq_refuses_are_errors(
    outbox: dict[str, Any], expected: list[str]
) -> None:
    mapping = {"DEFAULT_STOMP_QUEUE_HEADERS": QUORUM, **outbox}
    with override_settings(DJANGO_OUTBOX_PATTERN=mapping):
        found = checks.check_queue_type()
    assert ids(found) == [f"django_outbox_pattern.{code}" for code in expected]
    assert all(message.hint for message in found)


def test_invalid_settings_leave_queue_type_to_e001() -> None:
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_QUEUE_HEADERS": "quorum"}):
        assert checks.check_queue_type() == []
