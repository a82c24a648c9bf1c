"""Write outbox rows from a separate process: ``python -m tests.support.fault_writer DEST COUNT [RATE]``.

Inserts COUNT rows for DEST (body ``{"n": i}``) in transactions of up to 50 rows, at about RATE rows a
second (0 or absent: as fast as possible), then prints ``wrote COUNT``. A transaction that fails on a
lost database connection is written again (a test may cut the writer's connection too). Run with the
fault suite's environment (DJANGO_SETTINGS_MODULE, OUTBOX_TEST_DB, OUTBOX_TEST_DB_NAME).
"""

from __future__ import annotations

import sys
import time

BATCH = 50


def main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.db import DatabaseError, connection, transaction

    from django_outbox_pattern.models import Published

    destination, count = argv[0], int(argv[1])
    rate = float(argv[2]) if len(argv) > 2 else 0.0
    started = time.monotonic()
    written = 0
    while written < count:
        size = min(BATCH if rate == 0 else max(1, int(rate / 10)), count - written)
        try:
            with transaction.atomic():
                Published.objects.bulk_create(
                    [Published(destination=destination, body={"n": written + i}) for i in range(size)]
                )
        except DatabaseError:
            connection.close()  # cut under us: reconnect and write this batch again
            time.sleep(0.1)
            continue
        written += size
        if rate:
            ahead = written / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)  # pacing, not synchronisation
    print(f"wrote {written}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
