"""The starter set: parseable, cited, plausible, small, and idempotent to load."""

import csv

import pytest
from django.core.management import call_command

from lab.management.commands.load_starter_set import STARTER_SET, starter_rows
from lab.models import Alloy, PropertyValue, Reference
from ml.composition import parse_composition


def test_every_row_parses_and_is_cited():
    rows = starter_rows()
    assert 1 <= len(rows) <= 40
    with open(STARTER_SET, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["name", "composition", "Tg_K", "Tx_K", "Tl_K", "heating_rate_K_min", "authors", "year", "journal", "doi"]
    keys = set()
    for row in rows:
        comp = parse_composition(row["composition"])
        keys.add(comp.key)
        assert row["doi"].startswith("10.") and row["authors"] and row["journal"], row
        assert 1950 <= int(row["year"]) <= 2030
        temps = [float(row[c]) for c in ("Tg_K", "Tx_K", "Tl_K") if row[c].strip()]
        assert temps == sorted(temps) and len(set(temps)) == len(temps), row  # Tg < Tx < Tl where given
        assert all(200 < t < 2500 for t in temps)
    assert len(keys) == len(rows)  # no alloy twice


@pytest.mark.django_db
def test_loading_twice_creates_nothing_new():
    call_command("load_starter_set", "--no-corpus", stdout=None)
    rows = starter_rows()
    assert Alloy.objects.count() == len(rows)
    assert Reference.objects.count() == len({r["doi"].lower() for r in rows})
    vit = Alloy.objects.get(composition_key=parse_composition("Zr41.2Ti13.8Cu12.5Ni10Be22.5").key)
    assert vit.name == "Vitreloy 1"
    ref = vit.property_values.get().reference
    assert ref.doi == "10.1063/1.110520" and ref.year == 1993 and "Peker" in ref.authors
    counts = (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count())
    call_command("load_starter_set", "--no-corpus")
    assert (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count()) == counts
