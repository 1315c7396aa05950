"""B-tree indexes for the busiest reads (issue 16, bench/load_bench.py on 10,000 alloys):

* ``lab_alloy (tg_mean_k)``: the alloy list's and the API's Tg range filter (with the elements
  filter: the GIN index on fractions and this one combine) — 14 → 3 ms for the count and the page;
* ``lab_alloy (formula)``: the list's default order, a page of 50 read off the index instead of
  sorting every alloy — 14 → 0.3 ms unfiltered;
* ``lab_sample (created_at, id)``: the sample list, newest first (scanned backwards) — 6.8 → 0.3 ms.

Raw SQL like 0005 (the GIN index), outside the models' state: the same on SQLite and PostgreSQL."""

from django.db import migrations

INDEXES = {
    "lab_alloy_tg_mean_k_btree": "lab_alloy (tg_mean_k)",
    "lab_alloy_formula_btree": "lab_alloy (formula)",
    "lab_sample_created_btree": "lab_sample (created_at, id)",
}


class Migration(migrations.Migration):
    dependencies = [("lab", "0010_stored_analyses")]
    operations = [
        migrations.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {target}", f"DROP INDEX IF EXISTS {name}")
        for name, target in INDEXES.items()
    ]
