"""``outboxctl subscribe``: the wiring (STAND-IN consumer) and the real consumer (skipped until merged)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.models import Received
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import child_env, cli_command

# --- wiring, with the STAND-IN consumer ---------------------------------------------------------------------


def test_arguments_reach_the_consumer(cli, consumer_standin) -> None:
    consumer_standin.sigterm_self = True
    result = cli("subscribe", "myapp.callbacks.handle", "/topic/orders.v1", "orders", "--json")
    assert result.exit_code == 0, result.output
    assert consumer_standin.args == ("myapp.callbacks.handle", "/topic/orders.v1", "orders")
    assert isinstance(consumer_standin.kwargs["settings"], conf.OutboxSettings)
    assert json.loads(result.stdout) == {
        "processed": 3,
        "duplicates": 1,
        "nacked": 0,
        "errors": 0,
        "reconnects": 0,
    }
    assert "Consuming /topic/orders.v1 (queue orders)" in result.stderr


def test_queue_name_is_optional(cli, consumer_standin) -> None:
    consumer_standin.sigterm_self = True
    result = cli("subscribe", "myapp.callbacks.handle", "/queue/jobs")
    assert result.exit_code == 0, result.output
    assert consumer_standin.args == ("myapp.callbacks.handle", "/queue/jobs", None)
    assert "Consumer stopped: processed 3, duplicates 1" in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (exceptions.CallbackImportError(), ExitCode.USAGE),
        (exceptions.InvalidDestination(), ExitCode.USAGE),
        (exceptions.ConnectionFailed(), ExitCode.BROKER_UNAVAILABLE),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_errors(cli, consumer_standin, error, code) -> None:
    consumer_standin.error = error
    result = cli("subscribe", "x.y", "/topic/x")
    assert result.exit_code == code
    assert "Traceback" not in result.output


def test_missing_arguments_are_a_usage_error(cli, consumer_standin) -> None:
    result = cli("subscribe", "only.callback")
    assert result.exit_code == ExitCode.USAGE
    assert "Missing argument 'DESTINATION'" in result.output


# --- the real consumer (needs the consumer branch) ------------------------------------------------------


@pytest.mark.django_db
def test_real_consumer_bad_callback(cli) -> None:
    result = cli("subscribe", "tests.cli.callbacks.nope", "/topic/x", "x")
    assert result.exit_code == ExitCode.USAGE
    assert "nope" in result.stderr


@pytest.mark.django_db
def test_real_consumer_bad_destination(cli) -> None:
    assert cli("subscribe", "tests.cli.callbacks.record", "not-a-destination").exit_code == ExitCode.USAGE


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_real_subprocess_subscribe_saves_and_stops_on_sigterm(outbox_settings, unique_name) -> None:
    destination = f"/topic/{unique_name}"
    command = cli_command("subscribe", "tests.cli.callbacks.record", destination, unique_name, "--json")
    child = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sender = transport.StompTransport(outbox_settings)
    sender.connect()
    try:
        deadline = time.monotonic() + 30
        n = 0
        while not Received.objects.exists():  # resend until the consumer's queue is bound and it saved one
            assert time.monotonic() < deadline, "the consumer saved nothing"
            assert child.poll() is None, child.communicate()
            receipt = wire.new_receipt_id()
            sender.send(
                destination, json.dumps({"n": n}), {"dop-msg-id": f"{unique_name}-{n}"}, receipt=receipt
            )
            sender.wait_for_receipts([receipt], 5)
            n += 1
            poll_until = time.monotonic() + 0.5
            while time.monotonic() < poll_until and not Received.objects.exists():
                time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        sender.disconnect()
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert json.loads(out)["processed"] >= 1
