"""STOMP frames as bytes, for writing many of them to the socket at once (pure code, no I/O).

stomp.py builds every frame through several layers of Python (a Frame object, listeners' ``on_send``,
header escaping, line lists) and writes each one with its own ``sendall``. The relay sends a whole batch
and the consumer acks every message, so ``StompTransport`` writes those frames itself: encoded here, joined,
and handed to stomp.py's socket writer in one call, under its socket lock (heart-beats never land inside a
frame). Only these fixed shapes are encoded; CONNECT, SUBSCRIBE and the rest still go through stomp.py.

The output is what stomp.py writes for the same frame: ``COMMAND``, one ``name:value`` line per header
(escaped as the negotiated protocol version says), a blank line, the body, NUL. SEND frames always carry
``content-length``, so a body may hold any character, NUL included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

# Header escaping by STOMP version (1.0 has none; 1.1 lacks \r; 1.2 escapes names and values alike).
# The backslash goes first, so that the backslashes the others add are not escaped again.
_ESCAPES: dict[str, tuple[tuple[str, str], ...]] = {
    "1.0": (),
    "1.1": (("\\", "\\\\"), ("\n", "\\n"), (":", "\\c")),
    "1.2": (("\\", "\\\\"), ("\n", "\\n"), (":", "\\c"), ("\r", "\\r")),
}
SUPPORTED_VERSIONS = frozenset(_ESCAPES)
# Stand-ins for the ':' and the line end of each header line while a whole header block is escaped at once
# (a relayed message's sent-time holds ':', so escaping is the usual case, not the exception).
_NAME_END, _LINE_END = "\0", "\1"


def _escaper(pairs: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    specials = re.compile("[" + re.escape("".join(char for char, _ in pairs)) + "]")

    def escape(text: str) -> str:
        if specials.search(text) is None:  # the usual case: nothing to escape, no copy
            return text
        for char, escaped in pairs:
            text = text.replace(char, escaped)
        return text

    return escape


class FrameEncoder:
    """Encodes SEND, ACK and NACK frames for one negotiated STOMP version ("1.0", "1.1" or "1.2")."""

    def __init__(self, version: str) -> None:
        if version not in _ESCAPES:
            raise ValueError(f"unsupported STOMP version {version!r}: one of {sorted(_ESCAPES)}")
        self.version = version
        self._escape = _escaper(_ESCAPES[version]) if _ESCAPES[version] else None

    def _header_lines(self, headers: Sequence[tuple[str, str]]) -> str:
        escape = self._escape
        if escape is None:
            return "".join(f"{name}:{value}\n" for name, value in headers)
        # The block is escaped in one pass, its separators held by stand-ins that no name or value holds
        # (counted: if one does, each name and value is escaped on its own).
        block = "".join(f"{name}{_NAME_END}{value}{_LINE_END}" for name, value in headers)
        if block.count(_NAME_END) == block.count(_LINE_END) == len(headers):
            return escape(block).replace(_NAME_END, ":").replace(_LINE_END, "\n")
        return "".join(f"{escape(name)}:{escape(value)}\n" for name, value in headers)

    def send(
        self, destination: str, body: str | bytes, headers: Mapping[str, str], receipt: str | None
    ) -> bytes:
        """A SEND frame; ``destination``, ``receipt`` and ``content-length`` replace any such header."""
        payload = body if isinstance(body, bytes) else body.encode("utf-8")
        fixed = {"destination": destination, "content-length": str(len(payload))}
        if receipt is not None:
            fixed["receipt"] = receipt
        lines = [(name, str(value)) for name, value in headers.items() if name not in fixed]
        lines.extend(fixed.items())
        head = "SEND\n" + self._header_lines(sorted(lines)) + "\n"
        return head.encode("utf-8") + payload + b"\0"

    def ack(self, ack_id: str, subscription_id: str) -> bytes:
        """An ACK frame: STOMP 1.2 acks by ``id``, 1.0/1.1 by ``message-id`` and ``subscription``."""
        return self._settle("ACK", ack_id, subscription_id, None)

    def nack(self, ack_id: str, subscription_id: str, *, requeue: bool) -> bytes:
        """A NACK frame with RabbitMQ's ``requeue`` header (STOMP 1.0 has no NACK: ValueError)."""
        if self.version == "1.0":
            raise ValueError("STOMP 1.0 has no NACK frame")
        return self._settle("NACK", ack_id, subscription_id, "true" if requeue else "false")

    def _settle(self, command: str, ack_id: str, subscription_id: str, requeue: str | None) -> bytes:
        if self.version == "1.2":
            headers = [("id", ack_id)]
        else:
            headers = [("message-id", ack_id), ("subscription", subscription_id)]
        if requeue is not None:
            headers.append(("requeue", requeue))
        return (command + "\n" + self._header_lines(sorted(headers)) + "\n\0").encode("utf-8")
