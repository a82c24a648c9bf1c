# Expand-only: permissions for the operator repairs (metadata, no schema change) and two new tables for
# their audit trail. Existing tables are not touched, so 3.x code keeps working against this schema.
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0009_published_db_defaults")]

    operations = [
        migrations.AlterModelOptions(
            name="published",
            options={
                "verbose_name": "published",
                "permissions": [
                    ("replay_published", "Can replay failed outbox messages"),
                    ("dead_letter_published", "Can dead-letter (park) pending outbox messages"),
                    ("purge_published", "Can purge sent or failed outbox messages"),
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="received",
            options={
                "verbose_name": "received",
                "permissions": [
                    ("reprocess_received", "Can mark received messages for reprocessing (forget their id)"),
                    ("purge_received", "Can purge received messages past the retention period"),
                ],
            },
        ),
        migrations.CreateModel(
            name="Repair",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("action", models.CharField(max_length=32)),
                ("table", models.CharField(db_column="table_name", max_length=16)),
                ("via", models.CharField(max_length=16)),
                ("actor", models.CharField(max_length=255)),
                ("selection", models.JSONField(default=dict)),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={"verbose_name": "repair", "db_table": "outbox_repair", "ordering": ["-at", "-id"]},
        ),
        migrations.CreateModel(
            name="RepairedRow",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("row_id", models.CharField(db_index=True, max_length=64)),
                ("msg_id", models.CharField(blank=True, db_index=True, default="", max_length=100)),
                (
                    "repair",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rows",
                        to="django_outbox_pattern.repair",
                    ),
                ),
            ],
            options={"verbose_name": "repaired row", "db_table": "outbox_repair_row"},
        ),
    ]
