"""A small loopback TCP proxy for fault tests: cut connections, refuse new ones, or stall traffic.

Put it in front of the broker (``TcpProxy(("127.0.0.1", 61613))``) and point the settings at
``proxy.port``. ``cut()`` closes every live connection (the broker sees a dropped client, the client a
reset). ``refuse(True)`` closes new connections at once (broker "down"). ``stall(True)`` keeps sockets
open but forwards nothing (a silent network), so only heartbeats can notice.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class TcpProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.setblocking(False)
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._refuse = False
        self._stall = False
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._loop, name="tcpproxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refuse(self, value: bool = True) -> None:
        self._refuse = value

    def stall(self, value: bool = True) -> None:
        self._stall = value

    def cut(self) -> None:
        """Close every live connection in both directions."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.cut()
        with contextlib.suppress(OSError):
            self._server.close()

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ, None)
        registered: dict[socket.socket, socket.socket] = {}
        while not self._stop.is_set():
            with self._lock:
                live = {s: peer for a, b in self._pairs for s, peer in ((a, b), (b, a))}
            for s in list(registered):
                if s not in live:
                    with contextlib.suppress(KeyError, ValueError, OSError):
                        sel.unregister(s)
                    del registered[s]
            for s, peer in live.items():
                if s not in registered:
                    with contextlib.suppress(ValueError, OSError):
                        sel.register(s, selectors.EVENT_READ, peer)
                        registered[s] = peer
            for key, _ in sel.select(timeout=0.05):
                if key.fileobj is self._server:
                    self._accept()
                elif not self._stall:
                    self._forward(key.fileobj, key.data)  # type: ignore[arg-type]
        sel.close()

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except OSError:
            return
        if self._refuse:
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        client.setblocking(True)
        upstream.setblocking(True)
        with self._lock:
            self._pairs.append((client, upstream))
            self.accepted += 1

    def _forward(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            data = src.recv(65536)
            if data:
                dst.sendall(data)
                return
        except OSError:
            pass
        with self._lock:
            self._pairs = [p for p in self._pairs if src not in p]
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()
