"""Bundles and issue 15's generation: reference.npz keeps the training alloys' Tg/Tx/Tl for the
real-neighbour anchors (a bundle written without them still loads and samples unanchored), and a
bundle fitted with the GFA condition trains its CGAN on the GFA table's alloys too."""

import numpy as np
import pandas as pd
import pytest

from ml.dataprep import prepare
from ml.inverse_design import generate_fractions
from ml.pipeline import fit_bundle, load_bundle
from tests.ml.fixtures import synthetic_gfa_rows, synthetic_rows


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("anchors") / "model"
    fit_bundle(pd.DataFrame(synthetic_rows(40)), str(d), epochs=3, seed=0, gfa_df=pd.DataFrame(synthetic_gfa_rows(120)),
               gan_params={"gfa_condition": True, "hidden": 16}, forward_params={"n_members": 1, "n_estimators": 30},
               gfa_params={"n_estimators": 30})
    return d


@pytest.mark.slow
def test_bundle_keeps_properties_and_anchors_its_draws(bundle_dir):
    b = load_bundle(str(bundle_dir))
    expected = prepare(pd.DataFrame(synthetic_rows(40))).y
    np.testing.assert_array_equal(b.reference.properties, expected)
    # what the GFA table says of the thermal alloys, for anchors of a bulk-glass ask
    assert b.reference.bmg.shape == (len(expected),) and b.reference.dmax_mm.shape == (len(expected),)
    assert np.isin(b.reference.bmg[np.isfinite(b.reference.bmg)], [0.0, 1.0]).all()
    cond = np.tile(expected[:1], (30, 1))
    _, stats = generate_fractions(b.cgan, b.reference, lambda m, r: cond[:m], 30, max_rounds=1)
    assert stats["anchor_mix"] == 0.3 and stats["anchored_draws"] == 30


@pytest.mark.slow
def test_gfa_condition_bundle_learns_from_the_gfa_table(bundle_dir):
    b = load_bundle(str(bundle_dir))
    assert b.cgan.gfa_condition and b.cgan.cond_dim == 10
    rows = b.metadata["metrics"]["cgan_gfa_rows"]
    assert rows["extra_alloys"] > 0  # the GFA table's alloys within the generator's elements
    F = b.cgan.sample_fractions(5, np.array([[680.0, 740.0, 1100.0, 1.0, 1.0, 5.0]]), seed=1)
    assert F.shape == (5, len(b.cgan.vocabulary_))


@pytest.mark.slow
def test_bundle_written_before_the_anchors_loads_and_samples_unanchored(bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(bundle_dir, copy)
    with np.load(copy / "reference.npz") as z:
        X = z["fractions"]
    np.savez(copy / "reference.npz", fractions=X)  # as fit_bundle wrote it before issue 15
    b = load_bundle(str(copy))
    assert b.reference.properties is None and not b.reference.can_anchor and b.reference.bmg is None
    cond = np.tile([[680.0, 740.0, 1100.0]], (20, 1))
    F, stats = generate_fractions(b.cgan, b.reference, lambda m, r: cond[:m], 20, max_rounds=1)
    assert stats["anchor_mix"] is None and len(F)
