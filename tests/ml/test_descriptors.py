"""Descriptors D1/D2/D3 against hand-computed values (formulas written out here, per element,
independently of the vectorised code in ml.descriptors)."""

import itertools
import json
import math

import numpy as np
import pytest

from ml.descriptors import (
    D2_NAMES,
    D3_NAMES,
    DESCRIPTOR_SETS,
    Featurizer,
    d2_features,
    d3_features,
    fractions_matrix,
)
from ml.elements import (
    UnknownElementError,
    cohesive_energies,
    element_table,
    missing_mixing_pairs,
    mixing_enthalpy_matrix,
)

R = 8.314462618
BINARY = {"Cu": 0.5, "Zr": 0.5}
TERNARY = {"Cu": 0.46, "Zr": 0.46, "Al": 0.08}


def _data(comp):
    """Per-element data dict from the element table, read pair by pair."""
    els = list(comp)
    table = element_table(els)
    props = {p: dict(zip(els, v)) for p, v in table.items()}
    H = mixing_enthalpy_matrix(els)
    dh = {(a, b): H[i, j] for (i, a), (j, b) in itertools.product(enumerate(els), repeat=2)}
    return props, dh


def _hand_d2(comp):
    props, dh = _data(comp)
    c = comp

    def mean(p):
        return sum(c[e] * props[p][e] for e in c)

    def std(p):
        m = mean(p)
        return math.sqrt(sum(c[e] * (props[p][e] - m) ** 2 for e in c))

    r_bar = mean("radius_pm")
    delta = 100 * math.sqrt(sum(c[e] * (1 - props["radius_pm"][e] / r_bar) ** 2 for e in c))
    pairs = list(itertools.combinations(list(c), 2))
    dh_mix = sum(4 * dh[a, b] * c[a] * c[b] for a, b in pairs)
    dh_std = math.sqrt(sum(c[a] * c[b] * (4 * dh[a, b] - dh_mix) ** 2 for a, b in pairs))
    s_ideal = -R * sum(c[e] * math.log(c[e]) for e in c)
    return {
        "d2_r_mean_pm": r_bar,
        "d2_delta_pct": delta,
        "d2_tm_mean_k": mean("melting_t_k"),
        "d2_tm_std_k": std("melting_t_k"),
        "d2_dh_mix_kj_mol": dh_mix,
        "d2_dh_mix_std_kj_mol": dh_std,
        "d2_s_ideal_j_mol_k": s_ideal,
        "d2_chi_mean": mean("electronegativity"),
        "d2_chi_std": std("electronegativity"),
        "d2_vec_mean": mean("vec"),
        "d2_vec_std": std("vec"),
        "d2_k_mean_gpa": mean("bulk_modulus_gpa"),
        "d2_k_std_gpa": std("bulk_modulus_gpa"),
    }


def _features(comp, descriptor_set):
    f = Featurizer(descriptor_set).fit([comp])
    return dict(zip(f.feature_names_, f.transform([comp])[0]))


# ---------------------------------------------------------------------------------------
# element data


def test_element_table_values_from_matminer_tables():
    t = element_table(["Cu", "Zr", "Al"])
    # Miracle radii (pm), Pauling electronegativity, Takeuchi-Inoue ΔH
    assert t["radius_pm"].tolist() == [126.0, 158.0, 141.0]
    assert t["electronegativity"][0] == pytest.approx(1.9)
    H = mixing_enthalpy_matrix(["Cu", "Zr", "Al"])
    assert H[0, 1] == H[1, 0] == -23.0
    assert H[0, 2] == -1.0 and H[1, 2] == -44.0
    assert np.all(np.diag(H) == 0)
    assert cohesive_energies(["Cu"])[0] == pytest.approx(3.49)


@pytest.mark.parametrize("el", ["B", "P", "C", "Si", "Be", "Ge", "Zr", "Ga", "In"])
def test_bmg_metalloids_and_zr_have_complete_data(el):
    t = element_table([el])
    for prop, v in t.items():
        assert np.isfinite(v[0]) and v[0] != 0 or prop == "electronegativity", (el, prop)


