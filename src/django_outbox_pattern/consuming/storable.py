"""What the inbox stores of a message: its body and headers in a form every database accepts.

A ``Received`` row keeps the decoded JSON body and the headers in JSON columns. Some values that a
callback handles fine cannot be stored as they are: PostgreSQL's jsonb rejects the NUL character
(``\\u0000``) and lone surrogates (``\\ud800``), MySQL's JSON type rejects lone surrogates, and a body that
is not UTF-8 has no text form at all. Nesting deeper than the JSON encoder's recursion limit cannot be
written either. Rather than failing the message, the inbox keeps such a body *raw*:

    {"dop-raw-body": "<base64 of the bytes received>", "dop-raw-reason": "..."}

so nothing is lost and the row still deduplicates the message. Header values get the NUL character and
lone surrogates backslash-escaped (``\\x00``, ``\\ud800``). Pure functions, no database access.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

RAW_BODY_KEY = "dop-raw-body"
RAW_REASON_KEY = "dop-raw-reason"
MAX_STORED_DEPTH = 200  # deeper bodies are stored raw: the JSON encoder recurses once per level
# Characters no database's JSON column takes in a string: NUL and the surrogate code points.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INF = float("inf")
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1


def is_storable_text(text: str) -> bool:
    """True when ``text`` holds neither the NUL character nor a lone surrogate."""
    return _UNSTORABLE.search(text) is None


def escape_text(text: str) -> str:
    """``text`` with NUL and lone surrogates written as backslash escapes (readable, storable)."""
    if is_storable_text(text):
        return text
    return _UNSTORABLE.sub(lambda m: "\\x00" if m.group() == "\x00" else f"\\u{ord(m.group()):04x}", text)


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with names and values escaped where a database would reject them."""
    return {escape_text(str(k)): escape_text(str(v)) for k, v in headers.items()}


def why_unstorable(body: Any) -> str | None:
    """Why ``body`` (a decoded JSON value) cannot be stored as JSON, or None when it can.

    Walks the value without recursion, so any depth is safe to inspect.
    """
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not is_storable_text(value):
                return "the body holds a NUL character or a lone surrogate"
        elif isinstance(value, dict):
            if depth > MAX_STORED_DEPTH:
                return f"the body is nested deeper than {MAX_STORED_DEPTH} levels"
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_STORED_DEPTH:
                return f"the body is nested deeper than {MAX_STORED_DEPTH} levels"
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, float) and (value != value or value in (_INF, -_INF)):
            return "the body holds NaN or Infinity, which JSON columns reject"
        elif isinstance(value, int) and not isinstance(value, bool) and not _MIN_INT <= value <= _MAX_INT:
            return "the body holds a number beyond 64 bits"
    return None


def storable_body(body: Any, raw: bytes | None) -> Any:
    """``body`` when every database stores it as JSON, else the raw bytes as a base64 envelope.

    ``raw`` is the body as received; without it (a ``Payload`` built by hand) the value is stored
    through ``repr`` in the envelope's place.
    """
    reason = why_unstorable(body)
    if raw is not None and reason is None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            reason = "the body is not UTF-8"
    if reason is None:
        return body
    if raw is None:
        raw = escape_text(repr(body)).encode("utf-8")
    return {RAW_BODY_KEY: base64.b64encode(raw).decode("ascii"), RAW_REASON_KEY: reason}


def raw_body(stored: Any) -> bytes | None:
    """The bytes of a body stored raw by ``storable_body``, or None when it was stored as JSON."""
    if isinstance(stored, dict) and set(stored) == {RAW_BODY_KEY, RAW_REASON_KEY}:
        return base64.b64decode(stored[RAW_BODY_KEY])
    return None
