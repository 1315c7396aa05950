"""GFA surrogate (ml.gfa): data preparation rules, system splits, SMOTE inside training folds,
censored Dmax, calibration, predictions, contributions, persistence, scikit-learn conventions.

Tiny synthetic fixtures built here (made-up alloys and labels; never rows of the shared table).
"""

from __future__ import annotations

import inspect
import json
import math
import os

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from ml.gfa import (
    CONFLICT_RULE,
    HEADS,
    GFAData,
    GFADataError,
    GFAModel,
    chemical_system,
    gfa_data_hash,
    prepare_gfa,
    system_folds,
)

TINY = dict(n_estimators=15, dmax_n_estimators=15, max_depth=3, knn_k=3, inner_folds=2)

# made-up families: (elements, which element's fraction drives glass formation)
FAMILIES = [
    ("Zr", "Cu", "Al"), ("Zr", "Cu", "Ni"), ("Zr", "Ni", "Al"), ("Cu", "Ti", "Zr"), ("Pd", "Ni", "P"),
    ("Fe", "B", "Si"), ("Fe", "Co", "B"), ("Mg", "Cu", "Y"), ("La", "Al", "Ni"), ("Ce", "Al", "Cu"),
    ("Zr", "Cu", "Al", "Ni"), ("Cu", "Zr", "Ti", "Ni"),
]


def synthetic_gfa_rows(n_per_family: int = 14, seed: int = 0) -> list[dict]:
    """Alloys of 12 made-up systems; class from a smooth made-up score (minor-element content and
    element count), Dmax grows with the score for BMGs."""
    rng = np.random.default_rng(seed)
    rows = []
    for fam in FAMILIES:
        for _ in range(n_per_family):
            base = rng.uniform(0.35, 0.9)
            rest = rng.dirichlet(np.ones(len(fam) - 1)) * (1 - base)
            x = dict(zip(fam, np.r_[base, rest]))
            score = 2.2 * (1 - base) + 0.35 * (len(fam) - 3) + rng.normal(0, 0.08)
            text = "".join(f"{el}{100 * v:.1f}" for el, v in x.items())
            if score < 0.6:
                rows.append({"composition": text, "gfa_class": "Crystal", "dmax_mm": "0"})
            elif score < 1.0:
                rows.append({"composition": text, "gfa_class": "Ribbon", "dmax_mm": "0.15"})
            else:
                d = round(10 ** (0.2 + 1.2 * (score - 1.0)), 2)
                rows.append({"composition": text, "gfa_class": "BMG", "dmax_mm": f"{d:g}" if rng.random() < 0.7 else ""})
    return rows


@pytest.fixture(scope="module")
def data():
    return prepare_gfa(synthetic_gfa_rows())


@pytest.fixture(scope="module")
def model(data):
    return GFAModel(seed=0, **TINY).fit(data)


# ------------------------------------------------------------------------------ prepare_gfa


def _reasons(report):
    return {r["composition"]: r["reason"] for r in report["refused"]}


