"""The pytest plugin, used by a project's own tests (the sample app tests.testapp), run in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SAMPLE_TESTS = """
import json

import pytest

from django_outbox_pattern.models import Published
from django_outbox_pattern.testkit import OutboxTestHelper
from tests.testapp.models import MyModel, VersionedModel


def test_assert_published_finds_the_row(outbox):
    obj = MyModel.objects.create(field_one="a", field_two="b")
    rows = outbox.assert_published(
        "/topic/my_route_key", body={"id": obj.pk, "field_one": "a", "field_two": "b"}, count=1
    )
    assert outbox.published() == rows
    assert outbox.published("/topic/other") == []


def test_assert_published_matches_a_subset_of_headers(outbox):
    Published.objects.create(destination="/queue/h", body={"a": 1}, headers={"tenant": "acme"})
    Published.objects.create(destination="/queue/h", body={"a": 2}, headers={"tenant": "other"})
    [row] = outbox.assert_published("/queue/h", headers={"tenant": "acme"})
    assert row.body == {"a": 1}
    outbox.assert_published("/queue/h", count=2)
    outbox.assert_published("/queue/h", body='{"a": 2}')


def test_expected_failure_wrong_body(outbox):
    MyModel.objects.create(field_one="a", field_two="b")
    MyModel.objects.create(field_one="zzz", field_two="yyy")
    outbox.assert_published("/topic/my_route_key", body={"id": 1, "field_one": "A", "field_two": "b"})


def test_expected_failure_wrong_count(outbox):
    MyModel.objects.create(field_one="a", field_two="b")
    outbox.assert_published("/topic/my_route_key", count=2)


def test_expected_failure_versioned_destination(outbox):
    VersionedModel.objects.create(field_one="a", field_two="b")
    outbox.assert_published("/topic/my_route_key")


def test_expected_failure_empty_outbox(outbox):
    outbox.assert_published("/topic/my_route_key")


def test_drain_relays_every_row_into_the_memory_broker(outbox, memory_broker):
    first = MyModel.objects.create(field_one="a", field_two="b")
    MyModel.objects.create(field_one="c", field_two="d")
    sent = outbox.drain()
    assert [m.destination for m in sent] == ["/topic/my_route_key"] * 2
    assert json.loads(sent[0].body) == {"id": first.pk, "field_one": "a", "field_two": "b"}
    assert sent[0].headers["dop-msg-destination"] == "/topic/my_route_key"
    assert outbox.pending() == []
    assert outbox.sent == sent == memory_broker.sent
    assert outbox.drain() == []


@pytest.mark.django_db(transaction=True)
def test_drain_in_a_transactional_test(outbox):
    MyModel.objects.create(field_one="a", field_two="b")
    assert len(outbox.drain()) == 1
    assert Published.objects.get().published_at is not None


def test_the_helper_works_without_the_fixture(db):
    helper = OutboxTestHelper()
    MyModel.objects.create(field_one="a", field_two="b")
    helper.assert_published("/topic/my_route_key", count=1)
    assert len(helper.drain()) == 1
"""


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """Run the sample tests once: ({test name: outcome}, {test name: failure text})."""
    workdir = tmp_path_factory.mktemp("project")
    (workdir / "test_sample.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    junit = workdir / "junit.xml"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "OUTBOX_TEST_DB": "sqlite",
        "OUTBOX_TEST_DB_NAME": f"{os.environ.get('OUTBOX_TEST_DB_NAME', 'outbox')}_plugin",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if not any(e.name == "django_outbox_pattern" for e in entry_points(group="pytest11")):
        command += ["-p", "django_outbox_pattern.pytest_plugin"]  # not pip-installed: load it by name
    command += ["-q", "--rootdir", str(workdir), f"--junitxml={junit}", str(workdir / "test_sample.py")]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert junit.exists(), result.stdout + result.stderr
    outcomes: dict[str, str] = {}
    failures: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        failure = case.find("failure")
        error = case.find("error")
        if failure is not None:
            outcomes[name] = "failed"
            failures[name] = failure.get("message", "") + (failure.text or "")
        elif error is not None:
            outcomes[name] = "error"
            failures[name] = error.get("message", "") + (error.text or "")
        else:
            outcomes[name] = "passed"
    return outcomes, failures


def test_passing_sample_tests_pass(sample_run: tuple[dict[str, str], dict[str, str]]) -> None:
    outcomes, failures = sample_run
    expected_to_pass = {name for name in outcomes if "expected_failure" not in name}
    assert len(expected_to_pass) == 5
    broken = {name: failures.get(name, "") for name in expected_to_pass if outcomes[name] != "passed"}
    assert not broken, broken


def test_a_wrong_body_shows_the_rows_and_a_diff(sample_run: tuple[dict[str, str], dict[str, str]]) -> None:
    outcomes, failures = sample_run
    assert outcomes["test_expected_failure_wrong_body"] == "failed"
    text = failures["test_expected_failure_wrong_body"]
    assert "expected at least one outbox row(s) for '/topic/my_route_key', found 0 matching" in text
    assert "Rows for '/topic/my_route_key':" in text
    assert "Diff of the expected body (-) against the closest row (+):" in text
    assert '-  "field_one": "A",' in text
    assert '+  "field_one": "a",' in text  # the closest row is chosen, not the first or the last


def test_a_wrong_count_says_how_many_matched(sample_run: tuple[dict[str, str], dict[str, str]]) -> None:
    outcomes, failures = sample_run
    assert outcomes["test_expected_failure_wrong_count"] == "failed"
    assert (
        "expected 2 outbox row(s) for '/topic/my_route_key', found 1 matching"
        in failures["test_expected_failure_wrong_count"]
    )


def test_a_versioned_destination_gets_a_hint(sample_run: tuple[dict[str, str], dict[str, str]]) -> None:
    outcomes, failures = sample_run
    assert outcomes["test_expected_failure_versioned_destination"] == "failed"
    assert "'/topic/my_route_key.v1'" in failures["test_expected_failure_versioned_destination"]


def test_an_empty_outbox_gets_a_hint(sample_run: tuple[dict[str, str], dict[str, str]]) -> None:
    outcomes, failures = sample_run
    assert outcomes["test_expected_failure_empty_outbox"] == "failed"
    assert "The outbox is empty" in failures["test_expected_failure_empty_outbox"]


def test_the_plugin_imports_nothing_from_django_at_load_time() -> None:
    code = "import sys, django_outbox_pattern.pytest_plugin; print('django' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
