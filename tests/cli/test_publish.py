"""``outboxctl publish``: the relay's wiring (STAND-IN engine) and the real relay (skipped until merged)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import time

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.models import Published
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import child_env, cli_command, make_published, run_cli
from tests.cli.standins import StandInBatch

pytestmark = pytest.mark.django_db  # --once / --until-empty read the outbox table before running

# --- wiring, with the STAND-IN relay ------------------------------------------------------------------------


def test_flags_reach_the_relay_and_the_settings(cli, relay_standin, broker_available) -> None:
    result = cli("publish", "--once", "--chunk-size", "7", "--poll-interval", "0.5", "--no-notify")
    assert result.exit_code == 0, result.output
    settings = relay_standin.args[0]
    assert isinstance(settings, conf.OutboxSettings)
    assert settings.DEFAULT_PUBLISHED_CHUNK_SIZE == 7
    assert settings.DEFAULT_PRODUCER_WAITING_TIME == 0.5
    assert settings.DEFAULT_RELAY_NOTIFY is False
    observer = relay_standin.kwargs.pop("observer")
    assert relay_standin.kwargs == {}  # the flags are applied once, in the settings
    assert type(observer) is observing.NullObserver  # no --metrics-port / --health-file


def test_defaults_pass_none(cli, relay_standin, broker_available) -> None:
    assert cli("publish", "--once").exit_code == 0
    relay_standin.kwargs.pop("observer")
    assert relay_standin.kwargs == {}
    defaults = conf.get_settings()
    chosen = relay_standin.args[0]
    assert chosen.DEFAULT_PUBLISHED_CHUNK_SIZE == defaults.DEFAULT_PUBLISHED_CHUNK_SIZE
    assert chosen.DEFAULT_PRODUCER_WAITING_TIME == defaults.DEFAULT_PRODUCER_WAITING_TIME


def test_once_stops_after_the_first_batch(cli, relay_standin, broker_available) -> None:
    relay_standin.batches = [StandInBatch(published=5, failed=1, retried=1), StandInBatch(published=9)]
    result = cli("publish", "--once", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["batches"], report["published"], report["failed"], report["retried"]) == (1, 5, 1, 1)
    assert set(report) == {
        "batches",
        "published",
        "failed",
        "retried",
        "dead_lettered",
        "elapsed_seconds",
        "rate_per_second",
    }
    assert relay_standin.built.calls == ["run(until_empty=False, once=True)"]


def test_until_empty_sums_every_batch(cli, relay_standin, broker_available) -> None:
    relay_standin.batches = [
        StandInBatch(published=3),
        StandInBatch(published=2, dead_lettered=1),
        StandInBatch(published=4),
    ]
    result = cli("publish", "--until-empty")
    assert result.exit_code == 0, result.output
    assert "Outbox drained: published 9" in result.stdout
    assert "dead-lettered 1" in result.stdout
    assert relay_standin.built.calls == ["run(until_empty=True, once=False)"]


def test_until_empty_with_nothing_due(cli, relay_standin, broker_available) -> None:
    result = cli("publish", "--until-empty", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["published"] == 0
    assert relay_standin.built.calls == ["run(until_empty=True, once=False)"]


@pytest.mark.parametrize("mode", ["--once", "--until-empty"])
def test_one_shot_runs_fail_fast_when_the_broker_is_down(cli, relay_standin, mode: str) -> None:
    result = cli("publish", mode, env={"OUTBOXCTL_BROKER_HOSTS": "127.0.0.1:9"})
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE
    assert "Could not connect to the broker at 127.0.0.1:9" in result.stderr
    assert relay_standin.built is None  # the relay was never built


def test_sigterm_stops_the_relay_gracefully(cli, relay_standin) -> None:
    relay_standin.sigterm_self = True
    relay_standin.batches = [StandInBatch(published=2)]
    result = cli("publish")
    assert result.exit_code == 0, result.output
    assert "stop" in relay_standin.built.calls
    assert "Relay stopped: published 2" in result.stderr
    assert result.stdout == ""


def test_once_and_until_empty_exclude_each_other(cli, relay_standin) -> None:
    result = cli("publish", "--once", "--until-empty")
    assert result.exit_code == ExitCode.USAGE
    assert relay_standin.built is None


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (exceptions.ConnectionFailed(), ExitCode.BROKER_UNAVAILABLE, "rabbitmq_stomp plugin"),
        (exceptions.StorageError(), ExitCode.DATABASE_UNAVAILABLE, "database could not be reached"),
        (exceptions.OutboxError("wake-up listener died"), ExitCode.ERROR, "wake-up listener died"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "Interrupted."),
        (RuntimeError("boom"), ExitCode.ERROR, "RuntimeError: boom"),
    ],
)
def test_engine_errors_become_exit_codes(cli, relay_standin, error, code, text) -> None:
    relay_standin.error = error
    result = cli("publish")
    assert result.exit_code == code
    assert text in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_traceback_only_with_vv(cli, relay_standin) -> None:
    relay_standin.error = RuntimeError("boom")
    assert "Traceback" in cli("-vv", "publish").stderr
    assert "Traceback" not in cli("-v", "publish").stderr


def test_bad_chunk_size_is_a_usage_error(cli, relay_standin) -> None:
    assert cli("publish", "--chunk-size", "0").exit_code == ExitCode.USAGE


# --- the real relay (needs the relay branch) ------------------------------------------------------------


def listen(settings: conf.OutboxSettings, destination: str) -> tuple[transport.StompTransport, queue.Queue]:
    got: queue.Queue[wire.Message] = queue.Queue()
    conn = transport.StompTransport(settings)
    conn.connect()
    conn.set_message_handler(got.put)
    conn.subscribe(destination, "listen", {}, ack="auto")
    barrier = wire.new_receipt_id()
    conn.send("/topic/outboxctl.test.barrier", "", {}, receipt=barrier)
    assert conn.wait_for_receipts([barrier], 10) == {barrier}
    return conn, got


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_real_relay_until_empty(cli, outbox_settings, unique_name) -> None:
    destination = f"/topic/{unique_name}"
    conn, got = listen(outbox_settings, destination)
    rows = make_published(5, destination=destination)
    result = cli("publish", "--until-empty", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["published"] == 5
    assert {got.get(timeout=10).headers["dop-msg-id"] for _ in rows} == {str(r.id) for r in rows}
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}
    conn.disconnect()


@pytest.mark.django_db(transaction=True)
def test_real_relay_broker_down_exits_3(cli) -> None:
    make_published(1)
    result = cli("publish", "--once", env={"OUTBOXCTL_BROKER_HOSTS": "127.0.0.1:9"})
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE, result.output


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_real_subprocess_publish_until_empty(outbox_settings, unique_name) -> None:
    make_published(3, destination=f"/topic/{unique_name}")
    done = run_cli("publish", "--until-empty", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"] == 3
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_real_subprocess_publish_stops_on_sigterm(outbox_settings, unique_name) -> None:
    rows = make_published(2, destination=f"/topic/{unique_name}")
    command = cli_command("publish", "--poll-interval", "0.1")
    child = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while (
            Published.objects.filter(id__in=[r.id for r in rows], status=StatusChoice.SUCCEEDED).count() < 2
        ):
            assert time.monotonic() < deadline, "the relay did not publish the rows"
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert "Relay stopped: published 2" in err


def test_live_status_only_on_a_terminal(cli, relay_standin, broker_available) -> None:
    relay_standin.batches = [StandInBatch(published=3), StandInBatch(published=4)]
    on_terminal = cli("publish", "--until-empty", env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    assert on_terminal.exit_code == 0, on_terminal.output
    assert "relay: published 7" in on_terminal.stderr
    piped = cli("publish", "--until-empty")
    assert piped.stderr == ""
