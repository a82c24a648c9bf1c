"""outboxctl's observability options: check --liveness/--readiness, inspect --metrics, --metrics-port and
--health-file on publish/subscribe."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import health
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import ROOT, child_env, cli_command, make_published, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- check --liveness ---------------------------------------------------------------------------------------


def test_liveness_passes_on_a_fresh_heartbeat(cli, tmp_path: Path) -> None:
    alive = tmp_path / "relay.alive"
    health.write_heartbeat(alive, component="relay")
    result = cli("check", "--liveness", "--health-file", str(alive))
    assert result.exit_code == ExitCode.OK, result.output
    assert "liveness" in result.stdout and "pass" in result.stdout


def test_liveness_fails_with_5_on_a_stale_or_missing_heartbeat(cli, tmp_path: Path) -> None:
    alive = tmp_path / "relay.alive"
    health.write_heartbeat(alive, now=time.time() - 120)
    result = cli("check", "--liveness", "--health-file", str(alive), "--max-age", "30", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["exit_code"] == 5
    [probe] = report["probes"]
    assert probe["name"] == "liveness" and "over 30s" in probe["detail"] and probe["age_s"] >= 120
    missing = cli("check", "--liveness", "--health-file", str(tmp_path / "nothing"))
    assert missing.exit_code == ExitCode.CHECK_FAILED
    assert "no heartbeat file" in missing.stdout


def test_liveness_needs_a_health_file(cli) -> None:
    result = cli("check", "--liveness")
    assert result.exit_code == ExitCode.USAGE
    assert "--liveness needs --health-file" in result.stderr


def test_liveness_needs_no_settings_at_all(tmp_path: Path) -> None:
    alive = tmp_path / "alive"
    health.write_heartbeat(alive)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}  # no DJANGO_SETTINGS_MODULE, no DB
    done = run_cli("check", "--liveness", "--health-file", str(alive), env=env, cwd=tmp_path, settings=False)
    assert done.returncode == 0, done.stderr


# --- check --readiness --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.broker
def test_readiness_passes_with_the_database_and_the_broker(cli, broker_available) -> None:
    result = cli("check", "--readiness", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    probes = json.loads(result.stdout)["probes"]
    assert [(p["name"], p["ok"]) for p in probes] == [("database", True), ("broker", True)]


@pytest.mark.django_db
def test_readiness_fails_with_5_when_the_broker_refuses(cli) -> None:
    env = {"OUTBOXCTL_BROKER_HOSTS": f"127.0.0.1:{free_port()}"}
    result = cli("check", "--readiness", "--timeout", "2", env=env)
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "broker" in result.stdout and "FAIL" in result.stdout


# --- inspect --metrics --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_inspect_metrics_prints_the_backlog_in_prometheus_format(cli) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    make_published(3, destination="/topic/a")
    make_published(1, destination="/topic/b", status=StatusChoice.FAILED)
    result = cli("inspect", "--metrics")
    assert result.exit_code == 0, result.output
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    assert samples[("outbox_backlog_messages", (("destination", "/topic/a"), ("status", "pending")))] == 3
    assert samples[("outbox_backlog_messages", (("destination", "/topic/b"), ("status", "failed")))] == 1
    assert samples[("outbox_oldest_pending_age_seconds", ())] >= 0
    assert samples[("outbox_backlog_up", ())] == 1


def test_inspect_metrics_and_json_exclude_each_other(cli) -> None:
    result = cli("inspect", "--metrics", "--json")
    assert result.exit_code == ExitCode.USAGE
    assert "exclude each other" in result.stderr


# --- --metrics-port / --health-file on the long-running commands --------------------------------------------


@pytest.mark.django_db
def test_health_file_reaches_the_relay_as_an_observer(
    cli, relay_standin, broker_available, tmp_path: Path
) -> None:
    alive = tmp_path / "relay.alive"
    assert cli("publish", "--until-empty", "--health-file", str(alive)).exit_code == 0
    observer = relay_standin.kwargs["observer"]
    assert isinstance(observer, observing.MultiObserver)
    assert [type(o).__name__ for o in observer.observers] == ["HeartbeatObserver"]
    assert json.loads(alive.read_text())["component"] == "relay"


def test_health_file_reaches_the_consumer_as_an_observer(cli, consumer_standin, tmp_path: Path) -> None:
    consumer_standin.sigterm_self = True
    alive = tmp_path / "consumer.alive"
    result = cli("subscribe", "myapp.callbacks.handle", "/queue/jobs", "--health-file", str(alive))
    assert result.exit_code == 0, result.output
    assert isinstance(consumer_standin.kwargs["observer"], observing.MultiObserver)
    assert health.read_heartbeat(alive, 10).ok


def test_metrics_port_without_prometheus_client_says_what_to_install(
    cli, consumer_standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    result = cli("subscribe", "myapp.callbacks.handle", "/queue/jobs", "--metrics-port", "0")
    assert result.exit_code == ExitCode.USAGE
    assert "pip install django-outbox-pattern[metrics]" in result.stderr
    assert consumer_standin.built is None  # failed before building the consumer


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_real_publish_serves_metrics_and_writes_its_heartbeat(outbox_settings, unique_name, tmp_path) -> None:
    rows = make_published(3, destination=f"/topic/{unique_name}")
    alive, port = tmp_path / "relay.alive", free_port()
    command = cli_command(
        "publish", "--poll-interval", "0.1", "--metrics-port", str(port), "--health-file", str(alive)
    )
    child = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        wanted = f'outbox_messages_published_total{{destination="/topic/{unique_name}"}} 3.0'
        while wanted not in text:
            assert time.monotonic() < deadline, text or "no metrics served"
            assert child.poll() is None, child.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode("utf-8")
            except OSError:
                time.sleep(0.05)
        assert "outbox_relay_up 1.0" in text
        assert health.read_heartbeat(alive, max_age_s=5).ok
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert Published.objects.filter(id__in=[r.id for r in rows], status=StatusChoice.SUCCEEDED).count() == 3
