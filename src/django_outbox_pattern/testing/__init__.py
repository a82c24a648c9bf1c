"""Real in-memory twins of the engine's boundaries, for unit tests of the engine and for users' own tests.

- ``MemoryBroker`` / ``MemoryTransport``: the broker and the ``wire.Transport`` (testing/broker.py).
- ``MemoryOutbox``: the outbox store the relay claims from (``relaying.outbox.Outbox``, testing/outbox.py).
- ``MemoryInbox``: the inbox the consumer deduplicates with (``inbox.InboxStore``, testing/inbox.py).
"""

from __future__ import annotations

from django_outbox_pattern.testing.broker import MemoryBroker, MemoryTransport, SentMessage
from django_outbox_pattern.testing.inbox import MemoryInbox
from django_outbox_pattern.testing.outbox import MemoryOutbox, MemoryRow

__all__: list[str] = [
    "MemoryBroker",
    "MemoryInbox",
    "MemoryOutbox",
    "MemoryRow",
    "MemoryTransport",
    "SentMessage",
]
