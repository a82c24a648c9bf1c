"""Two tables with the same columns: saving ``Decorated`` also writes one ``Published`` row."""

from __future__ import annotations

from django.db import models

from django_outbox_pattern.decorators import Config, publish


@publish([Config(destination="/topic/bench.write")])
class Decorated(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)


class Plain(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)
