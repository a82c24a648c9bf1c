# The two tables of the write-overhead benchmark.
from __future__ import annotations

from django.db import migrations, models


def _columns() -> list[tuple[str, models.Field[object, object]]]:
    return [
        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("field_one", models.CharField(max_length=100)),
        ("field_two", models.CharField(max_length=100)),
    ]


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(name="Decorated", fields=_columns()),
        migrations.CreateModel(name="Plain", fields=_columns()),
    ]
