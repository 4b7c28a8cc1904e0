from __future__ import annotations

import math

import numpy as np
import pytest

from engine.metrics.rank_correlation import average_ranks, spearman


def test_ties_share_their_mean_rank():
    assert average_ranks(np.array([10, 20, 20, 30])).tolist() == [0, 1.5, 1.5, 3]


def test_monotone_relations_are_perfect_and_reversals_negative():
    x = np.linspace(0, 1, 50)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_constant_input_has_no_correlation():
    assert math.isnan(spearman(np.ones(5), np.arange(5)))
