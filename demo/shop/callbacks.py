"""The consumer's callback: one Shipment per order, recorded with the inbox row in one transaction."""

from __future__ import annotations

import logging

from django.db import transaction

from django_outbox_pattern.payloads import Payload
from shop.models import Shipment

logger = logging.getLogger(__name__)


def ship(payload: Payload) -> None:
    body = payload.body
    if not isinstance(body, dict) or "number" not in body:
        payload.nack()  # not an order: to the dead-letter queue
        return
    with transaction.atomic():
        Shipment.objects.create(order_number=body["number"], customer=body["customer"])
        payload.save()
    logger.info("shipped order %s", body["number"], extra={"action": "demo_order_shipped"})