def test_bad_rows_are_refused_with_their_reason_and_nothing_is_lost():
    rows = [
        {"composition": "Zr50Cu50", "gfa_class": "Glassy", "dmax_mm": ""},
        {"composition": "Zr60Cu40", "gfa_class": "BMG", "dmax_mm": "-2"},
        {"composition": "Zr65Cu35", "gfa_class": "BMG", "dmax_mm": "250"},
        {"composition": "Cu60Ti40", "gfa_class": "Crystal", "dmax_mm": "2"},
        {"composition": "Zr5O0Xx", "gfa_class": "BMG", "dmax_mm": "3"},
        {"composition": "Cu55Zr45", "gfa_class": "", "dmax_mm": ""},
        {"composition": "Cu50Zr50", "gfa_class": "BMG", "dmax_mm": "3"},
        {"composition": "Cu52Zr48", "gfa_class": "Ribbon", "dmax_mm": "0.15"},
        {"composition": "Cu70Zr30", "gfa_class": "Crystal", "dmax_mm": "0"},
    ]
    d = prepare_gfa(rows)
    why = _reasons(d.report)
    assert "unknown GFA class 'Glassy'" in why["Zr50Cu50"]
    assert "must be above 0 mm" in why["Zr60Cu40"]
    assert "above 200 mm" in why["Zr65Cu35"]
    assert "crystalline alloy has no Dmax" in why["Cu60Ti40"]
    assert why["Zr5O0Xx"].startswith("composition:")
    assert "nothing says whether it forms a glass" in why["Cu55Zr45"]
    assert "no element data for" in _reasons(prepare_gfa([{"composition": "Ar50Cu50", "gfa_class": "Crystal"},
                                                           {"composition": "Cu50Zr50", "gfa_class": "BMG"}]).report)["Ar50Cu50"]
    assert d.report["rows_in"] == 9 and d.report["rows_refused"] == 6 and d.report["rows_used"] == 3
    assert sorted(r["row"] for r in d.report["refused"]) == [0, 1, 2, 3, 4, 5]
    # the source codes are "no Dmax", not refusals
    assert d.report["source_codes_dropped"] == 2
    by = dict(zip(d.keys, range(len(d))))
    rib, cry, bmg = (by[parse] for parse in (_key("Cu52Zr48"), _key("Cu70Zr30"), _key("Cu50Zr50")))
    assert np.isnan(d.dmax_low_mm[rib]) and np.isnan(d.dmax_high_mm[cry])
    assert d.dmax_low_mm[bmg] == d.dmax_high_mm[bmg] == 3.0
    assert (d.glass[rib], d.bmg[rib]) == (1, 0) and (d.glass[cry], d.bmg[cry]) == (0, 0)
    assert d.report["counts"] == {"bmg": 1, "ribbon": 1, "crystal": 1, "unknown": 0}


def _key(text):
    from ml.composition import parse_composition

    return parse_composition(text).key


def test_an_all_refused_table_is_a_clear_error():
    with pytest.raises(GFADataError, match="no usable row"):
        prepare_gfa([{"composition": "Qq12", "gfa_class": "BMG", "dmax_mm": "2"}])
    with pytest.raises(GFADataError, match="no 'composition' column"):
        prepare_gfa([{"alloy": "Cu50Zr50", "gfa_class": "BMG"}])


def test_a_tg_without_class_is_a_glass_with_bmg_unknown():
    d = prepare_gfa([{"composition": "Cu46Zr46Al8", "gfa_class": "", "dmax_mm": "", "Tg_K": "705"},
                     {"composition": "Cu40Zr60", "gfa_class": "", "dmax_mm": "", "Tg_K": "90"}])
    assert len(d) == 1 and d.glass[0] == 1 and np.isnan(d.bmg[0]) and d.classes == [None]
    assert "outside the plausible range" in d.report["refused"][0]["reason"]


def test_castings_give_censored_bounds():
    d = prepare_gfa([
        {"composition": "Cu46Zr46Al8", "dmax_kind": "at_least", "dmax_mm": "3"},
        {"composition": "Cu50Zr50", "dmax_kind": "below", "dmax_mm": "0.8"},
        {"composition": "Cu60Zr40", "dmax_kind": "below", "dmax_mm": "4"},
        {"composition": "Cu64Zr36", "dmax_kind": "at_least", "dmax_mm": "0.5"},
    ])
    k = {key: i for i, key in enumerate(d.keys)}
    a, b, c, e = (k[_key(t)] for t in ("Cu46Zr46Al8", "Cu50Zr50", "Cu60Zr40", "Cu64Zr36"))
    assert (d.dmax_low_mm[a], d.dmax_high_mm[a]) == (3.0, math.inf) and (d.glass[a], d.bmg[a]) == (1, 1)
    assert (d.dmax_low_mm[b], d.dmax_high_mm[b]) == (0.0, 0.8) and np.isnan(d.glass[b]) and d.bmg[b] == 0
    assert (d.dmax_low_mm[c], d.dmax_high_mm[c]) == (0.0, 4.0) and np.isnan(d.glass[c]) and np.isnan(d.bmg[c])
    # an amorphous rod thinner than 1 mm: a glass, BMG still unknown
    assert (d.dmax_low_mm[e], d.dmax_high_mm[e]) == (0.5, math.inf) and d.glass[e] == 1 and np.isnan(d.bmg[e])
    assert d.report["dmax_bounds"] == 4


