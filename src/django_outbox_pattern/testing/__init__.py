"""Real in-memory twins of the engine's boundaries, for unit tests of the engine and for users' own tests.

- ``MemoryBroker`` / ``MemoryTransport``: the broker and the ``Transport`` (testing/broker.py).
"""

from __future__ import annotations

from django_outbox_pattern.testing.broker import MemoryBroker, MemoryTransport, SentMessage

__all__: list[str] = ["MemoryBroker", "MemoryTransport", "SentMessage"]
