"""The indexes the busiest lists read exist on the configured database (SQLite in the tests,
PostgreSQL in CI): the alloy list's Tg filter and default order, the sample list's order."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def indexed_columns(table):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {tuple(c["columns"]) for c in constraints.values() if c["index"]}


@pytest.mark.parametrize("table, columns", [
    ("lab_alloy", ("tg_mean_k",)),
    ("lab_alloy", ("formula",)),
    ("lab_sample", ("created_at", "id")),
])
def test_list_index_exists(table, columns):
    assert columns in indexed_columns(table)
