"""Keyed outbox rows and an operator's park, from a separate process (the ordering fault test).

``python -m tests.support.ordered_outbox write DEST KEYS PER_KEY [POISON_KEY:POISON_INDEX]`` inserts
KEYS x PER_KEY rows for DEST, interleaved across keys: each transaction holds one row of every key, so
row ``i`` of key ``k<j>`` (body ``{"key": "k<j>", "i": i}``) is the key's ``i + 1``-th row. The poisoned
row, when given, is written already expired (the relay dead-letters it instead of sending it). A
transaction cut under the writer is written again. Prints ``wrote N``.

``python -m tests.support.ordered_outbox park ID REASON`` parks one row with ``ops.operations.dead_letter``
(as ``outboxctl dead-letter park`` does) and prints ``parked N``.

Run with the fault suite's environment (DJANGO_SETTINGS_MODULE, OUTBOX_TEST_DB, OUTBOX_TEST_DB_NAME).
"""

from __future__ import annotations

import datetime
import sys
import time


def key_name(index: int) -> str:
    return f"k{index}"


def write(destination: str, keys: int, per_key: int, poison: str | None) -> None:
    from django.db import DatabaseError, connection, transaction
    from django.utils import timezone

    from django_outbox_pattern.models import Published

    poisoned = None
    if poison:
        key, index = poison.split(":")
        poisoned = (key, int(index))
    written = 0
    i = 0
    while i < per_key:
        rows = []
        for j in range(keys):
            row = Published(
                destination=destination, body={"key": key_name(j), "i": i}, ordering_key=key_name(j)
            )
            if (key_name(j), i) == poisoned:
                row.expires_at = timezone.now() - datetime.timedelta(hours=1)
            rows.append(row)
        try:
            with transaction.atomic():
                Published.objects.bulk_create(rows)
        except DatabaseError:
            connection.close()  # cut under us: reconnect and write this round again
            time.sleep(0.1)
            continue
        written += len(rows)
        i += 1
    print(f"wrote {written}", flush=True)


def park(row_id: str, reason: str) -> None:
    from django_outbox_pattern.ops import operations

    print(f"parked {operations.dead_letter([row_id], reason=reason, actor='fault-test')}", flush=True)


def main(argv: list[str]) -> None:
    import django

    django.setup()
    if argv[0] == "write":
        write(argv[1], int(argv[2]), int(argv[3]), argv[4] if len(argv) > 4 else None)
    elif argv[0] == "park":
        park(argv[1], argv[2])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}: write or park")


if __name__ == "__main__":
    main(sys.argv[1:])
