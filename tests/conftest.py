"""Shared fixtures. Services are real: a missing one skips locally and fails when CI is set."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from django_outbox_pattern import conf

STOMP_HOST = "127.0.0.1"
STOMP_PORT = int(os.environ.get("OUTBOX_STOMP_PORT", "61613"))


def service_missing(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    message = f"{what} is not available: run `bash scripts/services.sh up`"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker_available() -> None:
    if not _port_open(STOMP_HOST, STOMP_PORT):
        service_missing(f"RabbitMQ STOMP on {STOMP_HOST}:{STOMP_PORT}")


@pytest.fixture
def outbox_settings(broker_available: None) -> conf.OutboxSettings:
    """Settings pointing at the real broker, with short timeouts for tests."""
    return conf.get_settings()


@pytest.fixture
def unique_name() -> str:
    """A queue/topic name no other test (or other worktree) uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stomp_transport(outbox_settings: conf.OutboxSettings) -> Iterator[object]:
    from django_outbox_pattern.broker.transport import StompTransport

    t = StompTransport(outbox_settings)
    t.connect()
    yield t
    t.disconnect()
