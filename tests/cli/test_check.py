"""``outboxctl check`` against the real database and broker; exit codes a readiness probe can use."""

from __future__ import annotations

import json
import socket

import pytest

from django_outbox_pattern.ops import probes
from outboxctl.commands.check import exit_code
from outboxctl.exit_codes import ExitCode
from tests.cli.factories import make_published
from tests.conftest import STOMP_PORT
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.django_db, pytest.mark.broker]
NAMES = ["configuration", "database", "migrations", "broker", "tls", "heartbeat", "send_receipt", "routing"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_all_checks_pass(cli, broker_available) -> None:
    result = cli("check", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["exit_code"] == 0
    assert [c["name"] for c in report["checks"]] == NAMES
    assert set(report["checks"][0]) == {"name", "status", "detail", "hint", "elapsed_ms", "unreachable"}
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {**dict.fromkeys(NAMES, "pass"), "tls": "skip", "routing": "skip"}
    routing = next(c for c in report["checks"] if c["name"] == "routing")
    assert "cannot tell: DEFAULT_RABBITMQ_MANAGEMENT_URL is not set" in routing["detail"]
    broker = next(c for c in report["checks"] if c["name"] == "broker")
    assert broker["elapsed_ms"] > 0 and "RabbitMQ" in broker["detail"]
    heartbeat = next(c for c in report["checks"] if c["name"] == "heartbeat")
    assert "requested 2000,2000 ms" in heartbeat["detail"]


def test_table_output(cli, broker_available) -> None:
    result = cli("check", "--show-config")
    assert result.exit_code == 0, result.output
    assert "Resolved configuration" in result.stdout
    assert "send_receipt" in result.stdout and "All checks passed." in result.stdout


def test_broker_unreachable_exits_3(cli) -> None:
    port = free_port()
    result = cli("check", "--json", "--timeout", "2", env={"OUTBOXCTL_BROKER_HOSTS": f"127.0.0.1:{port}"})
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["broker"]["status"] == "fail" and checks["broker"]["unreachable"] == "broker"
    assert f"127.0.0.1:{port}" in checks["broker"]["detail"]
    assert checks["database"]["status"] == "pass"
    assert checks["send_receipt"]["status"] == "skip"


def test_wrong_credentials_exit_3_and_never_show_the_passcode(cli, broker_available) -> None:
    secret = "Wr0ng-S3cret-passcode"
    env = {"OUTBOXCTL_BROKER_PASSCODE": secret}
    for args in (("check",), ("check", "--json"), ("-vv", "check")):
        result = cli(*args, env=env)
        assert result.exit_code == ExitCode.BROKER_UNAVAILABLE, result.output
        assert secret not in result.output
    assert "refused the STOMP connection" in result.output


def test_tls_against_a_plain_listener_fails(cli, broker_available, tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    env = {"OUTBOXCTL_BROKER_USE_SSL": "true", "OUTBOXCTL_BROKER_CA_CERTS": str(ca)}
    result = cli("check", "--json", "--timeout", "2", env=env)
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["tls"]["status"] == "fail"


def test_stalled_broker_times_out(cli, broker_available) -> None:
    with TcpProxy(("127.0.0.1", 61613)) as proxy:
        proxy.stall(True)
        env = {"OUTBOXCTL_BROKER_HOSTS": f"127.0.0.1:{proxy.port}"}
        result = cli("check", "--skip-database", "--json", "--timeout", "0.5", env=env)
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE
    broker = json.loads(result.stdout)["checks"][1]
    assert "did not accept the STOMP connection" in broker["detail"]
    assert 400 < broker["elapsed_ms"] < 5000


def test_skips(cli) -> None:
    result = cli("check", "--skip-broker", "--skip-database", "--json")
    assert result.exit_code == 0
    assert [c["name"] for c in json.loads(result.stdout)["checks"]] == ["configuration"]


def test_configuration_errors_fail_the_check(cli, settings) -> None:
    settings.DJANGO_OUTBOX_PATTERN = {
        **settings.DJANGO_OUTBOX_PATTERN,
        "DEFAULT_GENERATE_HEADERS": "no.such.func",
    }
    result = cli("check", "--skip-broker", "--skip-database", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED
    check = json.loads(result.stdout)["checks"][0]
    assert check["status"] == "fail" and "django_outbox_pattern.E002" in check["detail"]


def test_exit_code_priority() -> None:
    def result(name: str, status: str, unreachable: str | None = None) -> probes.CheckResult:
        return probes.CheckResult(name, status, "", unreachable=unreachable)  # type: ignore[arg-type]

    assert exit_code([result("a", "pass"), result("b", "skip")]) is ExitCode.OK
    assert exit_code([result("m", "fail")]) is ExitCode.CHECK_FAILED
    assert exit_code([result("b", "fail", "broker"), result("m", "fail")]) is ExitCode.BROKER_UNAVAILABLE
    assert (
        exit_code([result("b", "fail", "broker"), result("d", "fail", "database")])
        is ExitCode.DATABASE_UNAVAILABLE
    )


def test_destinations_say_which_route_nowhere(cli, settings, unique_name) -> None:
    try:
        socket.create_connection(("127.0.0.1", 15672), timeout=1).close()
    except OSError:
        pytest.skip("RabbitMQ management API not enabled on 127.0.0.1:15672")
    settings.DJANGO_OUTBOX_PATTERN = {
        **settings.DJANGO_OUTBOX_PATTERN,
        "DEFAULT_RABBITMQ_MANAGEMENT_URL": "http://127.0.0.1:15672",
    }
    make_published(2, destination=f"/topic/{unique_name}")
    make_published(1, destination=f"/queue/{unique_name}")
    result = cli("check", "--destinations", "--skip-broker", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    lines = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert lines[f"/topic/{unique_name}"]["status"] == "fail"
    assert "no queue bound to 'amq.topic'" in lines[f"/topic/{unique_name}"]["detail"]
    assert lines[f"/queue/{unique_name}"]["status"] == "pass"
    table = cli("check", "--skip-broker")
    assert table.exit_code == ExitCode.CHECK_FAILED
    assert "route to no queue" in table.stdout and "--destinations" in table.stdout


def test_queue_type_of_a_queue_that_does_not_exist(cli, broker_available, unique_name) -> None:
    result = cli("check", "--json", "--skip-database", "--queue", unique_name)
    assert result.exit_code == ExitCode.OK, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert (
        checks[f"queue {unique_name}"]["detail"] == "does not exist (a consumer declares it when it starts)"
    )


def test_every_node_of_a_cluster_is_reported_and_one_that_is_down_fails(cli, broker_available) -> None:
    port = free_port()
    hosts = f"127.0.0.1:{STOMP_PORT},127.0.0.1:{port}"
    result = cli(
        "check", "--json", "--skip-database", "--timeout", "2", env={"OUTBOXCTL_BROKER_HOSTS": hosts}
    )
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["broker"]["status"] == "pass"  # the relay and the consumer use the node that is up
    up, down = checks[f"node 127.0.0.1:{STOMP_PORT}"], checks[f"node 127.0.0.1:{port}"]
    assert up["status"] == "pass" and "reachable in" in up["detail"], up
    assert down["status"] == "fail" and down["detail"].startswith("unreachable"), down
