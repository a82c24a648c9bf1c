# Columns for a relay that retries with backoff, leases batches to one relay at a time and keeps the
# last error; an index that matches the claim query (status, available_at).
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0007_published_published_added_idx_and_more")]

    operations = [
        migrations.AddField(
            model_name="published",
            name="available_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="published",
            name="locked_by",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="published",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="published",
            name="published_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="published",
            index=models.Index(fields=["status", "available_at"], name="dop_pub_claim_idx"),
        ),
    ]