def test_zr_bulk_modulus_falls_back_to_miedema_table():
    f = Featurizer("D2").fit([{"Zr": 1.0}])
    assert f.transform([{"Zr": 1.0}])[0][D2_NAMES.index("d2_k_mean_gpa")] == pytest.approx(83.335)
    assert any("Zr" in note and "Miedema" in note for note in f.element_notes_)


def test_unknown_element_error_names_element_and_property():
    with pytest.raises(UnknownElementError) as exc:
        element_table(["Cu", "Xe", "Ar"])
    msg = str(exc.value)
    assert "Xe" in msg and "Ar" in msg and "Cu" not in msg
    assert "radius_pm" in msg or "bulk_modulus_gpa" in msg
    with pytest.raises(UnknownElementError, match="Qq.*not an element symbol"):
        element_table(["Qq"])
    with pytest.raises(UnknownElementError, match="Xe"):
        Featurizer("CD1").fit([{"Cu": 0.5, "Xe": 0.5}])


def test_missing_mixing_pairs_are_zero_and_recorded():
    assert ("Cu", "S") in missing_mixing_pairs(["Cu", "S"])
    assert mixing_enthalpy_matrix(["Cu", "S"])[0, 1] == 0.0
    f = Featurizer("CD2").fit([{"Cu": 0.5, "S": 0.5}])
    assert f.missing_mixing_pairs_ == [["Cu", "S"]]
    assert f.to_dict()["missing_mixing_pairs"] == [["Cu", "S"]]


# ---------------------------------------------------------------------------------------
# D1 / D2


def test_fractions_matrix_columns_and_normalisation():
    X = fractions_matrix([{"Zr": 46, "Cu": 46, "Al": 8}, {"Cu": 1}], ["Al", "Cu", "Zr"])
    np.testing.assert_allclose(X, [[0.08, 0.46, 0.46], [0, 1, 0]])


def test_fractions_matrix_names_elements_outside_vocabulary():
    with pytest.raises(ValueError, match=r"Fe \(row 1\).*Ni \(row 1\)"):
        fractions_matrix([{"Cu": 1.0}, {"Fe": 0.5, "Ni": 0.5}], ["Cu", "Zr"])


def test_transform_rejects_unseen_element():
    f = Featurizer("D1").fit([BINARY])
    with pytest.raises(ValueError, match="Al"):
        f.transform([TERNARY])


def test_d1_columns_follow_sorted_vocabulary():
    f = Featurizer("D1").fit([TERNARY, BINARY])
    assert f.vocabulary_ == ["Al", "Cu", "Zr"]
    assert f.feature_names_ == ["frac_Al", "frac_Cu", "frac_Zr"]
    np.testing.assert_allclose(f.transform([TERNARY, BINARY]), [[0.08, 0.46, 0.46], [0, 0.5, 0.5]])


@pytest.mark.parametrize("comp", [BINARY, TERNARY], ids=["binary Cu-Zr", "ternary Cu46Zr46Al8"])
def test_d2_matches_hand_computation(comp):
    got = _features(comp, "D2")
    expected = _hand_d2(comp)
    assert list(got) == list(D2_NAMES)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_d2_binary_known_numbers():
    got = _features(BINARY, "D2")
    assert got["d2_r_mean_pm"] == pytest.approx(142.0)  # (126 + 158) / 2
    assert got["d2_delta_pct"] == pytest.approx(100 * 16 / 142)  # |1 - r_i/r̄| = 16/142 for both
    assert got["d2_dh_mix_kj_mol"] == pytest.approx(-23.0)  # 4 · (−23) · ¼
    assert got["d2_s_ideal_j_mol_k"] == pytest.approx(R * math.log(2))
    assert got["d2_vec_mean"] == pytest.approx((11 + 4) / 2)  # Cu 11, Zr 4


def test_d2_ternary_known_mixing_enthalpy():
    got = _features(TERNARY, "D2")
    expected = 4 * (-23 * 0.46 * 0.46 + -1 * 0.46 * 0.08 + -44 * 0.46 * 0.08)
    assert got["d2_dh_mix_kj_mol"] == pytest.approx(expected)


def test_pure_element_has_zero_spreads():
    got = _features({"Cu": 1.0}, "D1D2D3")
    for name in ("d2_delta_pct", "d2_tm_std_k", "d2_dh_mix_kj_mol", "d2_s_ideal_j_mol_k",
                 "d3_eps_rms", "d3_eps_max_abs", "d3_s_excess_kb", "d3_pair_h_std_kj_mol"):
        assert got[name] == pytest.approx(0.0, abs=1e-12), name


