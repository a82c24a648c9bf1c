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
def test_an_invalid_value_is_an_error_and_an_unknown_key_a_warning_with_hints() -> None:
    found = checks.check_settings()  # unknown keys: a warning since 3.x ignored them (was E001)
    assert ids(found) == ["django_outbox_pattern.E001", "django_outbox_pattern.W010"]
    assert "DEFAULT_PUBLISHED_CHUNK_SIZE" in found[0].msg
    assert "did you mean DEFAULT_STOMP_PASSCODE?" in found[1].hint


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


@pytest.mark.django_db
def test_a_reachable_database_passes_the_probe_check() -> None:
    assert "django_outbox_pattern.E005" not in ids(checks.check_database(databases=["default"]))


def test_an_unreachable_database_is_e005_with_the_probe_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_outbox_pattern.ops import probes

    down = probes.CheckResult("database", "fail", "database 'default' is not reachable: refused", "Start it.")
    monkeypatch.setattr(probes, "database", lambda alias="default": down)
    [error] = [m for m in checks.check_database(databases=["default"]) if m.id.endswith("E005")]
    assert error.msg == down.detail and error.hint == "Start it."
    assert checks.check_database() == [m for m in checks.check_database() if m.id.endswith("W001")]


@pytest.mark.django_db  # Django 6 runs database checks in `check` too
def test_manage_py_check_fails_on_bad_settings() -> None:
    with (
        override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_STOMP_HOST_AND_PORTS": "rabbit:61613"}),
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


@isolate_apps("tests.testapp")
def test_an_ordering_key_that_names_nothing_is_an_error() -> None:
    @publish(
        [Config(destination="/topic/a", ordering_key="customer"), Config("/topic/b", ordering_key="ref")]
    )
    class Keyed(models.Model):
        ref = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    found = checks.check_model_configs(Keyed)
    assert ids(found) == ["django_outbox_pattern.E006"]
    assert "'customer'" in found[0].msg
