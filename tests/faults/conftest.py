"""Fixtures of the fault suite: private RabbitMQ nodes that tests may restart, TLS material."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.support import rabbit_node


@pytest.fixture(scope="module")
def private_node() -> Iterator[rabbit_node.RabbitNode]:
    reason = rabbit_node.available()
    if reason:
        service_missing(reason)
    node = rabbit_node.RabbitNode()
    node.start()
    yield node
    node.destroy()


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
