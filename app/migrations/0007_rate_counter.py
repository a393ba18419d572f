"""The throttles' counters (app/throttles.py): in the database, counted atomically, instead of
the cache's read-modify-write that concurrent requests could undercount."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("app", "0006_cache_table"),
    ]

    operations = [
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=200)),
                ("window", models.BigIntegerField()),
                ("count", models.PositiveIntegerField(default=0)),
                ("last", models.FloatField()),
                ("expires", models.BigIntegerField(db_index=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("key", "window"), name="ratecounter_key_window")
                ],
            },
        ),
    ]
