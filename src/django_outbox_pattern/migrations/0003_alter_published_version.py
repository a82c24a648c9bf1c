from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0002_received_msg_id")]

    operations = [
        migrations.AlterField(
            model_name="published",
            name="version",
            field=models.CharField(max_length=100, null=True),
        ),
    ]
