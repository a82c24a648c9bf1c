"""``manage.py publish`` as a real process: draining, and SIGTERM in the middle of a run."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from tests.support.broker_helpers import QueueDrain, count_ids
from tests.support.relay_helpers import (
    django_command,
    make_rows,
    make_settings,
    statuses,
    subprocess_env,
    wait_until,
)

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_publish_until_empty_sends_everything_and_exits_0(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    rows = make_rows(destination, 120)
    with QueueDrain(make_settings(), destination) as drain:
        done = subprocess.run(
            django_command("publish", "--until-empty", "--chunk-size", "50", "--poll-interval", "0.1"),
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        counts = count_ids(drain.sync())
    assert counts == {str(r.id): 1 for r in rows}
    assert "published=120 failed=0 dead_lettered=0" in done.stdout
    assert statuses()[StatusChoice.SUCCEEDED] == 120


def test_publish_once_sends_one_batch_and_exits_0(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    make_rows(destination, 30)
    with QueueDrain(make_settings(), destination) as drain:
        done = subprocess.run(
            django_command("publish", "--once", "--chunk-size", "10", "--poll-interval", "0.1"),
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        sent = statuses()[StatusChoice.SUCCEEDED]
        assert len(drain.sync()) >= sent
    assert sent == 10, done.stdout  # one batch, nothing more claimed
    assert f"published={sent} failed=0 dead_lettered=0" in done.stdout


def test_sigterm_mid_run_finishes_the_batch_exits_0_and_loses_nothing(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    rows = make_rows(destination, 1500)
    with QueueDrain(make_settings(), destination) as drain:
        process = subprocess.Popen(
            django_command("publish", "--chunk-size", "10"),
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until(lambda: statuses()[StatusChoice.SUCCEEDED] >= 100, timeout=60)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, err
        sent_before_stop = count_ids(drain.sync())
    succeeded = set(Published.objects.filter(status=StatusChoice.SUCCEEDED).values_list("id", flat=True))
    assert 100 <= len(succeeded) < 1500, "SIGTERM came too late to test a mid-run stop"
    assert {str(i) for i in succeeded} <= set(sent_before_stop)  # everything marked was delivered
    assert not Published.objects.exclude(
        locked_by=""
    ).exists()  # the in-flight batch was finished, not dropped
    assert f"published={len(succeeded)}" in out

    with QueueDrain(make_settings(), destination) as drain:  # a new relay sends the rest
        subprocess.run(
            django_command("publish", "--until-empty"), env=subprocess_env(), check=True, timeout=120
        )
        sent_after = count_ids(drain.sync())
    total = sent_before_stop + sent_after
    assert total == {str(r.id): 1 for r in rows}  # nothing lost, nothing twice


def test_sigterm_while_the_broker_is_unreachable_exits_0_at_once(
    outbox_settings: conf.OutboxSettings,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        dead_port = str(unused.getsockname()[1])  # nothing listens once closed
    process = subprocess.Popen(
        django_command("publish"),
        env=subprocess_env(OUTBOX_STOMP_PORT=dead_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the relay logs each failed attempt before backing off
            if "Broker unavailable, retrying in" in line:
                break
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
