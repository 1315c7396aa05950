import numpy as np
import pytest

from ml.dataprep import DataError, data_hash, grouped_kfold, grouped_split, prepare, summarize_report
from tests.ml.fixtures import synthetic_rows


def rows(*items):
    return [dict(zip(("composition", "Tg_K", "Tx_K", "Tl_K"), it)) for it in items]


def test_refused_compositions_are_counted_with_reasons():
    p = prepare(rows(("Zr50Cu40Al10", 700, 760, 1100), ("Zr50Cu40Xx10", 700, 760, 1100), ("", 700, 760, 1100)))
    rep = p.report
    assert len(p) == 1 and rep["rows_refused"] == 2
    reasons = {r["composition"]: r["reason"] for r in rep["refused"]}
    assert "Xx" in reasons["Zr50Cu40Xx10"]
    assert reasons[""]  # a message, not a guess
    assert rep["reasons"]["unparseable composition"] == 2


def test_order_violations_range_and_missing_values_dropped():
    p = prepare(rows(
        ("Hf50Cu50", 700, 760, 1100),
        ("Zr60Cu40", 760, 760, 1100),   # Tg == Tx
        ("Zr40Cu60", 700, 1200, 1100),  # Tx > Tl
        ("Zr45Cu55", 150, 760, 1100),   # out of range
        ("Zr55Cu45", "n/a", 760, 1100),  # non-numeric
    ))
    assert p.keys == ["Cu50Hf50"]
    assert p.report["rows_dropped"] == 4
    assert p.report["reasons"]["Tg < Tx < Tl violated"] == 2
    assert p.report["reasons"]["temperature out of range"] == 1
    assert p.report["reasons"]["missing temperature"] == 1
    assert any("Tg (760 K) is not below Tx (760 K)" in d["reason"] for d in p.report["dropped"])  # ml.rules' message


def test_implausibly_wide_supercooled_liquid_region_dropped():
    p = prepare(rows(("Hf50Cu50", 600, 840, 1100), ("Zr45Cu55", 600, 900, 1100)))  # ΔTx 240 K / 300 K
    assert p.keys == ["Cu50Hf50"]
    assert p.report["reasons"] == {"ΔTx implausibly wide": 1}
    assert "300 K" in p.report["dropped"][0]["reason"]


# A made-up Zr–Cu–Al family in K; rows of it shifted down by 273 K read as °C.
ZR_CU_AL_K = [("Zr50Cu40Al10", 700, 770, 1140), ("Zr49Cu41Al10", 698, 768, 1136), ("Zr51Cu39Al10", 703, 772, 1145),
              ("Zr50Cu41Al9", 696, 765, 1138), ("Zr48Cu42Al10", 694, 764, 1130)]


def test_rows_about_273_k_below_close_alloys_dropped_as_celsius():
    p = prepare(rows(*ZR_CU_AL_K,
                     ("Zr50Cu39Al10Ni1", 700 - 273, 771 - 273, 1142 - 273),  # °C
                     ("Zr49Cu40Al10Co1", 600, 690, 1050),                    # low, but not by 273 K in all three
                     ("Mg65Cu25Y10", 420, 480, 730)))                        # a genuinely low-Tg glass, far away
    assert "Al10Cu39Ni1Zr50" not in p.keys and len(p) == 7
    assert p.report["reasons"] == {"temperatures look like °C": 1}
    reason = p.report["dropped"][0]["reason"]
    assert "°C" in reason and "median of 6 close alloys" in reason
    summary = summarize_report(p.report)  # what `python -m ml fit` prints
    assert "1 × temperatures look like °C" in summary and "dropped row 5: 'Zr50Cu39Al10Ni1'" in summary


def test_celsius_check_needs_three_close_alloys():
    p = prepare(rows(*ZR_CU_AL_K[:2], ("Zr50Cu39Al10Ni1", 427, 498, 869)))
    assert len(p) == 3 and p.report["rows_dropped"] == 0


def test_duplicates_merged_by_key_with_spread():
    p = prepare(rows(("Hf50Cu50", 700, 760, 1100), ("Cu50Hf50", 710, 770, 1140), ("Zr40Cu60", 690, 750, 1120)))
    assert len(p) == 2
    i = p.keys.index("Cu50Hf50")
    np.testing.assert_allclose(p.y[i], [705, 765, 1120])
    assert p.report["duplicate_keys"] == 1 and p.report["duplicate_rows"] == 2
    assert p.report["merged"][0]["spread_K"] == {"Tg_K": 10.0, "Tx_K": 10.0, "Tl_K": 40.0}
    assert p.report["max_spread_K"]["Tl_K"] == 40.0


def test_unmerged_rows_keep_every_clean_row_in_order():
    p = prepare(rows(("Hf50Cu50", 700, 760, 1100), ("Zr45Cu55", 150, 760, 1100), ("Cu50Hf50", 710, 770, 1140)),
                merge=False)
    assert p.keys == ["Cu50Hf50", "Cu50Hf50"]
    np.testing.assert_allclose(p.y, [[700, 760, 1100], [710, 770, 1140]])
    assert p.report["rows_dropped"] == 1 and p.report["duplicate_keys"] == 1


def test_missing_columns_and_empty_input_raise():
    with pytest.raises(DataError, match="Tl_K"):
        prepare([{"composition": "Hf50Cu50", "Tg_K": 1, "Tx_K": 2}])
    with pytest.raises(DataError):
        prepare(rows(("Zr50Cu40Xx10", 700, 760, 1100)))


def test_grouped_splits_never_share_a_key():
    keys = [f"k{i % 17}" for i in range(100)]  # repeated keys on purpose
    seen_test = []
    for tr, te in grouped_kfold(keys, 5, seed=3):
        assert not ({keys[i] for i in tr} & {keys[i] for i in te})
        seen_test += list(te)
    assert sorted(seen_test) == list(range(100))
    tr, te = grouped_split(keys, 0.3, seed=1)
    assert not ({keys[i] for i in tr} & {keys[i] for i in te})
    assert len(tr) + len(te) == 100


def test_data_hash_is_canonical():
    base = synthetic_rows(20)
    h1 = data_hash(prepare(base))
    assert data_hash(prepare(list(reversed(base)))) == h1
    changed = [dict(r) for r in base]
    changed[0]["Tg_K"] = float(changed[0]["Tg_K"]) + 1
    assert data_hash(prepare(changed)) != h1
