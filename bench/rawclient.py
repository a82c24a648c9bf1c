"""The reference client of the end-to-end relay scenario: plain stomp.py, no project code, no Django.

    python -m bench.rawclient DESTINATION COUNT [BODY_BYTES]

Connects to the broker named by ``OUTBOX_STOMP_HOST``/``OUTBOX_STOMP_PORT`` (guest/guest unless
``OUTBOX_STOMP_USERNAME``/``OUTBOX_STOMP_PASSCODE`` say otherwise), sends COUNT persistent JSON messages
of about BODY_BYTES bytes, each with a ``receipt`` header, without waiting between them (pipelined), then
waits for every RECEIPT and disconnects. Exit 0 when every receipt came back, 1 otherwise. The
orchestrator times this process from spawn to exit, as it times ``manage.py publish --until-empty``.
Only the standard library and stomp.py are imported here, so nothing of ours makes it slower or faster.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from typing import Any

import stomp

RECEIPT_TIMEOUT_S = 300


class _Receipts(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = threading.Event()
        self.error = ""

    def on_receipt(self, frame: Any) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()

    def on_error(self, frame: Any) -> None:
        self.error = frame.body or str(frame.headers)
        self.done.set()


def _body(seq: int, size: int) -> str:
    body = {"seq": seq, "kind": "order.created", "customer": f"customer-{seq:08d}", "note": ""}
    body["note"] = "x" * max(0, size - len(json.dumps(body)))
    return json.dumps(body)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    destination, count = argv[0], int(argv[1])
    size = int(argv[2]) if len(argv) == 3 else 200
    host = os.environ.get("OUTBOX_STOMP_HOST", "127.0.0.1")
    port = int(os.environ.get("OUTBOX_STOMP_PORT", "61613"))
    conn = stomp.Connection12([(host, port)], vhost="/")
    receipts = _Receipts(count)
    conn.set_listener("receipts", receipts)
    conn.connect(
        os.environ.get("OUTBOX_STOMP_USERNAME", "guest"),
        os.environ.get("OUTBOX_STOMP_PASSCODE", "guest"),
        wait=True,
    )
    for seq in range(count):
        msg_id = str(uuid.uuid4())
        conn.send(
            destination,
            _body(seq, size),
            content_type="application/json",
            headers={"dop-msg-id": msg_id, "persistent": "true"},
            receipt=f"r-{seq}",
        )
    ok = receipts.done.wait(RECEIPT_TIMEOUT_S) and not receipts.error and receipts.count >= count
    conn.disconnect()
    if not ok:
        print(f"raw client: {receipts.count} of {count} receipts; {receipts.error}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
