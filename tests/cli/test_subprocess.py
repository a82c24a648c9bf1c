"""Real ``python -m outboxctl`` processes against the real database and broker: at least one per command.

With ``--settings tests.settings`` the child uses the test database pytest-django migrated (the fixtures in
conftest point it there), so these tests commit their rows (``transaction=True``). The standalone tests
configure everything from an outboxctl.toml, as an operator without the Django project would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import ROOT, child_env, cli_command, make_published, make_received, run_cli
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "Pr0d-S3cret-never-printed"


def test_version_and_help() -> None:
    version = run_cli("--version", settings=False)
    assert version.returncode == 0 and version.stdout.startswith("outboxctl ")
    helped = run_cli("-h", settings=False)
    assert helped.returncode == 0 and "Exit codes" in helped.stdout


def test_inspect() -> None:
    make_published(2, status=StatusChoice.FAILED, destination="/topic/sub")
    done = run_cli("inspect", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outbox"]["by_status"]["failed"] == 2
    assert done.stderr == ""


def test_replay() -> None:
    rows = make_published(2, status=StatusChoice.FAILED)
    dry = run_cli("replay", "--all", "--dry-run", "--json")
    assert json.loads(dry.stdout)["matched"] == 2
    done = run_cli("replay", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert "2 row(s) replayed." in done.stdout
    assert set(Published.objects.filter(id__in=[r.id for r in rows]).values_list("status", flat=True)) == {
        StatusChoice.SCHEDULE
    }


def test_replay_confirmation_from_stdin() -> None:
    make_published(1, status=StatusChoice.FAILED)
    declined = run_cli("replay", "--all", input="n\n")
    assert declined.returncode == ExitCode.ERROR
    assert Published.objects.get().status == StatusChoice.FAILED


def test_dead_letter() -> None:
    row = make_published(1)[0]
    done = run_cli("dead-letter", "--id", str(row.id), "--reason", "operator parked it", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    row.refresh_from_db()
    assert (row.status, row.last_error) == (StatusChoice.FAILED, "operator parked it")


@pytest.mark.broker
def test_dead_letter_requeue(outbox_settings, unique_name) -> None:
    from tests.cli.peers import Peer

    peer = Peer(outbox_settings, unique_name)
    try:
        peer.dead_letter(2)
        done = run_cli("dead-letter", "requeue", unique_name, "--yes", "--json", "--idle-timeout", "0.3")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["requeued"] == 2
        assert len(peer.take(2)) == 2
    finally:
        peer.close()


def test_purge() -> None:
    make_published(3, status=StatusChoice.SUCCEEDED, age=timedelta(days=40))
    make_received(2, age=timedelta(days=40))
    make_published(1, status=StatusChoice.SCHEDULE, age=timedelta(days=40))
    dry = run_cli("purge", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0 and "5 row(s) would be deleted" in dry.stdout
    done = run_cli("purge", "--older-than", "30d", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 5
    assert Published.objects.get().status == StatusChoice.SCHEDULE


@pytest.mark.broker
def test_check_passes(outbox_settings) -> None:
    done = run_cli("check")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "All checks passed." in done.stdout


def test_check_broker_unreachable_exits_3() -> None:
    done = run_cli("check", "--timeout", "2", env=child_env(OUTBOXCTL_BROKER_HOSTS="127.0.0.1:9"))
    assert done.returncode == ExitCode.BROKER_UNAVAILABLE, done.stdout + done.stderr


@pytest.mark.broker
def test_wrong_passcode_is_never_printed(outbox_settings) -> None:
    done = run_cli("-vv", "check", "--show-config", env=child_env(OUTBOXCTL_BROKER_PASSCODE=SECRET))
    assert done.returncode == ExitCode.BROKER_UNAVAILABLE
    assert "DEBUG" in done.stderr  # the stomp.py frames were logged...
    assert SECRET not in done.stdout + done.stderr  # ...with the passcode masked


def test_config() -> None:
    done = run_cli("config", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings_module"] == {"value": "tests.settings", "source": "flag --settings"}
    assert report["database"]["values"]["engine"] == connection.settings_dict["ENGINE"]


def test_interrupt_exits_130(broker_available) -> None:
    with TcpProxy(("127.0.0.1", 61613)) as proxy:
        proxy.stall(True)
        env = child_env(OUTBOXCTL_BROKER_HOSTS=f"127.0.0.1:{proxy.port}")
        command = cli_command("check", "--skip-database", "--timeout", "60")
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while proxy.accepted == 0:  # the child is now waiting for CONNECTED
                assert time.monotonic() < deadline and child.poll() is None, child.communicate()
                time.sleep(0.02)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == ExitCode.INTERRUPTED
    assert "Interrupted." in err and "Traceback" not in err


# --- without a Django project: everything from outboxctl.toml -------------------------------------------


def standalone_env() -> dict[str, str]:
    env = child_env()
    for name in ("OUTBOX_TEST_DB", "OUTBOX_TEST_DB_NAME", "OUTBOX_SQLITE_PATH"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(ROOT / "src")  # outboxctl only: no tests.settings, no Django project
    env["OUTBOX_CLI_PASS"] = SECRET
    return env


def write_toml(directory: Path, database_url: str) -> None:
    port = os.environ.get("OUTBOX_STOMP_PORT", "61613")
    path = directory / "outboxctl.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n\n'
        f'[broker]\nhosts = ["127.0.0.1:{port}"]\nusername = "guest"\npasscode = "guest"\n'
        "heartbeats = [2000, 2000]\n"
        'ssl_password_env = "OUTBOX_CLI_PASS"\n\n[outbox]\nDEFAULT_PUBLISHED_CHUNK_SIZE = 50\n',
        encoding="utf-8",
    )
    path.chmod(0o600)  # it holds a passcode: readable by group or others, outboxctl would warn


def test_database_url_of_this_test_database(tmp_path: Path) -> None:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{settings['NAME']}"
    else:
        scheme = "postgres" if connection.vendor == "postgresql" else "mysql"
        credentials = f"{settings['USER']}:{settings['PASSWORD']}"
        url = f"{scheme}://{credentials}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    write_toml(tmp_path, url)
    make_published(2, status=StatusChoice.FAILED)
    done = run_cli("inspect", "--failed", "--json", env=standalone_env(), cwd=tmp_path, settings=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["matching"] == 2
    shown = run_cli("config", env=standalone_env(), cwd=tmp_path, settings=False)
    assert "outboxctl.toml:2 [database] url" in shown.stdout
    assert "DEFAULT_PUBLISHED_CHUNK_SIZE" in shown.stdout and SECRET not in shown.stdout


@pytest.mark.broker
def test_fresh_sqlite_database_without_migrations_fails_check_with_5(tmp_path: Path, outbox_settings) -> None:
    write_toml(tmp_path, "sqlite:///fresh.db")
    done = run_cli("check", "--json", env=standalone_env(), cwd=tmp_path, settings=False)
    assert done.returncode == ExitCode.CHECK_FAILED, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["database"]["status"] == "pass" and checks["migrations"]["status"] == "fail"
    assert "0008_published_relay_columns" in checks["migrations"]["detail"]
    assert checks["broker"]["status"] == "pass"
    inspect = run_cli("inspect", env=standalone_env(), cwd=tmp_path, settings=False)
    assert inspect.returncode == ExitCode.DATABASE_UNAVAILABLE
    assert "migrate" in inspect.stderr
    publish = run_cli("publish", "--until-empty", env=standalone_env(), cwd=tmp_path, settings=False)
    assert publish.returncode == ExitCode.DATABASE_UNAVAILABLE  # fails fast instead of waiting for the table
    assert "Cannot read the outbox table" in publish.stderr
    migrate = (
        "from outboxctl import bootstrap; bootstrap.setup(bootstrap.State()); "
        "from django.core.management import call_command; call_command('migrate', verbosity=0)"
    )
    subprocess.run(
        [sys.executable, "-c", migrate], env=standalone_env(), cwd=tmp_path, check=True, timeout=60
    )
    assert run_cli("check", env=standalone_env(), cwd=tmp_path, settings=False).returncode == ExitCode.OK
    done = run_cli("inspect", "--json", env=standalone_env(), cwd=tmp_path, settings=False)
    assert json.loads(done.stdout)["outbox"]["total"] == 0


@pytest.mark.parametrize(
    "url", ["sqlite:////nonexistent-dir/outbox.db", "postgres://postgres@127.0.0.1:9/nothing"]
)
def test_database_unreachable_exits_4(tmp_path: Path, url: str) -> None:
    write_toml(tmp_path, url)
    inspect = run_cli("inspect", env=standalone_env(), cwd=tmp_path, settings=False)
    assert inspect.returncode == ExitCode.DATABASE_UNAVAILABLE, inspect.stderr
    assert inspect.stderr.startswith("Error: Database error:")
    check = run_cli("check", "--skip-broker", "--json", env=standalone_env(), cwd=tmp_path, settings=False)
    assert check.returncode == ExitCode.DATABASE_UNAVAILABLE
    assert json.loads(check.stdout)["checks"][1]["unreachable"] == "database"


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "outboxctl.toml").write_text(
        '[database]\nurl = "sqlite:///x.db"\nurll = 1\n', encoding="utf-8"
    )
    done = run_cli("inspect", env=standalone_env(), cwd=tmp_path, settings=False)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith(
        "Error: outboxctl.toml:3 [database] urll: unknown key (did you mean 'url'?)"
    )
    assert done.stdout == ""


def test_no_database_configured_exits_2(tmp_path: Path) -> None:
    done = run_cli("inspect", env=standalone_env(), cwd=tmp_path, settings=False)
    assert done.returncode == ExitCode.USAGE
    assert "No database is configured" in done.stderr


def test_pythonpath_and_a_project_settings_module(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "opsettings.py").write_text(
        "from tests.settings import *  # noqa\n"
        'DJANGO_OUTBOX_PATTERN = {**DJANGO_OUTBOX_PATTERN, "DEFAULT_STOMP_VHOST": "from-module"}\n',
        encoding="utf-8",
    )
    env = child_env()
    done = run_cli(
        "--pythonpath", str(project), "--settings", "opsettings", "config", "--json", env=env, settings=False
    )
    assert done.returncode == 0, done.stderr
    vhost = json.loads(done.stdout)["settings"]["DEFAULT_STOMP_VHOST"]
    assert vhost == {"value": "from-module", "source": "django settings opsettings"}
    missing = run_cli("--settings", "opsettings", "config", env=env, settings=False)
    assert missing.returncode == ExitCode.USAGE
    assert (
        "Cannot import the settings module 'opsettings'" in missing.stderr
        and "--pythonpath" in missing.stderr
    )
