"""Fixtures of the fault suite: private RabbitMQ nodes that tests may restart, TLS material, a dedicated
PostgreSQL database per module, clusters of relay/consumer processes, and the printed summary lines."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_missing
from tests.support import faultdb, rabbit_cluster, rabbit_node
from tests.support.fault_cluster import Cluster

# Per test: name, faults injected, messages lost, effects applied twice, the line printed for it.
SUMMARY_KEY = pytest.StashKey[list[tuple[str, int, int, int, str]]]()


@pytest.fixture(scope="session")
def private_node() -> Iterator[rabbit_node.RabbitNode]:
    """One private node for the whole fault session (starting one takes ~8 s, removing it ~4 s)."""
    reason = rabbit_node.available()
    if reason:
        service_missing(reason)
    node = rabbit_node.RabbitNode()
    node.start()
    yield node
    node.destroy()


@pytest.fixture(scope="session")
def rabbit_three() -> Iterator[rabbit_cluster.RabbitCluster]:
    """Three private nodes joined as one cluster (tests marked ``cluster``), with the at-least-once
    dead-lettering policy for quorum queues; ~20 s to start. A test that stops a node starts it again."""
    reason = rabbit_node.available()
    if reason:
        service_missing(reason)
    cluster = rabbit_cluster.RabbitCluster()
    try:
        cluster.start()
        cluster.set_at_least_once_policy()
        yield cluster
    finally:
        cluster.destroy()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}-key.pem", directory / f"{name}.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    return key, cert


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate it signed for 127.0.0.1/localhost, and an unrelated CA."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca = make_ca(d, "test-ca")
    _, wrong_ca = make_ca(d, "wrong-ca")
    key, csr, cert, ext = d / "server-key.pem", d / "server.csr", d / "server.pem", d / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return {"ca": ca, "wrong_ca": wrong_ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_node(tls_material: dict[str, Path]) -> Iterator[rabbit_node.RabbitNode]:
    reason = rabbit_node.available()
    if reason:
        service_missing(reason)
    node = rabbit_node.RabbitNode(
        tls={
            "cacertfile": tls_material["ca"],
            "certfile": tls_material["cert"],
            "keyfile": tls_material["key"],
        }
    )
    node.start()
    yield node
    node.destroy()


@pytest.fixture(scope="module")
def fault_db() -> Iterator[faultdb.FaultDatabase]:
    """A PostgreSQL database of this module's own (faults_<random>), migrated, dropped at the end."""
    reason = faultdb.available()
    if reason:
        service_missing(reason)
    db = faultdb.FaultDatabase()
    db.create()
    yield db
    db.drop()


@pytest.fixture(scope="module")
def maria_db() -> Iterator[faultdb.MariaDatabase]:
    """A MariaDB database of this module's own (faults_<random>), migrated, dropped at the end."""
    reason = faultdb.maria_available()
    if reason:
        service_missing(reason)
    db = faultdb.MariaDatabase()
    db.create()
    yield db
    db.drop()


@pytest.fixture
def make_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Build the test's Cluster on an emptied database (the module's PostgreSQL one unless ``db=`` is
    given); every process it started is killed at the end."""
    made: list[Cluster] = []

    def make(port: int, *, db: faultdb.FaultDatabase | None = None, **kwargs: Any) -> Cluster:
        db = db or request.getfixturevalue("fault_db")
        db.reset()
        name = kwargs.pop("name", f"f{uuid.uuid4().hex[:12]}")
        cluster = Cluster(db, port=port, name=name, log_dir=tmp_path, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.kill_all()


def summarize(request: pytest.FixtureRequest, line: str, injected: int, lost: int, doubled: int) -> None:
    """Print a test's ``faults: ...`` line to the terminal (with or without -s) and keep it, with its
    numbers, for the session summary."""
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown with or without -s
            terminal.write_line(line)
    request.config.stash.setdefault(SUMMARY_KEY, []).append(
        (request.node.name, injected, lost, doubled, line)
    )


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[int, faultdb.Books], None]:
    """Print ``faults: N injected, lost L, duplicated effects D`` to the terminal (with or without -s),
    keep it for the session summary, then assert that nothing was lost or doubled."""

    def write(injected: int, books: faultdb.Books) -> None:
        line = (
            f"faults: {injected} injected, lost {books.lost}, duplicated effects {books.duplicated_effects}"
        )
        summarize(request, line, injected, books.lost, books.duplicated_effects)
        assert books.lost == 0, f"{books.lost} messages lost: {books}"
        assert books.duplicated_effects == 0, f"{books.duplicated_effects} effects applied twice: {books}"
        assert books.complete, f"some rows are not SUCCEEDED or not in the inbox: {books}"
        assert books.dead_lettered == 0, f"{books.dead_lettered} messages were dead-lettered: {books}"

    return write


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY_KEY, [])
    if not lines:
        return
    injected = sum(n for _, n, _, _, _ in lines)
    lost = sum(n for _, _, n, _, _ in lines)
    doubled = sum(n for _, _, _, n, _ in lines)
    terminalreporter.section("fault injection")
    for name, _, _, _, line in lines:
        terminalreporter.write_line(f"{name}: {line}")
    terminalreporter.write_line(
        f"faults total: {injected} injected in {len(lines)} tests, lost {lost}, duplicated effects {doubled}"
    )