def test_conflicts_are_flagged_and_resolved_by_the_documented_rule():
    rows = [
        # lab outweighs literature
        {"composition": "Cu50Zr50", "gfa_class": "Crystal", "dmax_mm": "0"},
        {"composition": "Cu50Zr50", "gfa_class": "Crystal", "dmax_mm": "0"},
        {"composition": "Zr50Cu50", "gfa_class": "BMG", "dmax_mm": "2", "origin": "xrd"},
        # majority among literature
        {"composition": "Cu60Zr40", "gfa_class": "Ribbon", "dmax_mm": "0.15"},
        {"composition": "Cu60Zr40", "gfa_class": "Ribbon", "dmax_mm": "0.15"},
        {"composition": "Cu60Zr40", "gfa_class": "BMG", "dmax_mm": ""},
        # a tie goes to the more glass-forming label
        {"composition": "Cu70Zr30", "gfa_class": "Crystal", "dmax_mm": "0"},
        {"composition": "Cu70Zr30", "gfa_class": "Ribbon", "dmax_mm": "0.15"},
        # higher weight outweighs lower
        {"composition": "Cu40Zr60", "gfa_class": "Ribbon", "dmax_mm": "0.15", "weight": "3"},
        {"composition": "Cu40Zr60", "gfa_class": "BMG", "dmax_mm": "2"},
        {"composition": "Cu40Zr60", "gfa_class": "BMG", "dmax_mm": "2"},
    ]
    d = prepare_gfa(rows)
    cls = {k: c for k, c in zip(d.keys, d.classes)}
    assert cls[_key("Cu50Zr50")] == "bmg" and cls[_key("Cu60Zr40")] == "ribbon"
    assert cls[_key("Cu70Zr30")] == "ribbon" and cls[_key("Cu40Zr60")] == "ribbon"
    flags = {_key(f["composition"]): f["reason"] for f in d.report["flagged"]}
    assert "lab rows outweigh literature" in flags[_key("Cu50Zr50")] and "row 2: glass (lab)" in flags[_key("Cu50Zr50")]
    assert "majority of rows (2 of 3)" in flags[_key("Cu60Zr40")]
    assert "tie goes to the more glass-forming label" in flags[_key("Cu70Zr30")]
    assert "higher-weight rows" in flags[_key("Cu40Zr60")]
    i = d.keys.index(_key("Cu50Zr50"))
    assert d.dmax_low_mm[i] == 2.0 and d.lab[i] and d.weight[i] == 1.0
    assert d.weight[d.keys.index(_key("Cu40Zr60"))] == 3.0
    assert d.report["conflict_rule"] == CONFLICT_RULE and d.report["merged_keys"] == 4


def test_subset_keeps_the_fields_aligned(data):
    s = data.subset([3, 1])
    assert isinstance(s, GFAData) and s.keys == [data.keys[3], data.keys[1]]
    assert s.systems == [data.systems[3], data.systems[1]]
    np.testing.assert_array_equal(s.glass, data.glass[[3, 1]])
    assert gfa_data_hash(s) != gfa_data_hash(data) and gfa_data_hash(data) == gfa_data_hash(data.subset(range(len(data))))


# ------------------------------------------------------------------------------ splits


def test_chemical_system_is_the_sorted_elements():
    assert chemical_system("Zr55Cu30Al15") == "Al-Cu-Zr"
    from ml.composition import parse_composition

    assert chemical_system(parse_composition("Cu50Zr50")) == chemical_system("Zr50Cu50") == "Cu-Zr"


def test_system_folds_never_put_a_system_on_both_sides(data):
    folds = system_folds(data.systems, n_splits=4, seed=2)
    sys_ = np.asarray(data.systems)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen) == list(range(len(data)))
    for tr, te in folds:
        assert not set(sys_[tr]) & set(sys_[te])
        assert len(tr) + len(te) == len(data)
    assert [te.tolist() for _, te in folds] != [te.tolist() for _, te in system_folds(data.systems, 4, seed=3)]
    with pytest.raises(ValueError, match="n_splits"):
        system_folds(["A-B", "A-B", "C-D"], n_splits=3)


# ------------------------------------------------------------------------------ fitting


def test_a_table_without_crystals_is_refused_in_a_plain_sentence(data):
    glass_only = data.subset(np.nonzero(data.glass == 1)[0])
    with pytest.raises(GFADataError, match="has no crystalline alloy: a glass-vs-crystal model cannot be fitted"):
        GFAModel(**TINY).fit(glass_only)


