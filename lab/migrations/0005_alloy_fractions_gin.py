"""A GIN index on Alloy.fractions (PostgreSQL only): the alloy list's and the API's filter
"contains all these elements" (``fractions ?& array[...]``) reads the index instead of every
row's JSON. SQLite has no such index; there the filter scans, which is fine at its sizes."""

from django.db import migrations

INDEX = "lab_alloy_fractions_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON lab_alloy USING gin (fractions)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("lab", "0004_alloy_summary")]
    operations = [migrations.RunPython(create, drop)]
