"""Models shaped like the spec README's examples."""

from __future__ import annotations

from typing import Any

from django.db import models

from django_outbox_pattern.decorators import Config, publish
from django_outbox_pattern.models import AbstractPublished


@publish([Config(destination="/topic/my_route_key")])
class MyModel(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)


@publish([Config(destination="/topic/my_route_key", version="v1")])
class VersionedModel(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)


@publish([Config(destination="/topic/my_route_key", fields=["field_one"])])
class FieldsModel(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)


@publish([Config(destination="/topic/my_route_key", serializer="my_serializer")])
class SerializerModel(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)

    def my_serializer(self) -> dict[str, Any]:
        return {"id": self.id, "one": self.field_one, "two": self.field_two}


@publish(
    [
        Config(destination="/topic/my_route_key_1", serializer="my_serializer_1"),
        Config(destination="/topic/my_route_key_2", serializer="my_serializer_2"),
    ]
)
class MultiModel(models.Model):
    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)

    def my_serializer_1(self) -> dict[str, Any]:
        return {"id": self.id, "one": self.field_one}

    def my_serializer_2(self) -> dict[str, Any]:
        return {"id": self.id, "two": self.field_two}


@publish([Config(destination="/topic/custom_save")])
class CustomSaveModel(models.Model):
    name = models.CharField(max_length=100)
    saves = models.IntegerField(default=0)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.saves += 1
        self.name = self.name.upper()
        super().save(*args, **kwargs)


class ChildOfMyModel(MyModel):
    extra = models.CharField(max_length=20, default="")


@publish([Config(destination="/topic/order_events", ordering_key="customer")])
class CustomerEvent(models.Model):
    """Events about one customer: ordered by ``customer`` (tests/integration/test_ordering.py)."""

    customer = models.CharField(max_length=50)
    what = models.CharField(max_length=50)

    def ordering_for(self) -> str:
        return f"customer-{self.customer}"


class PlainModel(models.Model):
    """Undecorated twin of MyModel (for the write-overhead benchmark)."""

    field_one = models.CharField(max_length=100)
    field_two = models.CharField(max_length=100)


class Order(models.Model):
    """Business table written by test callbacks (one row per processed message)."""

    msg_id = models.CharField(max_length=100, unique=True)
    payload = models.JSONField(default=dict)


class Effect(models.Model):
    """A business effect without a unique constraint, so fault tests can count doubled effects."""

    msg_id = models.CharField(max_length=100, db_index=True)
    created = models.DateTimeField(auto_now_add=True)


class CustomOutbox(AbstractPublished):
    """A project's own outbox table, chosen with DEFAULT_PUBLISHED_CLASS (tests/cli/test_custom_model.py)."""

    class Meta:
        db_table = "testapp_custom_outbox"
        indexes = [models.Index(fields=["status", "available_at"], name="testapp_custom_claim_idx")]