def test_smote_runs_only_on_the_training_rows_of_each_fold(data):
    """Outer split by system; the model's own inner calibration folds too: every SMOTE input is
    exactly the matrix of that fit's training rows, never a validation row."""
    tr, te = system_folds(data.systems, 3, seed=0)[0]
    train = data.subset(tr)
    m = GFAModel(seed=1, **TINY).fit(train)
    assert len(m.inner_folds_) == 2
    entries = [e for e in m.fit_log_ if e["head"] in ("p_glass", "p_bmg")]
    assert {e["stage"] for e in entries} == {"inner-0", "inner-1", "final"}
    for e in entries:
        assert e["smote"] and e["n_synthetic"] > 0 and e["originals_kept"]
        assert e["input_digest"] == e["rows_digest"]  # SMOTE saw this fit's rows, nothing else
        assert e["n_input"] == len(e["rows"]) and e["rows"].max() < len(train)  # outer test rows absent
        if e["stage"] != "final":
            inner_tr, inner_va = m.inner_folds_[int(e["stage"].split("-")[1])]
            assert set(e["rows"]) <= set(inner_tr) and not set(e["rows"]) & set(inner_va)
    final = [e for e in entries if e["stage"] == "final" and e["head"] == "p_glass"][0]
    assert len(final["rows"]) == int(np.isfinite(train.glass).sum())


def test_differing_weights_skip_smote_and_balance_with_scale_pos_weight(data):
    d = data.subset(range(len(data)))
    d.weight = d.weight.copy()
    d.weight[:10] = 3.0
    m = GFAModel(seed=0, **{**TINY, "inner_folds": 0}).fit(d)
    for e in m.fit_log_:
        if e["head"] in ("p_glass", "p_bmg"):
            assert not e["smote"] and e["scale_pos_weight"] > 0


def _censored_rows():
    """Zr-Cu-Al (high Zr): reported Dmax 10 mm plus amorphous rods of 2 mm (Dmax ≥ 2);
    Mg-Cu-Y: reported 1.5 mm plus crystalline rods of 20 mm (Dmax < 20). Treated as points the
    bounds would drag the first down and the second up; as bounds they agree with the points."""
    rng = np.random.default_rng(5)
    rows = []
    for fam, point, kind, bound in ((("Zr", "Cu", "Al"), 10.0, "at_least", 2.0), (("Mg", "Cu", "Y"), 1.5, "below", 20.0)):
        for i in range(40):
            x = rng.dirichlet([6, 3, 1.5])
            text = "".join(f"{el}{100 * v:.1f}" for el, v in zip(fam, x))
            if i % 2:
                rows.append({"composition": text, "gfa_class": "BMG", "dmax_mm": f"{point:g}"})
            else:
                rows.append({"composition": text, "gfa_class": "", "dmax_mm": f"{bound:g}", "dmax_kind": kind})
    for i in range(30):  # something for the classifiers
        x = rng.dirichlet([8, 1])
        rows.append({"composition": f"Fe{100 * x[0]:.1f}Ni{100 * x[1]:.1f}", "gfa_class": "Crystal", "dmax_mm": "0"})
        rows.append({"composition": f"Co{100 * x[0]:.1f}B{100 * x[1]:.1f}", "gfa_class": "Ribbon", "dmax_mm": "0.15"})
    return rows


def test_censored_dmax_is_learned_as_bounds_not_as_points():
    d = prepare_gfa(_censored_rows())
    assert d.report["dmax_bounds"] == 40 and d.report["dmax_points"] == 40
    m = GFAModel(seed=0, n_estimators=20, dmax_n_estimators=200, knn_k=0, inner_folds=0, aft_sigma=0.3).fit(d)
    zr = [c for c, s in zip(d.compositions, d.systems) if s == "Al-Cu-Zr"]
    mg = [c for c, s in zip(d.compositions, d.systems) if s == "Cu-Mg-Y"]
    d_zr, d_mg = np.median(m.predict(zr)["dmax_mm"]), np.median(m.predict(mg)["dmax_mm"])
    # fake points would give the geometric means, ~4.5 mm and ~5.5 mm
    assert d_zr > 8.0, d_zr
    assert d_mg < 2.0, d_mg


