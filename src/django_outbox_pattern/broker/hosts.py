"""Which broker host a new connection tries first: spread processes over a cluster, avoid a failed node.

``DEFAULT_STOMP_HOST_AND_PORTS`` lists every node of a cluster. stomp.py tries the hosts in the given order
and moves on only when a TCP connect fails; a node that is frozen (or overloaded) still accepts TCP and
then never answers, so every connection would wait ``DEFAULT_CONNECT_TIMEOUT`` on it again. ``HostOrder``
keeps, for the whole process:

- a start offset drawn at random once per host list, so the relays and consumers of many processes spread
  over the nodes instead of all piling onto the first one (a single host is unaffected);
- the hosts that recently failed (a lost connection, a connect without CONNECTED): for
  ``SUSPECT_FOR_S`` they are tried only after every other host, never skipped (if all nodes failed, the
  one that failed first is tried first).

Pure logic with an injectable clock and random generator; the transport calls ``order()`` before each
connect and ``failed()`` when a host let it down.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

Host = tuple[str, int]

SUSPECT_FOR_S = 30.0  # how long a host that failed is tried last


class HostOrder:
    """Thread-safe; one per process (``ORDER``)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        suspect_for_s: float = SUSPECT_FOR_S,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._suspect_for_s = suspect_for_s
        self._lock = threading.Lock()
        self._offsets: dict[tuple[Host, ...], int] = {}
        self._failed_at: dict[Host, float] = {}

    def order(self, hosts: Sequence[Host]) -> list[Host]:
        """``hosts`` rotated by this process's offset, recently failed ones last (oldest failure first)."""
        hosts = [(str(h), int(p)) for h, p in hosts]
        if len(hosts) < 2:
            return hosts
        now = self._clock()
        with self._lock:
            offset = self._offsets.setdefault(tuple(hosts), self._rng.randrange(len(hosts)))
            rotated = hosts[offset:] + hosts[:offset]
            failed = {
                host: at
                for host, at in self._failed_at.items()
                if host in rotated and now - at < self._suspect_for_s
            }
        healthy = [host for host in rotated if host not in failed]
        return healthy + sorted(failed, key=failed.__getitem__)

    def failed(self, host: Host | None) -> None:
        """Record that ``host`` failed now (None: nothing to record)."""
        if host is None:
            return
        with self._lock:
            self._failed_at[(str(host[0]), int(host[1]))] = self._clock()

    def suspects(self) -> list[Host]:
        """Hosts that failed within ``SUSPECT_FOR_S`` (for diagnostics)."""
        now = self._clock()
        with self._lock:
            return [host for host, at in self._failed_at.items() if now - at < self._suspect_for_s]


ORDER = HostOrder()


def address_of(connection: object) -> str:
    """``host:port`` of a transport's current connection (``StompTransport.host``), ``-`` when unknown."""
    host = getattr(connection, "host", None)
    return f"{host[0]}:{host[1]}" if host else "-"
