"""Secrets at rest: a config file holding a secret that group or others may read gets one warning (as ssh
warns about private keys); ``config`` and every error keep secrets masked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from outboxctl import config, exposure
from outboxctl.exit_codes import ExitCode

SECRET = "s3cr3t-Passc0de-xyzzy"
WARNING = "holds a secret"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def _forget_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposure, "_warned", set())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_readable_file_with_a_passcode_warns_on_stderr_and_runs_on(cli, tmp_path: Path, mode: int) -> None:
    write(tmp_path / "outboxctl.toml", f'[broker]\nusername = "ops"\npasscode = "{SECRET}"\n', mode)
    result = cli("config", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["DEFAULT_STOMP_PASSCODE"]["value"] == "********"
    assert result.stderr.count(WARNING) == 1
    assert "[broker] passcode" in result.stderr and "chmod 600 outboxctl.toml" in result.stderr
    assert f"{mode:04o}" in result.stderr
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "text",
    [
        '[broker]\nusername = "ops"\npasscode = "x"\n',
        f'[broker]\nssl_password = "{SECRET}"\n',
        f'[outbox]\nDEFAULT_STOMP_PASSCODE = "{SECRET}"\n',
        f'[database]\nengine = "sqlite"\nname = "x.db"\npassword = "{SECRET}"\n',
        f'[database]\nurl = "postgres://u:{SECRET}@db:5432/app"\n',
    ],
)
def test_every_kind_of_secret_in_the_file_is_noticed(tmp_path: Path, text: str, capsys) -> None:
    path = write(tmp_path / "outboxctl.toml", text, 0o644)
    config.load_file(path)
    config.load_file(path)  # once per file and process
    assert capsys.readouterr().err.count(WARNING) == 1


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (f'[broker]\npasscode = "{SECRET}"\n', 0o600),
        (f'[broker]\npasscode = "{SECRET}"\n', 0o400),
        ('[broker]\npasscode_env = "SOME_VAR"\n', 0o644),
        ('[database]\nurl = "postgres://u@db:5432/app"\npassword_env = "SOME_VAR"\n', 0o644),
        ('[broker]\nusername = "ops"\n', 0o666),
    ],
)
def test_no_warning_for_a_private_file_or_references(
    tmp_path: Path, text: str, mode: int, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_VAR", SECRET)
    config.load_file(write(tmp_path / "outboxctl.toml", text, mode))
    assert WARNING not in capsys.readouterr().err


def test_pyproject_table_with_a_passcode_warns(cli, tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", f'[tool.outboxctl.broker]\npasscode = "{SECRET}"\n', 0o664)
    result = cli("config")
    assert result.exit_code == 0, result.output
    assert "pyproject.toml holds a secret ([broker] passcode)" in result.stderr
    assert SECRET not in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'[broker]\npasscode = ["{SECRET}"]\n', "DEFAULT_STOMP_PASSCODE"),
        (f'[broker]\npasscode = "{SECRET}"\npasscode_env = "X"\n', "set either passcode or passcode_env"),
        (f'[broker]\npasscode = "{SECRET}"\nhosts = "nohost"\n', 'is not "host:port"'),
        (f"[outbox]\nDEFAULT_STOMP_SSL_PASSWORD = 12{len(SECRET)}\n", "DEFAULT_STOMP_SSL_PASSWORD"),
        (f'[database]\nurl = "postgres://u:{SECRET}@db:port/app"\n', "the port is not a number"),
        (f'[database]\nurl = "nosuch://u:{SECRET}@db/app"\n', "unknown scheme"),
        (f'[database]\nurl = "postgres://u:{SECRET}@db/app"\nuser = "x"\n', "[database]"),
    ],
)
def test_errors_never_show_the_secret(cli, tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path / "outboxctl.toml", text, 0o600)
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert expected in result.stderr
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_a_passcode_from_the_environment_is_masked_and_not_warned_about(cli) -> None:
    env = {"OUTBOXCTL_BROKER_PASSCODE": SECRET}
    result = cli("config", env=env)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "********" in result.stdout
    assert WARNING not in result.stderr
