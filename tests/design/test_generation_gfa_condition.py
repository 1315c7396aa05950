"""A campaign that asks for a bulk glass conditions the CGAN on it (issue 15): glass = 1, BMG = 1
and a Dmax drawn inside the Dmax target, as three extra condition columns."""

import numpy as np

from design import generation
from design.generation import DMAX_CONDITION_SPAN, DesignSpec, gfa_condition_columns

from .test_generation import KNOWN, TRAIN_Y, fake_predict, fake_sample


def test_no_bulk_glass_asked_no_gfa_columns():
    spec = DesignSpec(targets={"tg_k": {"min": 600}})
    assert gfa_condition_columns(spec, 10, np.random.default_rng(0)) is None


def test_bmg_threshold_asks_for_a_bmg_of_unknown_dmax():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_bmg=0.5)
    cols = gfa_condition_columns(spec, 20, np.random.default_rng(0))
    assert cols.shape == (20, 3) and (cols[:, :2] == 1).all() and np.isnan(cols[:, 2]).all()


def test_dmax_target_draws_dmax_inside_it():
    rng = np.random.default_rng(1)
    low = gfa_condition_columns(DesignSpec(targets={"dmax_mm": {"min": 5.0}}), 500, rng)[:, 2]
    assert low.min() >= 5.0 and low.max() <= 5.0 * DMAX_CONDITION_SPAN
    both = gfa_condition_columns(DesignSpec(targets={"dmax_mm": {"min": 2.0, "max": 3.0}}), 500, rng)[:, 2]
    assert both.min() >= 2.0 and both.max() <= 3.0
    # log-uniform: as many draws in [2, 2.45] as in [2.45, 3]
    assert abs((both < np.sqrt(6.0)).mean() - 0.5) < 0.08


def test_generate_hands_the_gfa_columns_to_the_sampler():
    seen = []

    def sample(conditions, seed):
        seen.append(np.asarray(conditions))
        return fake_sample(conditions, seed)

    def run(spec):
        seen.clear()
        generation.generate(spec, sample=sample, predict=fake_predict, train_y=TRAIN_Y, known=KNOWN,
                            known_keys=set(), seed=0)
        return seen[0]

    plain = run(DesignSpec(targets={"tg_k": {"min": 600}}, n_draws=50, min_p_glass=0.0))
    assert plain.shape == (50, 3)
    asked = run(DesignSpec(targets={"tg_k": {"min": 600}, "dmax_mm": {"min": 5.0}}, n_draws=50, min_p_glass=0.0))
    assert asked.shape == (50, 6) and (asked[:, 3:5] == 1).all() and (asked[:, 5] >= 5.0).all()
    # the thermal condition rows are the ones a plain campaign draws (same seed)
    np.testing.assert_array_equal(asked[:, :3], plain)
