# Expand-then-contract: the columns 0008 added get a database-level default, so code that does not know them
# (3.x, while both releases run or after a rollback) can still INSERT outbox rows; ours relays those rows.
import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0008_published_relay_columns")]

    operations = [
        migrations.AlterField(
            model_name="published",
            name="available_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
            ),
        ),
        migrations.AlterField(
            model_name="published",
            name="last_error",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AlterField(
            model_name="published",
            name="locked_by",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
    ]
