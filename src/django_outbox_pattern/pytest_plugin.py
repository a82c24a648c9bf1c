"""pytest plugin for projects that use django-outbox-pattern (registered through the pytest11 entry point).

Fixtures:

- ``memory_broker``: a fresh ``testing.MemoryBroker`` (an in-memory broker recording every send).
- ``outbox``: a ``testkit.OutboxTestHelper`` on that broker, with database access (pytest-django's
  ``db``; ``transactional_db`` or ``@pytest.mark.django_db(transaction=True)`` are honoured):
  ``outbox.published(destination=None)``, ``outbox.assert_published(destination, body=..., count=...,
  headers=...)``, ``outbox.drain()`` (runs the relay synchronously, returns what it sent), ``outbox.sent``.

The plugin imports nothing from Django at load time, so it is harmless in projects that do not use
Django; the fixtures import it when a test asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from django_outbox_pattern.testing import MemoryBroker
    from django_outbox_pattern.testkit import OutboxTestHelper


@pytest.fixture
def memory_broker() -> MemoryBroker:
    """An empty in-memory broker; ``memory_broker.sent`` lists every message sent to it."""
    from django_outbox_pattern.testing import MemoryBroker

    return MemoryBroker()


@pytest.fixture
def outbox(request: pytest.FixtureRequest, memory_broker: MemoryBroker) -> OutboxTestHelper:
    """The outbox of this test: rows written, assertions on them, and a synchronous relay (``drain()``)."""
    try:
        request.getfixturevalue("db")
    except pytest.FixtureLookupError:
        pytest.fail("The outbox fixture needs pytest-django: pip install pytest-django", pytrace=False)
    from django_outbox_pattern.testkit import OutboxTestHelper

    return OutboxTestHelper(memory_broker)
