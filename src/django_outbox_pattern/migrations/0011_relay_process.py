# Expand-only: one row per running relay, beaten every half second, so that the rows a dead relay had
# leased are released within seconds. Releases that do not know the table simply ignore it.
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0010_operator_permissions")]

    operations = [
        migrations.CreateModel(
            name="RelayProcess",
            fields=[
                ("relay_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("host", models.CharField(blank=True, default="", max_length=255)),
                ("pid", models.IntegerField(default=0)),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("beat_at", models.DateTimeField(db_index=True)),
            ],
            options={"verbose_name": "relay process", "db_table": "dop_relay_process"},
        ),
    ]
