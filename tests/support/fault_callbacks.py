"""The fault suite's consumer callback: one business effect and the inbox row in one transaction.

``Effect`` has no unique constraint, so an effect applied twice shows up as two rows. The callback works
for OUTBOX_FAULT_WORK_S seconds (default 0) inside the transaction, after the effect is written, so a
SIGKILL or a cut database connection lands between the effect and the commit.
"""

from __future__ import annotations

import os
import time

from django.db import transaction

from django_outbox_pattern.payloads import Payload
from tests.testapp.models import Effect


def record_effect(payload: Payload) -> None:
    work = float(os.environ.get("OUTBOX_FAULT_WORK_S", "0"))
    with transaction.atomic():
        Effect.objects.create(msg_id=payload.msg_id)
        if work:
            time.sleep(work)  # the callback's "work": kills and cuts land here
        payload.save()
