"""`python -m django subscribe ...` in a real subprocess: SIGTERM finishes the current message and exits 0."""

from __future__ import annotations

import pathlib
import signal
import socket
import time

import pytest

from tests.support.processes import Subscriber, subprocess_env
from tests.support.runner import wait_until
from tests.support.stomp_tools import assert_queue_empty, declare, publish, read, settings_with
from tests.testapp.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker, pytest.mark.slow]


def queue_with(unique_name: str, *ids: str) -> str:
    """/queue/<unique> declared as the consumer declares it, holding messages with these ids."""
    destination = f"/queue/{unique_name}"
    settings = settings_with()
    declare(settings, destination, unique_name)
    publish(settings, f"/amq/queue/{unique_name}", [(f'{{"id": "{i}"}}', {"dop-msg-id": i}) for i in ids])
    return destination


def test_sigterm_stops_the_subscribe_command_with_exit_0(unique_name: str, broker_available: None) -> None:
    destination = queue_with(unique_name, "a", "b", "c")
    with Subscriber("tests.support.callbacks.save_order", destination, env=subprocess_env()) as sub:
        assert wait_until(lambda: Order.objects.count() == 3 or sub.proc.poll() is not None, timeout=30), (
            sub.stderr
        )
        sub.terminate()
        assert sub.wait(30) == 0, sub.stderr
    assert sorted(Order.objects.values_list("msg_id", flat=True)) == ["a", "b", "c"]
    assert_queue_empty(settings_with(), unique_name)


def test_sigterm_lets_the_current_callback_finish_and_takes_no_more(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    destination = queue_with(unique_name, "first", "second")
    env = subprocess_env("tests.support.consumer_settings")
    env["OUTBOX_TEST_MARKERS"] = str(tmp_path)
    with Subscriber("tests.support.callbacks.slow_save_order", destination, env=env) as sub:
        assert wait_until(lambda: (tmp_path / "started-first").exists() or sub.proc.poll() is not None), (
            sub.stderr
        )
        sub.terminate()
        assert sub.wait_for_line("finishing current work"), sub.stderr
        (tmp_path / "release").touch()  # the callback in flight may finish now
        assert sub.wait(30) == 0, sub.stderr
    assert list(Order.objects.values_list("msg_id", flat=True)) == ["first"]
    assert not (tmp_path / "started-second").exists()
    left = read(settings_with(), unique_name, 1)  # "first" was acked: "second" is next in line
    assert [m.headers["dop-msg-id"] for m in left] == ["second"]


def test_a_second_signal_exits_at_once_with_130(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    destination = queue_with(unique_name, "stuck")
    env = subprocess_env("tests.support.consumer_settings")
    env["OUTBOX_TEST_MARKERS"] = str(tmp_path)
    with Subscriber("tests.support.callbacks.slow_save_order", destination, env=env) as sub:
        assert wait_until(lambda: (tmp_path / "started-stuck").exists() or sub.proc.poll() is not None), (
            sub.stderr
        )
        sub.terminate()
        assert sub.wait_for_line("finishing current work"), sub.stderr
        sub.proc.send_signal(signal.SIGINT)
        assert sub.wait(10) == 130, sub.stderr
    assert not Order.objects.exists()
    left = read(settings_with(), unique_name, 1)  # never acked: the broker kept it
    assert [m.headers["dop-msg-id"] for m in left] == ["stuck"]


def test_a_signal_during_connection_retries_exits_promptly(unique_name: str) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = subprocess_env(
        "tests.support.consumer_settings",
        DEFAULT_STOMP_HOST_AND_PORTS=[["127.0.0.1", port]],
        DEFAULT_RETRY_BASE_DELAY=60,
    )
    with Subscriber("tests.support.callbacks.save_order", f"/queue/{unique_name}", env=env) as sub:
        assert sub.wait_for_line("has no broker connection"), sub.stderr  # now waiting 30-60 s to retry
        started = time.monotonic()
        sub.terminate()
        assert sub.wait(10) == 0, sub.stderr
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tests.support.callbacks.missing", "/queue/x"), "Cannot import the callback"),
        (("tests.support.callbacks.save_order", "/nowhere/x"), "a consumer subscribes to"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(args: tuple[str, str], message: str) -> None:
    with Subscriber(*args, env=subprocess_env()) as sub:
        assert sub.wait(30) == 1
        assert sub.wait_for_line(message), sub.stderr
