"""A decorated model: every saved Order writes an outbox row in the same transaction."""

from __future__ import annotations

from django.db import models

from django_outbox_pattern.decorators import Config, publish


@publish([Config(destination="/topic/orders.created")])
class Order(models.Model):
    number = models.CharField(max_length=20, unique=True)
    customer = models.CharField(max_length=100)
    total = models.DecimalField(max_digits=10, decimal_places=2)


class Shipment(models.Model):
    """What the consuming side does with each order (written in the same transaction as the inbox row)."""

    order_number = models.CharField(max_length=20, unique=True)
    customer = models.CharField(max_length=100)