def test_dmax_bounds_alone_carry_the_signal():
    """Only bounds, no point at all: rods amorphous at 6 mm in one system, crystalline at 0.6 mm in
    the other — the predictions must respect both."""
    rows = [r for r in _censored_rows() if r.get("dmax_kind")]
    rows = [dict(r, dmax_mm="6" if r["dmax_kind"] == "at_least" else "0.6") for r in rows]
    rows += [r for r in _censored_rows() if r["gfa_class"] in ("Crystal", "Ribbon")]
    d = prepare_gfa(rows)
    m = GFAModel(seed=0, n_estimators=20, dmax_n_estimators=100, knn_k=0, inner_folds=0, aft_sigma=0.3).fit(d)
    pred = m.predict(d.compositions)["dmax_mm"]
    sys_ = np.asarray(d.systems)
    assert np.median(pred[sys_ == "Al-Cu-Zr"]) >= 6.0
    assert np.median(pred[sys_ == "Cu-Mg-Y"]) <= 0.6


def test_the_dmax_interval_is_calibrated_on_inner_system_folds(model, data):
    cal = model.calibration_
    assert cal["inner_folds"] == 2 and cal["dmax_method"].startswith("split-conformal")
    assert cal["dmax_n_points"] == int(np.sum(data.dmax_low_mm == data.dmax_high_mm))
    assert model.dmax_q_log10_ > 0
    # the AFT scale is chosen on the same inner folds: the smallest out-of-fold error wins
    errors = {float(k): v for k, v in cal["aft_sigma_oof_mae_log10"].items()}
    assert set(errors) == set(GFAModel().aft_sigma) and model.aft_sigma_ == min(errors, key=errors.get)
    assert cal["dmax_oof_mae_log10"] == pytest.approx(errors[model.aft_sigma_])
    assert 0 < model.threshold_glass_ < 1 and 0 < model.threshold_bmg_ < 1


# ------------------------------------------------------------------------------ predictions


def test_predict_keys_shapes_and_ranges(model, data):
    # unseen systems, text too, and elements no training row has (Be, Ba, Nb)
    comps = data.compositions[:25] + ["Ni60Nb40", "Zr41Ti14Cu12Ni10Be23", "Ba20Mg80"]
    out = model.predict(comps)
    assert set(out) == set(HEADS) | {"dmax_low_mm", "dmax_high_mm"}
    for v in out.values():
        assert v.shape == (28,) and v.dtype == float and np.all(np.isfinite(v))
    assert np.all((0 <= out["p_glass"]) & (out["p_glass"] <= 1)) and np.all((0 <= out["p_bmg"]) & (out["p_bmg"] <= 1))
    assert np.all(out["p_bmg"] <= out["p_glass"])
    assert np.all((0 < out["dmax_low_mm"]) & (out["dmax_low_mm"] <= out["dmax_mm"]) & (out["dmax_mm"] <= out["dmax_high_mm"]))
    assert set(model.classify(comps)) <= {"bmg", "ribbon", "crystal"}


def test_the_model_learns_the_synthetic_rule(model, data):
    out = model.predict(data.compositions)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(data.glass, out["p_glass"]) > 0.9
    assert roc_auc_score(data.bmg, out["p_bmg"]) > 0.9


def test_contributions_name_the_top_features_per_head(model, data):
    c = model.contributions(data.compositions[:4], top=3)
    assert len(c) == 4
    for item in c:
        assert set(item) == set(HEADS)
        for head, pairs in item.items():
            assert len(pairs) == 3
            assert all(isinstance(n, str) and isinstance(v, float) for n, v in pairs)
            mags = [abs(v) for _, v in pairs]
            assert mags == sorted(mags, reverse=True)
            assert not any(n.startswith(("frac_", "d2_", "d3_", "stat_", "knn_")) for n, _ in pairs)
    json.dumps(c)


