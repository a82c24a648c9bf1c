from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0003_alter_published_version")]

    operations = [
        migrations.AlterField(
            model_name="published",
            name="added",
            field=models.DateTimeField(auto_now_add=True, db_index=True),
        ),
        migrations.AlterField(
            model_name="received",
            name="added",
            field=models.DateTimeField(auto_now_add=True, db_index=True),
        ),
        migrations.AlterField(
            model_name="received",
            name="msg_id",
            field=models.CharField(db_index=True, max_length=100, null=True, unique=True),
        ),
    ]