# ---------------------------------------------------------------------------------------
# D3


def _hand_strain(comp, el):
    """ε_el by bisection on Σ_j c_j Ω(r', r_j) = Ω0 (independent of the Newton solver)."""
    props, _ = _data(comp)
    r = props["radius_pm"]

    def omega(a, b):
        return 2 * math.pi * (1 - math.sqrt(1 - (b / (a + b)) ** 2))

    target = omega(1.0, 1.0)
    lo, hi = 0.1 * r[el], 10 * r[el]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        g = sum(comp[j] * omega(mid, r[j]) for j in comp) - target
        lo, hi = (mid, hi) if g > 0 else (lo, mid)
    return 0.5 * (lo + hi) / r[el] - 1


def _hand_s_excess(comp, xi=0.64):
    props, _ = _data(comp)
    els = list(comp)
    c = comp
    d = {e: 2 * props["radius_pm"][e] for e in els}
    zeta = 1 / (1 - xi)
    tot = sum(c[e] * d[e] ** 3 for e in els)
    phi = {e: c[e] * d[e] ** 3 / tot for e in els}
    pairs = list(itertools.combinations(els, 2))
    D = {
        (i, j): math.sqrt(phi[i] * phi[j]) * (d[i] - d[j]) ** 2 / (d[i] * d[j]) * math.sqrt(c[i] * c[j])
        for i, j in pairs
    }
    y1 = sum(D[i, j] * (d[i] + d[j]) / math.sqrt(d[i] * d[j]) for i, j in pairs)
    y2 = sum(D[i, j] * sum(phi[k] * math.sqrt(d[i] * d[j]) / d[k] for k in els) for i, j in pairs)
    y3 = sum(phi[e] ** (2 / 3) * c[e] ** (1 / 3) for e in els) ** 3
    return (1.5 * (zeta**2 - 1) * y1 + 1.5 * (zeta - 1) ** 2 * y2
            - (0.5 * (zeta - 1) * (zeta - 3) + math.log(zeta)) * (1 - y3))


@pytest.mark.parametrize("comp", [BINARY, TERNARY], ids=["binary Cu-Zr", "ternary Cu46Zr46Al8"])
def test_d3_matches_hand_computation(comp):
    got = _features(comp, "D3")
    assert list(got) == list(D3_NAMES)
    props, dh = _data(comp)
    c = comp
    eps = {e: _hand_strain(comp, e) for e in c}
    assert got["d3_eps_rms"] == pytest.approx(math.sqrt(sum(c[e] * eps[e] ** 2 for e in c)), rel=1e-8)
    assert got["d3_eps_max_abs"] == pytest.approx(max(abs(v) for v in eps.values()), rel=1e-8)
    ec = props["cohesive_energy_ev"]
    ec_mean = sum(c[e] * ec[e] for e in c)
    assert got["d3_ec_mean_ev"] == pytest.approx(ec_mean)
    assert got["d3_ec_std_ev"] == pytest.approx(math.sqrt(sum(c[e] * (ec[e] - ec_mean) ** 2 for e in c)))
    pairs = list(itertools.combinations(list(c), 2))
    wsum = sum(c[a] * c[b] for a, b in pairs)
    h_mean = sum(c[a] * c[b] * dh[a, b] for a, b in pairs) / wsum
    h_std = math.sqrt(sum(c[a] * c[b] * (dh[a, b] - h_mean) ** 2 for a, b in pairs) / wsum)
    assert got["d3_pair_h_mean_kj_mol"] == pytest.approx(h_mean)
    assert got["d3_pair_h_std_kj_mol"] == pytest.approx(h_std, abs=1e-9)
    s_e = _hand_s_excess(comp)
    assert got["d3_s_excess_kb"] == pytest.approx(s_e, rel=1e-9)
    assert got["d3_s_nonideal_kb"] == pytest.approx(-sum(c[e] * math.log(c[e]) for e in c) + s_e, rel=1e-9)


