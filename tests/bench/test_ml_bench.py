"""The benchmark's F1 ceiling: thresholding a Trg estimate can only be as good as that estimate."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from ml_bench import f1_of_noisy_trg, r2_needed_for_f1  # noqa: E402


def trg_values(n=400, seed=3):
    # made-up Trg values spread around the 0.60 label cut, as in a literature table
    return np.random.default_rng(seed).normal(0.58, 0.04, n)


def test_exact_trg_gives_perfect_f1():
    assert f1_of_noisy_trg(trg_values(), 1.0) == 1.0


def test_f1_falls_as_the_trg_estimate_gets_worse():
    trg = trg_values()
    f1 = [f1_of_noisy_trg(trg, r2, reps=40) for r2 in (0.99, 0.9, 0.8, 0.5)]
    assert f1 == sorted(f1, reverse=True)
    assert f1[-1] < 0.8 < f1[0]


def test_r2_needed_is_where_the_ceiling_reaches_the_goal():
    trg = trg_values()
    needed = r2_needed_for_f1(trg, 0.92)
    assert 0.8 < needed < 0.999
    assert f1_of_noisy_trg(trg, needed + 0.01, reps=50) >= 0.91
    assert f1_of_noisy_trg(trg, needed - 0.1, reps=50) < 0.92
