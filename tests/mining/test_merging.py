"""The merge step across chunks (mining.merging)."""

from mining.extractors import RawRecord
from mining.merging import merge_records


def raw(snippet, comp="Zr55Cu30Al10Ni5", **values):
    return RawRecord(comp, values={p: (v, "K") for p, v in values.items()}, snippet=snippet)


def test_same_composition_and_values_become_one_record_citing_every_passage():
    merged = merge_records([raw("A.", tg=685, tx=771), raw("B.", tg=685, tx=771), raw("A.", tg=685, tx=771),
                            raw("C.", comp="Zr55 Cu30 Al10 Ni5", tg=685, tx=771)])
    assert len(merged) == 1
    assert merged[0].snippet == "A." and merged[0].more_snippets == ["B.", "C."]


def test_other_values_units_or_fields_stay_separate():
    records = [raw("A.", tg=685), raw("B.", tg=686), raw("C.", tg=685, tx=771),
               RawRecord("Zr55Cu30Al10Ni5", values={"tg": (685, "C")}, snippet="D."),
               RawRecord("Zr55Cu30Al10Ni5", values={"tg": (685, "K")}, dmax_mm=5, snippet="E."),
               RawRecord("Zr55Cu30Al10Ni5", values={"tg": (685, "K")}, gfa_class="ribbon", snippet="F.")]
    assert [r.snippet for r in merge_records(records)] == ["A.", "B.", "C.", "D.", "E.", "F."]


def test_inputs_are_not_changed_and_order_is_kept():
    first, second = raw("A.", tg=685), raw("B.", comp="Cu50Zr50", tg=700)
    merged = merge_records([first, second, raw("A2.", tg=685)])
    assert [r.composition for r in merged] == ["Zr55Cu30Al10Ni5", "Cu50Zr50"]
    assert first.more_snippets == [] and merged[0].more_snippets == ["A2."]
