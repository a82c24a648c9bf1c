import uuid

from django.db import migrations, models

import django_outbox_pattern.models

STATUS_CHOICES = [(-1, "Failed"), (1, "Schedule"), (2, "Succeeded")]


def _uuid_pk():
    return models.UUIDField(
        default=uuid.uuid4,
        editable=False,
        help_text="Id not sequential using UUID Field",
        primary_key=True,
        serialize=False,
        unique=True,
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Published",
            fields=[
                ("id", _uuid_pk()),
                ("version", models.CharField(default="v1", max_length=100)),
                ("destination", models.CharField(max_length=255)),
                ("body", models.JSONField()),
                ("added", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField(default=django_outbox_pattern.models._one_more_day)),
                ("retry", models.PositiveIntegerField(default=0)),
                ("status", models.IntegerField(choices=STATUS_CHOICES, default=1)),
            ],
            options={"verbose_name": "published", "db_table": "published"},
        ),
        migrations.CreateModel(
            name="Received",
            fields=[
                ("id", _uuid_pk()),
                ("headers", models.JSONField(null=True)),
                ("body", models.JSONField(null=True)),
                ("added", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField(default=django_outbox_pattern.models._one_more_day)),
                ("retry", models.PositiveIntegerField(default=0)),
                ("status", models.IntegerField(choices=STATUS_CHOICES, default=2)),
            ],
            options={"verbose_name": "received", "db_table": "received"},
        ),
    ]
