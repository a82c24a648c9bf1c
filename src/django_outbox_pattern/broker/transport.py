"""The broker boundary: ``StompTransport``, the only module importing stomp.py.

It implements ``wire.Transport`` (the contract and the values that cross it live in wire.py); what
stomp.py's receiver thread does with incoming frames is in receiver.py, the SEND/ACK/NACK bytes it writes
itself in frames.py.

Facts this is built on (RabbitMQ 3.10 STOMP): a RECEIPT for a SEND arrives only after the publisher
confirm; an ERROR frame closes the connection; listeners run on stomp.py's single receiver thread, so
they only record what happened and hand messages off. Nothing here reconnects: the relay's and the
consumer's supervisors own reconnecting.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import frames, receiver, wire
from django_outbox_pattern.broker import hosts as host_order

__all__ = ["StompTransport", "wrap_errors"]

logger = logging.getLogger(__name__)

DISCONNECT_TIMEOUT_S = 1.0  # longest wait for the broker's DISCONNECT receipt before closing the socket


@contextlib.contextmanager
def wrap_errors(what: str) -> Iterator[None]:
    """Translate stomp.py and socket errors into the project's own exceptions."""
    import stomp.exception

    try:
        yield
    except exceptions.OutboxError:
        raise
    except stomp.exception.NotConnectedException as exc:
        raise exceptions.ConnectionClosed(f"Broker connection lost while trying to {what}.") from exc
    except stomp.exception.ConnectFailedException as exc:
        raise exceptions.ConnectionFailed() from exc
    except (stomp.exception.StompException, OSError) as exc:
        raise exceptions.ConnectionClosed(f"Broker connection failed while trying to {what}: {exc}") from exc


