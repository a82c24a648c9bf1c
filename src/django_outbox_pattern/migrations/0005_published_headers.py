from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0004_auto_20230403_1637")]

    operations = [
        migrations.AddField(
            model_name="published",
            name="headers",
            field=models.JSONField(default=dict),
        ),
    ]
