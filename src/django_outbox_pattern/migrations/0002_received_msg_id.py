from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="received",
            name="msg_id",
            field=models.CharField(max_length=100, null=True),
            preserve_default=False,
        ),
    ]