class StompTransport:
    """A STOMP 1.2 connection to RabbitMQ built from ``OutboxSettings``."""

    _ids = itertools.count(1)

    def __init__(
        self, settings: conf.OutboxSettings, *, hosts: Collection[tuple[str, int]] | None = None
    ) -> None:
        self._settings = settings
        self._configured_hosts = list(hosts or settings.DEFAULT_STOMP_HOST_AND_PORTS)
        self._hosts = host_order.ORDER.order(self._configured_hosts)
        self._host: tuple[str, int] | None = None  # the node of the current connection
        self._tracker = receiver.Tracker()
        self._conn: Any = None
        self._encoder: frames.FrameEncoder | None = None  # None: every frame goes through stomp.py
        self._acks_lock = threading.Lock()
        self._deferred_acks: list[bytes] = []
        self._listeners: dict[str, Any] = {}  # the user's (DEFAULT_*_LISTENER_CLASS), by name
        self.name = f"stomp-{next(self._ids)}"

    def __repr__(self) -> str:  # never shows the passcode
        s = self._settings
        return f"<StompTransport {s.DEFAULT_STOMP_USERNAME}@{self._hosts} vhost={s.DEFAULT_STOMP_VHOST!r}>"

    @property
    def server(self) -> str:
        return self._tracker.server

    @property
    def host(self) -> tuple[str, int] | None:
        """The (host, port) of the current connection, None when not connected."""
        return self._host

    @property
    def negotiated_heartbeat(self) -> str:
        return self._tracker.heartbeat

    def _build(self) -> Any:
        s = self._settings
        receiver.mask_stomp_logs()
        connection_class = conf.import_object(s.DEFAULT_CONNECTION_CLASS)
        conn = connection_class(
            host_and_ports=self._hosts,
            heartbeats=tuple(s.DEFAULT_STOMP_HEARTBEATS),
            vhost=s.DEFAULT_STOMP_VHOST,
            reconnect_attempts_max=1,
            try_loopback_connect=False,
            timeout=s.DEFAULT_CONNECT_TIMEOUT,
            keepalive=True,
            auto_decode=False,
        )
        if s.DEFAULT_STOMP_USE_SSL:
            validator = (
                conf.import_object(s.DEFAULT_STOMP_CERT_VALIDATOR) if s.DEFAULT_STOMP_CERT_VALIDATOR else None
            )
            conn.set_ssl(
                for_hosts=self._hosts,
                key_file=s.DEFAULT_STOMP_KEY_FILE,
                cert_file=s.DEFAULT_STOMP_CERT_FILE,
                ca_certs=s.DEFAULT_STOMP_CA_CERTS,
                cert_validator=validator,
                ssl_version=s.ssl_version,
                password=s.DEFAULT_STOMP_SSL_PASSWORD,
            )
        conn.set_listener(self.name, receiver.Listener(self._tracker))
        for name, listener in self._listeners.items():
            conn.set_listener(name, listener)
        return conn

    def set_listener(self, name: str, listener: Any) -> None:
        """Register a stomp.py listener (``on_message(frame)``, ...) on this and every later connection of
        this transport. It runs on the receiver thread, next to the project's own: it must never block."""
        self._listeners[name] = listener
        if self._conn is not None:
            self._conn.set_listener(name, listener)

    def get_listener(self, name: str) -> Any:
        return self._listeners.get(name)

    def remove_listener(self, name: str) -> None:
        self._listeners.pop(name, None)
        if self._conn is not None:
            self._conn.remove_listener(name)

    def connect(self) -> None:
        """Open the connection and wait for CONNECTED; raise ConnectionFailed with the reason otherwise."""
        self.disconnect()
        self._tracker.reset()
        self._hosts = host_order.ORDER.order(self._configured_hosts)  # a node that failed lately goes last
        s = self._settings
        conn = self._build()
        try:
            with wrap_errors("connect"):
                conn.connect(s.DEFAULT_STOMP_USERNAME, s.DEFAULT_STOMP_PASSCODE, wait=False)
        except exceptions.OutboxError as exc:
            self._host_failed(conn)
            self._close_quietly(conn)
            hosts = ", ".join(f"{h}:{p}" for h, p in self._hosts)
            cause = str(exc.__cause__ or "").strip()
            if s.DEFAULT_STOMP_USE_SSL:
                cause = (cause + "; " if cause else "") + (
                    "TLS is on: is this the TLS listener, and does DEFAULT_STOMP_CA_CERTS hold the CA "
                    "that signed the broker's certificate?"
                )
            raise exceptions.ConnectionFailed(
                f"Could not connect to the broker at {hosts}: is RabbitMQ running with the "
                "rabbitmq_stomp plugin enabled? Run `outboxctl check`." + (f" ({cause})" if cause else "")
            ) from exc
        t = self._tracker
        ok = t.wait(lambda: t.connected or t.closed or t.error is not None, s.DEFAULT_CONNECT_TIMEOUT)
        if not ok or not t.connected:
            self._host_failed(conn)
            self._close_quietly(conn)
            if t.error is not None:
                raise exceptions.ConnectionFailed(
                    f"The broker refused the STOMP connection ({t.error}): check the username, passcode and "
                    f"vhost {s.DEFAULT_STOMP_VHOST!r}."
                )
            reason = (
                "it closed the connection"
                if t.closed
                else f"no CONNECTED within {s.DEFAULT_CONNECT_TIMEOUT}s"
            )
            raise exceptions.ConnectionFailed(
                f"The broker did not accept the STOMP connection ({reason}): is this the STOMP port, "
                "and does DEFAULT_STOMP_USE_SSL match the listener? Run `outboxctl check`."
            )
        self._conn = conn
        self._host = _current_host(conn)
        self._encoder = _frame_encoder(conn)
        with self._acks_lock:
            self._deferred_acks = []  # those of an earlier connection mean nothing on this one
        logger.debug("Connected to %s", self._tracker.server, extra={"action": "broker_connected"})

    def _host_failed(self, conn: Any) -> None:
        """After a failed connect, the next one starts with another host: stomp.py moves on to the next
        host only when a TCP connect fails, not when a host accepts TCP and then fails STOMP (or hangs)."""
        host_order.ORDER.failed(_current_host(conn) or self._hosts[0])

    def _close_quietly(self, conn: Any) -> None:
        self._tracker.closing = True
        with contextlib.suppress(Exception):
            conn.transport.stop_running = True
            conn.transport.running = False
            conn.transport.disconnect_socket()

    def disconnect(self) -> None:
        """Close the connection; never raises, never blocks for long.

        A healthy connection gets a DISCONNECT (stomp.py closes the socket on its receipt), awaited at most
        DISCONNECT_TIMEOUT_S; a broken or silent one is closed at once. stomp.py's own
        ``disconnect(receipt=...)`` would wait without a limit on a stalled network.
        """
        conn, self._conn = self._conn, None
        host, self._host = self._host, None
        if conn is None:
            return
        t = self._tracker
        if t.closed and not t.closing:  # lost (node down or hung: heart-beats stopped): try others first
            host_order.ORDER.failed(host)
        t.closing = True
        try:
            if conn.is_connected() and not t.closed and t.error is None:
                self._flush_to(conn)  # deferred ACKs first
                conn.disconnect()
                t.wait(lambda: t.closed, DISCONNECT_TIMEOUT_S)
        except Exception:
            logger.debug(
                "Error while disconnecting", exc_info=True, extra={"action": "broker_disconnect_failed"}
            )
        self._close_quietly(conn)

    def is_connected(self) -> bool:
        t = self._tracker
        return self._conn is not None and t.connected and not t.closed and self._conn.is_connected()

    def _require(self) -> Any:
        if self._conn is None or self._tracker.closed:
            reason = f": {self._tracker.error}" if self._tracker.error else ""
            raise exceptions.ConnectionClosed(f"Not connected to the broker{reason}.")
        return self._conn

    def send(
        self, destination: str, body: str | bytes, headers: wire.Headers, *, receipt: str | None = None
    ) -> None:
        conn = self._require()
        with wrap_errors("send"):
            if receipt is None:
                conn.send(destination=destination, body=body, headers=dict(headers))
            else:
                conn.send(destination=destination, body=body, headers=dict(headers), receipt=receipt)

    def send_many(self, messages: Sequence[wire.OutgoingFrame]) -> None:
        """Send the messages in order, written to the socket together (one ``send()`` each when the
        connection class is not one of stomp.py's own). On an error some of them may have been sent."""
        conn = self._require()
        encoder = self._encoder
        if encoder is None:
            for index, m in enumerate(messages):
                try:
                    self.send(m.destination, m.body, m.headers, receipt=m.receipt)
                except exceptions.ConnectionClosed as exc:
                    raise exceptions.SendInterrupted(str(exc), written=index) from exc
            return
        data = b"".join(encoder.send(m.destination, m.body, m.headers, m.receipt) for m in messages)
        self._write(conn, data, "send")

    def _write(self, conn: Any, data: bytes, what: str) -> None:
        """Hand encoded frames to stomp.py's writer, as its own ``transmit()`` does."""
        writer = conn.transport
        with wrap_errors(what):
            # stomp.py 9 over TLS (``blocking`` is False): its receiver thread writes from ``send_queue``.
            # Otherwise, and always on stomp.py 8 (``blocking`` stays None, no ``send_queue``), the caller
            # writes under stomp.py's socket lock.
            if getattr(writer, "blocking", None) is False and getattr(writer, "send_queue", None) is not None:
                writer.send_queue.put(data)
            else:
                writer.send(data)

    def wait_for_receipts(self, receipts: Collection[str], timeout: float) -> set[str]:
        """Wait until every receipt arrived, the connection closed, or the timeout; return those that came."""
        wanted = set(receipts)
        t = self._tracker
        t.wait(lambda: wanted <= t.receipts or t.closed or t.error is not None, timeout)
        with t.cond:
            got = wanted & t.receipts
            t.receipts -= got
        return got

    @property
    def last_error(self) -> str | None:
        return self._tracker.error

    def subscribe(self, destination: str, subscription_id: str, headers: wire.Headers, *, ack: str) -> None:
        conn = self._require()
        with wrap_errors("subscribe"):
            conn.subscribe(destination=destination, id=subscription_id, ack=ack, headers=dict(headers))

    def unsubscribe(self, subscription_id: str) -> None:
        conn = self._require()
        with wrap_errors("unsubscribe"):
            conn.unsubscribe(id=subscription_id)

    def ack(self, ack_id: str, subscription_id: str, *, defer: bool = False) -> None:
        """ACK a message; with ``defer``, the frame waits for ``flush()`` (several go out in one write)."""
        conn = self._require()
        if self._encoder is None:
            with wrap_errors("ack"):
                conn.ack(ack_id)  # STOMP 1.2 acks by the message's `ack` id alone
            return
        frame = self._encoder.ack(ack_id, subscription_id)
        if defer:
            with self._acks_lock:
                self._deferred_acks.append(frame)
            return
        self._write(conn, frame, "ack")

    def flush(self) -> None:
        """Write the deferred ACKs. A connection that failed meanwhile loses them: the broker redelivers
        those messages, and the inbox knows them."""
        self._flush_to(self._require())

    def _flush_to(self, conn: Any) -> None:
        with self._acks_lock:
            pending, self._deferred_acks = self._deferred_acks, []
        if pending:
            self._write(conn, b"".join(pending), "ack")

    def nack(self, ack_id: str, subscription_id: str, *, requeue: bool = False) -> None:
        conn = self._require()
        if self._encoder is not None and self._encoder.version != "1.0":
            self._write(conn, self._encoder.nack(ack_id, subscription_id, requeue=requeue), "nack")
            return
        with wrap_errors("nack"):
            conn.nack(ack_id, requeue="true" if requeue else "false")

    def set_message_handler(self, handler: wire.MessageHandler | None) -> None:
        self._tracker.handler = handler


def _current_host(conn: Any) -> tuple[str, int] | None:
    """The (host, port) stomp.py's transport is connected to, if it says."""
    host = getattr(getattr(conn, "transport", None), "current_host_and_port", None)
    return (str(host[0]), int(host[1])) if host else None


def _frame_encoder(conn: Any) -> frames.FrameEncoder | None:
    """An encoder for ``conn``'s frames when it is one of stomp.py's own connection classes, used as is
    (a subclass that changes how frames are built or written keeps stomp.py's path), else None."""
    import stomp.connect
    import stomp.transport

    connect = stomp.connect
    stock = (connect.StompConnection10, connect.StompConnection11, connect.StompConnection12)
    version = getattr(conn, "version", None)
    if (
        type(conn) not in stock
        or type(conn.transport) is not stomp.transport.Transport
        or version not in frames.SUPPORTED_VERSIONS
    ):
        return None
    return frames.FrameEncoder(version)
