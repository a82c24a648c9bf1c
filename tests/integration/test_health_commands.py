"""`manage.py subscribe` (and `publish`) with --health-file and --metrics-port, in real subprocesses."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import urllib.request

import pytest

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.ops import health
from tests.support.processes import Subscriber, subprocess_env
from tests.support.relay_helpers import django_command, make_rows, statuses
from tests.support.relay_helpers import subprocess_env as relay_env
from tests.support.runner import wait_until
from tests.support.stomp_tools import declare, publish, settings_with
from tests.testapp.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(port: int, name: str) -> float | None:
    """One sample of the metrics served on ``port`` (None when absent or not served yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode("utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):  # name may carry labels: outbox_x{destination="/queue/a"}
            return float(line.split()[1])
    return None


def test_subscribe_serves_metrics_and_keeps_its_heartbeat_fresh(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    destination = f"/queue/{unique_name}"
    settings = settings_with()
    declare(settings, destination, unique_name)
    publish(
        settings, f"/amq/queue/{unique_name}", [(f'{{"n": {n}}}', {"dop-msg-id": f"m{n}"}) for n in range(3)]
    )
    alive = tmp_path / "consumer.alive"
    port = free_port()
    args = ["tests.support.callbacks.save_order", destination, "--health-file", str(alive)]
    with Subscriber(*args, "--metrics-port", str(port), env=subprocess_env()) as sub:
        assert wait_until(lambda: metric(port, "outbox_messages_consumed_total") == 3, timeout=30), sub.stderr
        assert metric(port, "outbox_consumer_up") == 1
        assert health.read_heartbeat(alive, max_age_s=5).ok
        sub.terminate()
        assert sub.wait(30) == 0, sub.stderr
    assert Order.objects.count() == 3
    assert '"component": "consumer"' in alive.read_text()


def test_an_unwritable_health_file_stops_the_command_with_a_clear_error(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    bad = tmp_path / "missing" / "alive"
    args = ["tests.support.callbacks.save_order", f"/queue/{unique_name}", "--health-file", str(bad)]
    with Subscriber(*args, env=subprocess_env()) as sub:
        assert sub.wait(30) == 1
        assert "writable path to --health-file" in sub.stderr


def test_publish_serves_metrics_and_keeps_its_heartbeat_fresh(
    unique_name: str, broker_available: None, tmp_path: pathlib.Path
) -> None:
    make_rows(f"/queue/{unique_name}", 4)
    alive = tmp_path / "relay.alive"
    port = free_port()
    args = ["publish", "--poll-interval", "0.1", "--health-file", str(alive), "--metrics-port", str(port)]
    process = subprocess.Popen(
        django_command(*args), env=relay_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_until(lambda: metric(port, "outbox_relay_up") == 1, timeout=30), "no metrics served"
        assert wait_until(lambda: statuses()[StatusChoice.SUCCEEDED] == 4, timeout=30)
        assert wait_until(
            lambda: (
                metric(port, f'outbox_messages_published_total{{destination="/queue/{unique_name}"}}') == 4
            ),
            timeout=10,
        )
        assert health.read_heartbeat(alive, max_age_s=5).ok
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert '"component": "relay"' in alive.read_text()