def test_save_and_load_give_identical_predictions(model, data, tmp_path):
    state = model.save(str(tmp_path))
    json.dumps(state)
    files = sorted(os.listdir(tmp_path))
    assert all(f.endswith((".json", ".ubj", ".npz")) for f in files)
    assert all(isinstance(f, str) for f in state["model_files"].values())
    assert set(state["model_files"].values()) <= set(files)
    assert state["data_hash"] == gfa_data_hash(data) and state["feature_names"] == model.feature_names_
    assert {"xgboost", "scikit-learn", "imbalanced-learn", "numpy"} <= set(state["versions"])
    again = GFAModel.load(str(tmp_path), state)
    comps = data.compositions[:30]
    a, b = model.predict(comps), again.predict(comps)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert again.contributions(comps[:2]) == model.contributions(comps[:2])
    assert GFAModel.load(str(tmp_path)).threshold_bmg_ == model.threshold_bmg_  # state read from the JSON file


# ------------------------------------------------------------------------------ conventions


def test_scikit_learn_conventions(model, data):
    est = GFAModel(seed=3, knn_k=2)
    assert isinstance(est, BaseEstimator)
    init_args = [p for p in inspect.signature(GFAModel.__init__).parameters if p != "self"]
    assert sorted(est.get_params()) == sorted(init_args)
    assert [k for k in vars(est) if k.endswith("_")] == []
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "boosters_")
    with pytest.raises(NotFittedError, match="not fitted"):
        copy.predict(data.compositions[:2])
    again = clone(model).fit(data)
    np.testing.assert_array_equal(again.predict(data.compositions)["p_bmg"], model.predict(data.compositions)["p_bmg"])
    other = clone(model).set_params(seed=1).fit(data)
    assert not np.array_equal(other.predict(data.compositions)["p_glass"], model.predict(data.compositions)["p_glass"])


@pytest.mark.parametrize("bad,message", [({"n_estimators": 0}, "n_estimators"), ({"coverage": 1.5}, "coverage"),
                                         ({"inner_folds": 1}, "inner_folds"), ({"descriptor_set": "D9"}, "descriptor set"),
                                         ({"knn_k": -1}, "knn_k"), ({"aft_sigma": 0}, "aft_sigma")])
def test_a_bad_parameter_is_refused_by_fit_not_by_init(bad, message, data):
    est = GFAModel(**TINY).set_params(**bad)
    assert all(est.get_params()[k] == v for k, v in bad.items())
    with pytest.raises(ValueError, match=message):
        est.fit(data)
    assert [k for k in vars(est) if k.endswith("_")] == []


def test_every_feature_is_finite_so_smote_always_runs():
    """Pure elements (no element pair) and a tiny table whose other systems report no Dmax: the
    neighbour and pair blocks still give finite features, so SMOTE is not silently skipped."""
    rows = synthetic_gfa_rows(5, seed=3) + [{"composition": el, "gfa_class": "Crystal", "dmax_mm": "0"}
                                             for el in ("Cu", "Zr", "Ni", "Fe")]
    rows = [dict(r, dmax_mm="") if r["gfa_class"] == "BMG" and r["composition"].startswith("Zr") else r for r in rows]
    d = prepare_gfa(rows)
    m = GFAModel(seed=0, **TINY).fit(d)
    heads = [e for e in m.fit_log_ if e["head"] != "dmax_mm"]
    assert heads and all(e["smote"] for e in heads)
    raw, F = m._raw(["Cu", "Co50Ni50", "Zr60Cu30Al10"])
    assert np.isfinite(F).all()


def test_optional_feature_blocks_change_the_features_and_survive_save_load(data, tmp_path):
    m = GFAModel(seed=0, fractions=False, pair_ratios=True, knn_groups=1.0, dmax_members=3, **TINY).fit(data)
    assert len(m.boosters_["dmax_mm"].boosters) == 3
    names = m.feature_names_
    assert not any(n.startswith("frac_") for n in names)
    assert {"ratio_glass_mean", "ratio_bmg_min", "pair_glass_mean", "knn_glass_rate", "group_metalloid"} <= set(names)
    emb = m.features_.embed(m.features_.fractions(data.compositions[:5]))
    np.testing.assert_allclose(emb.sum(axis=1), 1.0)  # L1 on the embedding needs rows summing to 1
    again = GFAModel.load(str(tmp_path), m.save(str(tmp_path)))
    a, b = m.predict(data.compositions[:20]), again.predict(data.compositions[:20])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    plain = GFAModel(seed=0, **{**TINY, "knn_k": 0, "pair_stats": False}).fit(data)
    assert not any(n.startswith(("knn_", "pair_", "ratio_")) for n in plain.feature_names_)
