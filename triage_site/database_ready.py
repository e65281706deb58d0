"""Whether the database has every migration applied: the server and the worker check at start, so an unmigrated
database is one clear sentence (with the command that fixes it) instead of a traceback from the first query.
A database that cannot be reached raises as before: the worker retries that until it answers."""
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


class DatabaseNotReady(RuntimeError):
    """The database is missing migrations; the message says which apps and what to run."""


def check_database_ready(alias=DEFAULT_DB_ALIAS):
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        apps = sorted({migration.app_label for migration, _ in pending})
        raise DatabaseNotReady(
            f"the database ({connection.vendor}, {connection.settings_dict.get('NAME')}) has {len(pending)} "
            f"unapplied migration(s) in {', '.join(apps)}: run `python manage.py migrate` first")
