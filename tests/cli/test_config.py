"""The config file, the environment and the precedence of sources; every bad input is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outboxctl import config, dburl
from outboxctl.exit_codes import ExitCode

SECRET = "s3cr3t-Passc0de-xyzzy"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_json(cli, *args: str, env: dict[str, str] | None = None) -> dict:
    result = cli(*args, "config", "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_syntax_error_names_file_and_line(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", '[broker]\nvhost = "/"\nusername = "x\nhosts = []\n')
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE
    assert "outboxctl.toml: invalid TOML" in result.stderr
    assert "line 3" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_unknown_key_names_line_and_suggests(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", '# ops\n[broker]\nusername = "x"\npasscod = "y"\n')
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE
    assert "outboxctl.toml:4 [broker] passcod: unknown key (did you mean 'passcode'?)" in result.stderr


def test_unknown_section_suggests(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", '[brokr]\nusername = "x"\n')
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE
    assert "brokr: unknown key (did you mean 'broker'?)" in result.stderr


def test_unknown_outbox_setting_suggests_the_real_one(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", "[outbox]\nDEFAULT_PUBLISHED_CHUNKSIZE = 10\n")
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE
    assert "outboxctl.toml:2 [outbox] DEFAULT_PUBLISHED_CHUNKSIZE" in result.stderr
    assert "did you mean DEFAULT_PUBLISHED_CHUNK_SIZE" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[outbox]\nDEFAULT_PUBLISHED_CHUNK_SIZE = "lots"\n',
            "DEFAULT_PUBLISHED_CHUNK_SIZE: must be a whole number",
        ),
        ('[broker]\nheartbeats = "fast"\n', "[broker] heartbeats: DEFAULT_STOMP_HEARTBEATS: must be two"),
        ('[broker]\nhosts = ["rabbit"]\n', "[broker] hosts: 'rabbit' is not \"host:port\""),
        ('[broker]\nuse_ssl = "yes"\n', "DEFAULT_STOMP_USE_SSL: must be True or False"),
        ('[database]\nengine = "postgresql"\nport = "abc"\n', "[database] port: must be a port number"),
        ('[database]\nurl = "oracle://x/y"\n', "[database] url: unknown scheme 'oracle://'"),
        (
            '[database]\nurl = "sqlite:///x.db"\nhost = "h"\n',
            "[database] host: give either url or separate fields",
        ),
        ("settings = 12\n", "settings: must be a non-empty string"),
        (
            '[broker]\npasscode = "a"\npasscode_env = "B"\n',
            "passcode_env: set either passcode or passcode_env",
        ),
        ('[broker]\nhosts = ["h:1"]\n[outbox]\nDEFAULT_STOMP_HOST_AND_PORTS = [["h", 2]]\n', "is set twice"),
    ],
)
def test_wrong_values_are_one_clear_error(cli, tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path / "outboxctl.toml", text)
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert expected in result.stderr
    assert "outboxctl.toml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # one error line + one hint line


def test_missing_config_file(cli, tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "nope.toml"), "config")
    assert result.exit_code == ExitCode.USAGE
    assert "nope.toml does not exist" in result.stderr


def test_passcode_env_must_be_set(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", '[broker]\npasscode_env = "OUTBOX_TEST_UNSET_VAR"\n')
    result = cli("config")
    assert result.exit_code == ExitCode.USAGE
    assert "names the environment variable OUTBOX_TEST_UNSET_VAR, which is not set" in result.stderr


def test_precedence_flag_env_file_django_default(cli, tmp_path: Path) -> None:
    write(
        tmp_path / "outboxctl.toml",
        '[broker]\nusername = "file-user"\nheartbeats = [3000, 3000]\nconnect_timeout = 4\n'
        "[outbox]\nDEFAULT_PUBLISHED_CHUNK_SIZE = 10\n",
    )
    env = {"OUTBOXCTL_BROKER_USERNAME": "env-user", "OUTBOXCTL_DEFAULT_CONNECT_TIMEOUT": "5"}
    result = cli(
        "check", "--skip-database", "--skip-broker", "--show-config", "--json", "--timeout", "7", env=env
    )
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["config"]["settings"]
    assert settings["DEFAULT_CONNECT_TIMEOUT"] == {"value": 7.0, "source": "flag --timeout"}
    assert settings["DEFAULT_STOMP_USERNAME"] == {
        "value": "env-user",
        "source": "env OUTBOXCTL_BROKER_USERNAME",
    }
    assert settings["DEFAULT_STOMP_HEARTBEATS"] == {
        "value": [3000, 3000],
        "source": "outboxctl.toml:3 [broker] heartbeats",
    }
    assert (
        settings["DEFAULT_PUBLISHED_CHUNK_SIZE"]["source"]
        == "outboxctl.toml:6 [outbox] DEFAULT_PUBLISHED_CHUNK_SIZE"
    )
    assert settings["DEFAULT_STOMP_HOST_AND_PORTS"]["source"] == "django settings tests.settings"
    assert settings["DEFAULT_EXCLUSIVE_QUEUE"] == {"value": False, "source": "default"}


def test_settings_module_source_flag_or_env(cli) -> None:
    assert config_json(cli)["settings_module"] == {
        "value": "tests.settings",
        "source": "env DJANGO_SETTINGS_MODULE",
    }
    report = config_json(cli, "--settings", "tests.settings")
    assert report["settings_module"] == {"value": "tests.settings", "source": "flag --settings"}


def test_file_discovery_order(cli, tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n[tool.outboxctl.broker]\nvhost = "from-pyproject"\n',
    )
    report = config_json(cli)
    assert report["config_file"].endswith("pyproject.toml")
    assert report["settings"]["DEFAULT_STOMP_VHOST"]["value"] == "from-pyproject"
    assert (
        report["settings"]["DEFAULT_STOMP_VHOST"]["source"]
        == "pyproject.toml:4 [tool.outboxctl.broker] vhost"
    )
    write(tmp_path / "outboxctl.toml", '[broker]\nvhost = "from-toml"\n')
    assert config_json(cli)["settings"]["DEFAULT_STOMP_VHOST"]["value"] == "from-toml"
    other = write(tmp_path / "other.toml", '[broker]\nvhost = "from-flag"\n')
    assert config_json(cli, "--config", str(other))["settings"]["DEFAULT_STOMP_VHOST"]["value"] == "from-flag"
    report = config_json(cli, env={"OUTBOXCTL_CONFIG": str(other)})
    assert report["settings"]["DEFAULT_STOMP_VHOST"]["value"] == "from-flag"


def test_unknown_environment_variable_suggests(cli) -> None:
    result = cli("config", env={"OUTBOXCTL_BROKER_PASCODE": "x"})
    assert result.exit_code == ExitCode.USAGE
    assert (
        "Unknown environment variable OUTBOXCTL_BROKER_PASCODE (did you mean OUTBOXCTL_BROKER_PASSCODE?)"
        in (result.stderr)
    )


@pytest.mark.parametrize(
    ("name", "value", "key", "expected"),
    [
        ("OUTBOXCTL_BROKER_HOSTS", "a:1,b:2", "DEFAULT_STOMP_HOST_AND_PORTS", [["a", 1], ["b", 2]]),
        ("OUTBOXCTL_BROKER_HEARTBEATS", "0,0", "DEFAULT_STOMP_HEARTBEATS", [0, 0]),
        ("OUTBOXCTL_BROKER_USE_SSL", "yes", "DEFAULT_STOMP_USE_SSL", True),
        ("OUTBOXCTL_DEFAULT_PUBLISHED_CHUNK_SIZE", "77", "DEFAULT_PUBLISHED_CHUNK_SIZE", 77),
        (
            "OUTBOXCTL_DEFAULT_STOMP_QUEUE_HEADERS",
            '{"durable": "false"}',
            "DEFAULT_STOMP_QUEUE_HEADERS",
            {"durable": "false"},
        ),
    ],
)
def test_environment_values_are_parsed(cli, name: str, value: str, key: str, expected: object) -> None:
    assert config_json(cli, env={name: value})["settings"][key]["value"] == expected


def test_bad_environment_value(cli) -> None:
    result = cli("config", env={"OUTBOXCTL_DEFAULT_PUBLISHED_CHUNK_SIZE": "many"})
    assert result.exit_code == ExitCode.USAGE
    assert (
        "env OUTBOXCTL_DEFAULT_PUBLISHED_CHUNK_SIZE: DEFAULT_PUBLISHED_CHUNK_SIZE: must be a whole number"
        in (result.stderr)
    )


def test_secrets_are_masked_everywhere(cli, tmp_path: Path) -> None:
    write(
        tmp_path / "outboxctl.toml",
        '[broker]\npasscode_env = "CLI_TEST_PASS"\nssl_password = "' + SECRET + '-ssl"\n',
    )
    env = {"CLI_TEST_PASS": SECRET}
    human = cli("config", env=env)
    machine = cli("config", "--json", env=env)
    verbose = cli("-vv", "check", "--skip-database", "--skip-broker", "--show-config", env=env)
    for result in (human, machine, verbose):
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
    settings = json.loads(machine.stdout)["settings"]
    assert settings["DEFAULT_STOMP_PASSCODE"] == {
        "value": "********",
        "source": "env CLI_TEST_PASS (named by outboxctl.toml:2 [broker] passcode_env)",
    }
    assert settings["DEFAULT_STOMP_SSL_PASSWORD"]["value"] == "********"


def test_configured_database_is_ignored_when_django_is_already_set_up(cli, tmp_path: Path) -> None:
    write(tmp_path / "outboxctl.toml", '[database]\nurl = "postgres://u:' + SECRET + '@db:5432/app"\n')
    report = config_json(cli)
    assert "Django was already set up" in report["database"]["source"]
    assert SECRET not in json.dumps(report)


# --- database URLs and fields ---------------------------------------------------------------------------


def test_postgres_url() -> None:
    entry = dburl.parse_url("postgres://app:p%40ss@db.example:6543/orders?sslmode=require")
    assert entry == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "orders",
        "USER": "app",
        "PASSWORD": "p@ss",
        "HOST": "db.example",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require"},
    }


def test_mysql_and_sqlite_urls(tmp_path: Path) -> None:
    assert dburl.parse_url("mysql://root@127.0.0.1/test")["ENGINE"] == "django.db.backends.mysql"
    assert dburl.parse_url("sqlite:////abs/x.db")["NAME"] == "/abs/x.db"
    assert dburl.parse_url("sqlite:///rel.db", base_dir=tmp_path)["NAME"] == str(tmp_path / "rel.db")
    assert dburl.parse_url("sqlite://:memory:")["NAME"] == ":memory:"


def test_fields_with_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_DB_PASS", "pw")
    entry = dburl.from_fields(
        {"engine": "mysql", "name": "n", "user": "u", "password_env": "CLI_DB_PASS", "port": 3306}
    )
    assert entry["ENGINE"] == "django.db.backends.mysql"
    assert (entry["PASSWORD"], entry["PORT"]) == ("pw", "3306")
    assert dburl.describe(entry)["password"] == "********"


def test_hosts_forms() -> None:
    def fail(message: str) -> None:
        raise AssertionError(message)

    assert config._hosts(["a:1", ["b", 2]], fail) == [("a", 1), ("b", 2)]
    assert config._hosts("a:1, [::1]:61613", fail) == [("a", 1), ("[::1]", 61613)]


@pytest.mark.parametrize("name", ["outboxctl.toml", "pyproject-snippet.toml"])
def test_the_examples_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOX_DB_PASSWORD", "x")
    monkeypatch.setenv("OUTBOX_STOMP_PASSCODE", "y")
    path = Path(__file__).resolve().parents[2] / "examples" / name
    layer = config.load_file(path, "tool.outboxctl" if name.startswith("pyproject") else "")
    assert layer.outbox["DEFAULT_PUBLISHED_CHUNK_SIZE"].value == 500
    assert layer.outbox["DEFAULT_STOMP_PASSCODE"].value == "y"
    if layer.database is not None:
        assert layer.database["PASSWORD"] == "x" and layer.database["HOST"] == "db.internal"
    else:
        assert layer.settings_module == "mysite.settings"


def test_django_settings_are_read_as_3x_read_them(cli, tmp_path: Path) -> None:
    """Unknown keys are no error; the 3.x heart-beat overrides apply unless outboxctl's layers set them."""
    from django.test import override_settings

    mapping = {"DEFAULT_STOMP_OUTGOING_HEARTBEAT": 1234, "A_KEY_OF_ANOTHER_RELEASE": 1}
    with override_settings(DJANGO_OUTBOX_PATTERN=mapping, STOMP_INCOMING_HEARTBEAT=4321):
        assert config_json(cli)["settings"]["DEFAULT_STOMP_HEARTBEATS"]["value"] == [1234, 4321]
        write(tmp_path / "outboxctl.toml", "[broker]\nheartbeats = [3000, 3000]\n")
        assert config_json(cli)["settings"]["DEFAULT_STOMP_HEARTBEATS"]["value"] == [3000, 3000]


def test_the_management_url_password_is_masked(cli) -> None:
    env = {"OUTBOXCTL_DEFAULT_RABBITMQ_MANAGEMENT_URL": "http://ops:topsecret-pw@rabbit:15672"}
    result = cli("config", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert "topsecret-pw" not in result.output
    assert "http://ops:********@rabbit:15672" in result.output
