# Expand-only: per-key ordering (docs/ordering.md). Two nullable columns with no default (NULL), so a 3.x
# release still running beside this one, or rolled back to, keeps inserting rows (they have no key and go
# out as before), one index, and one table of per-key counters that older releases ignore. The index is
# built in the migration's transaction: on a large outbox, purge published rows first.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_outbox_pattern", "0011_relay_process"),
    ]

    operations = [
        migrations.CreateModel(
            name="OrderingKey",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("last_seq", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "ordering key",
                "db_table": "dop_ordering_key",
            },
        ),
        migrations.AddField(
            model_name="published",
            name="ordering_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddField(
            model_name="published",
            name="ordering_seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="published",
            index=models.Index(fields=["ordering_key", "status", "ordering_seq"], name="dop_pub_order_idx"),
        ),
    ]
