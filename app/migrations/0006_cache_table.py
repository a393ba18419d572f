"""The table of the database cache (settings.CACHES when no Redis is configured), made by
`migrate` so that `./start.sh` needs no separate `createcachetable` step. It is made even
when the cache is Redis, so switching back needs no step either."""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "onlineocr_cache"


def create(apps, schema_editor) -> None:
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop(apps, schema_editor) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("app", "0005_history_search")]

    operations = [migrations.RunPython(create, drop)]
