# Same name and the same two indexes as the 3.x release's 0007, so databases that already applied it
# see it as applied and the schema Django expects is what they have.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_outbox_pattern", "0006_published_published_status_27c9ec_btree")]

    operations = [
        migrations.AddIndex(
            model_name="received",
            index=models.Index(fields=["status"], name="dop_rec_status_idx"),
        ),
        migrations.AddIndex(
            model_name="received",
            index=models.Index(fields=["added"], name="dop_rec_added_idx"),
        ),
    ]
