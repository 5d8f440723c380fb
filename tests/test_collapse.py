"""Collapse measures and the --lr auto rule (annpal.collapse)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from annpal.collapse import (
    COLLAPSE_SD_TOL,
    PAPER_LR_SQRT_M,
    auto_learning_rate,
    collapse_epoch,
    collapse_risk,
    collapse_summary,
    dead_fraction,
    models_to_merge,
    output_sd,
    score_with_dead_units,
)
from annpal.model import AnnClassifier, ModelConfig


@pytest.mark.parametrize("sd, expected", [
    ([0.1, 0.0, 0.1, 0.0, 0.0], 4),   # dipped at epoch 2, recovered, constant from epoch 4 on
    ([0.0, 0.0], 1),
    ([0.1, 0.05], None),
    ([0.0, 0.1], None),               # recovered by the end: not collapsed
    ([], None),
    ([0.2, 5e-7, 1e-7], 2),           # below the 1e-6 tolerance counts as constant
])
def test_collapse_epoch__hand_series(sd, expected):
    assert collapse_epoch(sd) == expected


def test_collapse_summary__fields():
    assert collapse_summary([0.1, 0.0]) == {"collapsed": True, "collapse_epoch": 2, "tolerance": COLLAPSE_SD_TOL}
    assert collapse_summary([0.1, 0.2])["collapsed"] is False


@pytest.mark.parametrize("n_snps, expected", [
    (290_522, 1e-5),                              # the paper's own setting
    (4 * 290_522, 0.5e-5),                        # 4x the SNPs: half the step
    (20_000, 1e-5 * math.sqrt(290_522 / 20_000)),  # 3.81e-5
])
def test_auto_learning_rate__keeps_lr_sqrt_m(n_snps, expected):
    assert auto_learning_rate(n_snps) == pytest.approx(expected, rel=1e-12)
    assert auto_learning_rate(n_snps) * math.sqrt(n_snps) == pytest.approx(PAPER_LR_SQRT_M)


@pytest.mark.parametrize("n_snps, expected", [
    (5_000, 1e-5 * math.sqrt(290_522 / 5_000)),   # 7.6e-5: lr*M = 0.38, under the cap
    (19_648, 1e-5 * math.sqrt(290_522 / 19_648)),  # the study's 20k panel: 3.85e-5, lr*M = 0.755
    (20_000, 0.76 / 20_000),                       # 3.81e-5 vs cap 3.80e-5
    (50_000, 0.76 / 50_000),                       # 1.5e-5 instead of 2.4e-5
])
def test_auto_learning_rate__capped_at_low_input_dropout(n_snps, expected):
    lr = auto_learning_rate(n_snps, input_dropout=0.5)
    assert lr == pytest.approx(expected, rel=1e-12)
    assert collapse_risk(lr, n_snps, input_dropout=0.5) is None


@pytest.mark.parametrize("lr, n_snps, input_dropout, flagged", [
    (3e-4, 20_000, 0.5, True),      # old -profile test recipe on 20k SNPs: lr*M = 6 (collapsed by epoch 4)
    (2.4e-5, 50_000, 0.5, True),    # lr auto at 50k: lr*M = 1.2 (collapsed in the study)
    (3.8e-5, 20_000, 0.5, False),   # lr auto at 20k: lr*M = 0.76
    (5e-5, 20_000, 0.5, False),     # lr*M = 1.0 exactly: the bound is allowed
    (1e-5, 290_522, 0.99, False),   # the paper's own setting
    (1e-3, 290_522, 0.99, True),    # 100x the paper's step
])
def test_collapse_risk__regions(lr, n_snps, input_dropout, flagged):
    message = collapse_risk(lr, n_snps, input_dropout=input_dropout)
    assert (message is not None) == flagged
    if flagged:
        assert f"{n_snps} SNPs" in message and "docs/training.md" in message


def _tiny_model(weights: list[list[float]], bias: list[float]) -> AnnClassifier:
    torch.manual_seed(0)
    model = AnnClassifier(ModelConfig(n_snps=2, h1=len(weights), h2=2, input_dropout=0.0)).eval()
    with torch.no_grad():
        model.first_linear.weight.copy_(torch.tensor(weights))
        model.first_linear.bias.copy_(torch.tensor(bias))
    return model


def test_score_with_dead_units__hand_preactivations():
    # rows x: (1, 0), (-1, 1), (0, -1); unit 0 = x1 (positive on row 0), unit 1 = -x1 - 2 (never
    # positive), unit 2 = x2 - 0.5 (positive on row 1 only, which sits in the second chunk)
    model = _tiny_model([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], [0.0, -2.0, -0.5])
    x = torch.tensor([[1, 0], [-1, 1], [0, -1]], dtype=torch.int8)
    probs, alive = score_with_dead_units(model, x, chunk=1)
    assert alive.tolist() == [True, False, True]
    assert dead_fraction(alive) == pytest.approx(1 / 3)
    np.testing.assert_allclose(probs.numpy(), model(x.float()).flatten().detach().numpy(), rtol=1e-6)


def test_score_with_dead_units__all_dead_is_constant():
    model = _tiny_model([[1.0, 1.0], [0.5, -0.5]], [-5.0, -5.0])
    x = torch.tensor([[1, 1], [-1, 0], [0, 1], [1, -1]], dtype=torch.int8)
    probs, alive = score_with_dead_units(model, x)
    assert dead_fraction(alive) == 1.0
    assert output_sd(probs) < COLLAPSE_SD_TOL  # every output is the same sigmoid of the tail's biases
    assert output_sd(np.array([0.2, 0.4])) == pytest.approx(0.1)


@pytest.mark.parametrize("collapsed, policy, keep, applied", [
    ([False, True, False], "exclude", [True, False, True], "exclude"),
    ([False, True, False], "keep", [True, True, True], "keep"),
    ([False, False], "exclude", [True, True], "exclude"),
    ([True, True], "exclude", [True, True], "keep (all collapsed)"),
])
def test_models_to_merge__policies(collapsed, policy, keep, applied):
    mask, used = models_to_merge(collapsed, policy=policy)
    assert mask.tolist() == keep and used == applied


def test_models_to_merge__unknown_policy():
    with pytest.raises(ValueError, match="unknown policy 'drop'"):
        models_to_merge([True], policy="drop")
