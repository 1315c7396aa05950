"""The bundled starter corpus: Forrest & Greer's glass-forming-ability table (BSD-3, see
LICENSE and README.md beside this file), loaded as literature property values of one
``Reference`` so a first run has thousands of labelled alloys to train and design with.

Each row becomes one PropertyValue (GFA class, Dmax, Tg/Tx/Tl where given) whose
``source_label`` names its row ("Forrest & Greer 2022, cerebral GFA table, row N"; N counts
data rows from 1, the header not counted). Rows are checked by the import's rules
(``lab.importing.prepare_row``: the composition parser, ml.rules for temperatures, GFA class
and Dmax); a refused row is reported with its reason and never stored.

Idempotent: a row whose label is already stored on the reference is skipped, so a second run
adds nothing. One transaction; bulk inserts in batches.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from ml import rules
from ml.composition import CompositionError

from ..importing import RowRefused, prepare_row
from ..models import Alloy, PropertyValue, Reference
from ..services import refresh_alloy_summaries
from ..tables import read_table

CORPUS_DIR = Path(__file__).resolve().parent
CORPUS_CSV = CORPUS_DIR / "gfa_forrest_greer_2022.csv"
# Checked against the authors' cerebral README, which links this DOI under this title.
REFERENCE = {
    "doi": "10.1039/d2dd00026a",
    "authors": "R. Forrest; A. L. Greer",
    "year": 2022,
    "journal": "Digital Discovery",
    "title": "Machine-learning improves understanding of glass formation in metallic systems",
    "label": "Forrest & Greer 2022, cerebral GFA table",
}
ROW_LABEL = "Forrest & Greer 2022, cerebral GFA table, row {n}"
BATCH_SIZE = 500
CHANGE_REASON = "starter corpus"


@dataclass
class CorpusReport:
    rows: int = 0
    alloys_created: int = 0
    values_created: int = 0
    with_temperatures: int = 0
    already_loaded: int = 0
    temperature_conflicts: int = 0
    refused: list = field(default_factory=list)  # (row number, composition, reason)
    seconds: float = 0.0

    @property
    def refused_by_reason(self):
        """Refusals counted by kind of reason (composition, GFA class, Dmax, temperatures…)."""
        return dict(Counter(_reason_kind(reason) for _, _, reason in self.refused).most_common())

    def summary(self):
        return (
            f"Starter corpus: {self.rows:,} rows, {self.alloys_created:,} alloys created, "
            f"{self.values_created:,} values stored ({self.with_temperatures:,} with Tg/Tx/Tl), "
            f"{self.already_loaded:,} already loaded, {len(self.refused):,} refused, "
            f"{self.temperature_conflicts:,} values flagged as temperature conflicts, in {self.seconds:.1f} s."
        )


def _reason_kind(reason):
    text = reason.lower()
    if "gfa class" in text:
        return "unknown GFA class"
    if "crystalline alloy has no dmax" in text:
        return "Dmax on a crystal"
    if "a bmg has dmax" in text:
        return "BMG with a Dmax below 1 mm"
    if "dmax" in text:
        return "Dmax out of range or inconsistent with the class"
    if any(w in text for w in ("tg", "tx", "tl", "temperature", " k ")):
        return "temperatures (ml.rules)"
    if "not a number" in text:
        return "not a number"
    return "composition"


def _chunks(items, size=BATCH_SIZE):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def corpus_reference():
    """The Reference of the corpus (created if missing; blank fields filled)."""
    ref = Reference.objects.filter(doi=REFERENCE["doi"]).first()
    if ref is None:
        return Reference.objects.create(**REFERENCE)
    changed = [k for k, v in REFERENCE.items() if not getattr(ref, k)]
    for k in changed:
        setattr(ref, k, REFERENCE[k])
    if changed:
        ref.save()
    return ref


def load_corpus(path=CORPUS_CSV, *, user=None) -> CorpusReport:
    """Load the corpus table (columns composition, gfa_class, dmax_mm, Tg_K, Tx_K, Tl_K).

    Raises lab.tables.ImportFileError for an unreadable file; anything else rolls back.
    """
    started = time.monotonic()
    table = read_table(path)
    report = CorpusReport(rows=len(table))
    with transaction.atomic():
        ref = corpus_reference()
        loaded = set(PropertyValue.objects.filter(reference=ref).values_list("source_label", flat=True))
        rows = []
        for line, raw in table:
            n = line - 1
            label = ROW_LABEL.format(n=n)
            if label in loaded:
                report.already_loaded += 1
                continue
            try:
                rows.append((label, prepare_row(line, raw)))
            except (CompositionError, RowRefused) as exc:
                report.refused.append((n, str(raw.get("composition") or ""), str(exc)))

        alloys = {}
        for chunk in _chunks({r.comp.key for _, r in rows}):
            alloys.update({a.composition_key: a for a in Alloy.objects.filter(composition_key__in=chunk)})
        new_alloys = []
        for _, r in rows:
            if r.comp.key not in alloys:
                alloy = Alloy(
                    composition_key=r.comp.key, formula=r.comp.formula, fractions=dict(r.comp),
                    base_element=r.comp.base_element, n_elements=len(r.comp), created_by=user,
                )
                alloys[r.comp.key] = alloy
                new_alloys.append(alloy)
        if new_alloys:
            bulk_create_with_history(new_alloys, Alloy, batch_size=BATCH_SIZE, default_user=user,
                                     default_change_reason=CHANGE_REASON)
        report.alloys_created = len(new_alloys)

        new_values = []
        for label, r in rows:
            new_values.append(PropertyValue(
                alloy=alloys[r.comp.key], origin=PropertyValue.Origin.LITERATURE, reference=ref, source_label=label,
                gfa_class=r.gfa_class, dmax_mm=r.dmax_mm, dmax_kind=rules.DMAX_POINT, created_by=user, **r.temps,
            ))
        changed = _flag_temperature_conflicts(new_values)
        if new_values:
            bulk_create_with_history(new_values, PropertyValue, batch_size=BATCH_SIZE, default_user=user,
                                     default_change_reason=CHANGE_REASON)
        if changed:
            bulk_update_with_history(changed, PropertyValue, ["conflict"], batch_size=BATCH_SIZE, default_user=user,
                                     default_change_reason=CHANGE_REASON)
        report.values_created = len(new_values)
        report.with_temperatures = sum(1 for v in new_values if any(t is not None for t in rules.temperature_triple(v)))
        report.temperature_conflicts = sum(1 for v in new_values if v.conflict) + len(changed)
        touched = {v.alloy.pk for v in new_values}
        if touched:
            refresh_alloy_summaries(touched)
    report.seconds = time.monotonic() - started
    return report


def _flag_temperature_conflicts(new_values):
    """Flag (as the import does) values of one alloy whose temperatures differ by > 10 K
    (ml.rules.compare_temperatures); returns the stored values that became flagged."""
    with_temps = [v for v in new_values if any(t is not None for t in rules.temperature_triple(v))]
    by_alloy = {}
    for v in with_temps:
        by_alloy.setdefault(v.alloy.composition_key, []).append(v)
    stored = {}
    known_ids = [v.alloy.pk for v in with_temps if v.alloy.pk is not None]
    for chunk in _chunks(set(known_ids)):
        qs = PropertyValue.objects.filter(alloy_id__in=chunk).exclude(tg_k=None, tx_k=None, tl_k=None)
        for old in qs:
            stored.setdefault(old.alloy_id, []).append(old)
    changed = {}
    for values in by_alloy.values():
        pool = values + stored.get(values[0].alloy.pk, [])
        if len(pool) < 2:
            continue
        for i, a in enumerate(values):
            for b in pool[i + 1:]:
                if rules.compare_temperatures(a, b) == rules.DIFFER:
                    a.conflict = True
                    if b.pk is not None:
                        if not b.conflict:
                            b.conflict = True
                            changed[b.pk] = b
                    else:
                        b.conflict = True
    return list(changed.values())