def test_d3_binary_signs():
    got = _features(BINARY, "D3")
    f = Featurizer("D3").fit([BINARY])
    # the small Cu atom among larger Zr neighbours is stretched, Zr compressed: both non-zero
    assert got["d3_eps_rms"] > 0.05
    assert got["d3_pair_h_mean_kj_mol"] == pytest.approx(-23.0)
    assert got["d3_pair_h_std_kj_mol"] == pytest.approx(0.0)  # a single pair
    assert got["d3_s_excess_kb"] > 0  # size dispersion at fixed ξ (MCSL)
    assert f.n_features_ == 8


def test_module_level_d2_d3_match_featurizer():
    vocab = ["Al", "Cu", "Zr"]
    X = fractions_matrix([TERNARY, BINARY], vocab)
    F = Featurizer("D1D2D3", vocabulary=vocab).fit().transform_fractions(X)
    d2, n2 = d2_features(X, vocab)
    d3, n3 = d3_features(X, vocab)
    np.testing.assert_allclose(F, np.hstack([X, d2, d3]))
    assert n2 == list(D2_NAMES) and n3 == list(D3_NAMES)


# ---------------------------------------------------------------------------------------
# sets, persistence, batch


def test_descriptor_set_shapes_and_names():
    comps = [BINARY, TERNARY]
    k = 3
    shapes = {"D1": k, "D2": 13, "D3": 8, "CD1": k + 8, "CD2": k + 13, "D1D2D3": k + 21}
    assert set(DESCRIPTOR_SETS) == {"D1", "D2", "D3", "CD1", "CD2"}
    for ds, width in shapes.items():
        f = Featurizer(ds).fit(comps)
        X = f.transform(comps)
        assert X.shape == (2, width) and len(f.feature_names_) == width, ds
        assert np.all(np.isfinite(X))
    cd1 = Featurizer("CD1").fit(comps).feature_names_
    assert cd1[:3] == ["frac_Al", "frac_Cu", "frac_Zr"] and cd1[3:] == list(D3_NAMES)
    cd2 = Featurizer("CD2").fit(comps).feature_names_
    assert cd2[3:] == list(D2_NAMES)
    with pytest.raises(ValueError, match="unknown descriptor set"):
        Featurizer("D4")


def test_transform_fractions_checks_width_and_values():
    f = Featurizer("CD1").fit([TERNARY])
    with pytest.raises(ValueError, match="3 elements"):
        f.transform_fractions(np.ones((2, 4)))
    with pytest.raises(ValueError, match="negative"):
        f.transform_fractions(np.array([[0.5, -0.1, 0.6]]))
    with pytest.raises(ValueError, match="all fractions zero"):
        f.transform_fractions(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        Featurizer("D1").transform([BINARY])


def test_to_dict_roundtrip_is_json_safe_and_identical():
    comps = [BINARY, TERNARY, {"Fe": 0.7, "B": 0.2, "Si": 0.05, "P": 0.05}]
    f = Featurizer("D1D2D3").fit(comps)
    state = json.loads(json.dumps(f.to_dict()))
    g = Featurizer.from_dict(state)
    assert g.vocabulary_ == f.vocabulary_ and g.feature_names_ == f.feature_names_
    np.testing.assert_array_equal(g.transform(comps), f.transform(comps))
    state["vocabulary"] = state["vocabulary"][:-1]
    with pytest.raises(ValueError, match="inconsistent"):
        Featurizer.from_dict(state)


def test_large_batch_matches_row_by_row():
    vocab = ["Al", "B", "Be", "C", "Cu", "Fe", "Ge", "Ni", "P", "Pd", "Si", "Ti", "Zr"]
    rng = np.random.default_rng(1)
    n = 10_000
    X = np.zeros((n, len(vocab)))
    for i in range(n):
        m = rng.integers(1, 7)
        X[i, rng.choice(len(vocab), m, replace=False)] = rng.dirichlet(np.ones(m))
    f = Featurizer("D1D2D3", vocabulary=vocab).fit()
    F = f.transform_fractions(X)
    assert F.shape == (n, len(vocab) + 21) and np.all(np.isfinite(F))
    # compaction must not change results: a few rows on their own give the same features
    for i in (0, 17, 9999):
        np.testing.assert_allclose(f.transform_fractions(X[i : i + 1])[0], F[i], rtol=1e-10, atol=1e-12)
