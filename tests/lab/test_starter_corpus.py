"""The bundled starter corpus (Forrest & Greer 2022): its licence and citation ship with it; the
loader stores one cited value per row, reports refused rows with their reasons, and a second
run adds nothing."""

import time
from io import StringIO

import pytest
from django.core.management import call_command

from lab.models import Alloy, PropertyValue, Reference
from lab.starter_corpus import CORPUS_CSV, CORPUS_DIR, REFERENCE, load_corpus

TINY = (
    "composition,gfa_class,dmax_mm,Tg_K,Tx_K,Tl_K\n"
    "Cu60Zr40,Crystal,0,,,\n"  # row 1: the code 0 = no Dmax
    "Cu50Zr50,Ribbon,0.15,,,\n"  # row 2: the code 0.15 = no Dmax
    "Zr50Cu50,BMG,2,,,\n"  # row 3: the same alloy, another label: a GFA conflict
    "Pd40Ni40P20,BMG,25,576,671,991\n"  # row 4: with temperatures
    "Cu46Zr46Al8,Glassy,,,,\n"  # row 5: unknown class
    "Cu47Zr47Al6,BMG,250,,,\n"  # row 6: Dmax above 200 mm
    "Cu49Zr49Al2,Crystal,3,,,\n"  # row 7: a Dmax on a crystal
    "Cu45Zr45Q10,BMG,,,,\n"  # row 8: no such element
    "Mg65Cu25Y10,BMG,,600,550,,\n"  # row 9: Tg > Tx
)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text(TINY)
    return path


def test_licence_citation_and_table_ship_together():
    licence = (CORPUS_DIR / "LICENSE").read_text()
    assert "BSD 3-Clause" in licence and "Copyright (c) 2022, Robert Forrest" in licence
    assert "Neither the name of the copyright holder" in licence  # the full text, clause 3 included
    readme = (CORPUS_DIR / "README.md").read_text()
    assert "10.1039/D2DD00026A" in readme and "0.15" in readme and "Forrest" in readme and "Greer" in readme
    with open(CORPUS_CSV, encoding="utf-8") as fh:
        assert fh.readline().strip() == "composition,gfa_class,dmax_mm,Tg_K,Tx_K,Tl_K"
        assert sum(1 for _ in fh) == 5455


@pytest.mark.django_db
def test_tiny_corpus_counts_refusals_and_idempotence(tiny):
    report = load_corpus(tiny)
    assert report.rows == 9 and report.values_created == 4 and report.alloys_created == 3
    reasons = {n: reason for n, _, reason in report.refused}
    assert sorted(reasons) == [5, 6, 7, 8, 9]
    assert "unknown GFA class 'Glassy'" in reasons[5]
    assert "above 200 mm" in reasons[6]
    assert "a crystalline alloy has no Dmax" in reasons[7]
    assert "Q" in reasons[8]
    assert report.refused_by_reason["unknown GFA class"] == 1 and report.refused_by_reason["Dmax on a crystal"] == 1

    ref = Reference.objects.get(doi=REFERENCE["doi"])
    assert ref.year == 2022 and "Forrest" in ref.authors and "Greer" in ref.authors and ref.journal == "Digital Discovery"
    labels = set(PropertyValue.objects.values_list("source_label", flat=True))
    assert labels == {f"Forrest & Greer 2022, cerebral GFA table, row {n}" for n in (1, 2, 3, 4)}
    assert set(PropertyValue.objects.values_list("reference", flat=True)) == {ref.pk}

    crystal = Alloy.objects.get(formula="Cu60Zr40")
    assert (crystal.gfa_class, crystal.dmax_mm) == ("crystal", None)
    assert PropertyValue.objects.get(alloy=crystal).dmax_mm is None  # the code is not a measurement
    cuzr = Alloy.objects.get(formula="Cu50Zr50")
    assert cuzr.n_values == 2 and cuzr.gfa_conflict and cuzr.has_conflict and cuzr.gfa_class == "bmg"
    assert "row 2" in cuzr.gfa_conflict_reason and "row 3" in cuzr.gfa_conflict_reason
    pd = Alloy.objects.get(formula="Ni40Pd40P20")
    assert (pd.tg_mean_k, pd.dmax_mm, pd.dmax_is_bound) == (576, 25, False)

    counts = (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count())
    again = load_corpus(tiny)
    assert again.values_created == 0 and again.alloys_created == 0 and again.already_loaded == 4
    assert (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count()) == counts


@pytest.mark.django_db
def test_the_command_loads_classics_then_the_corpus_and_prints_refusals(tiny):
    out, err = StringIO(), StringIO()
    call_command("load_starter_set", "--corpus", str(tiny), stdout=out, stderr=err)
    assert "Starter set: 6 rows, 6 created" in out.getvalue()
    assert "Starter corpus: 9 rows, 2 alloys created, 4 values stored" in out.getvalue()  # Pd40Ni40P20 is a classic
    assert "5 refused" in out.getvalue() and "refused, unknown GFA class: 1" in out.getvalue()
    assert "corpus row 5: Cu46Zr46Al8 refused — unknown GFA class 'Glassy'" in err.getvalue()
    out = StringIO()
    call_command("load_starter_set", "--if-empty", "--corpus", str(tiny), stdout=out, stderr=StringIO())
    assert "not loaded" in out.getvalue()
    out = StringIO()
    call_command("load_starter_set", "--corpus", str(tiny), stdout=out, stderr=StringIO())
    assert "0 values stored" in out.getvalue() and "4 already loaded" in out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db
def test_the_real_corpus_loads_fast_and_once():
    started = time.monotonic()
    report = load_corpus()
    elapsed = time.monotonic() - started
    assert report.rows == 5455 and elapsed < 60
    assert report.values_created + len(report.refused) == 5455
    assert report.alloys_created > 5000 and report.with_temperatures > 500
    assert len(report.refused) < 100  # reported row by row, each with its reason
    assert Alloy.objects.exclude(gfa_class="").count() > 5000
    assert Alloy.objects.filter(dmax_mm__isnull=False).count() > 300
    assert load_corpus().values_created == 0
