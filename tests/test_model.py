"""Tests for ``annpal.model``: the paper's architecture (docs/method.md §2; authors' ``model.py``)."""

from __future__ import annotations

import logging

import pytest
import torch
from authors_reference import AuthorsClassifier
from torch import nn

from annpal.model import AnnClassifier, ModelConfig, load_model, n_parameters, save_model

PAPER_SNPS = 290_522


def test_hidden_sizes__paper_genome_wide():
    assert ModelConfig(n_snps=PAPER_SNPS).hidden_sizes() == (290, 29)


def test_hidden_sizes__small_panel_divisors():
    # paper's 20 714-SNP panel: H1 = 82, H2 = 8 come from explicit sizes (divisors 252, 2589 would also do)
    assert ModelConfig(n_snps=20_714, h1=82, h2=8).hidden_sizes() == (82, 8)
    assert ModelConfig(n_snps=20_000).hidden_sizes() == (20, 2)  # authors' mock scale


@pytest.mark.parametrize("n_snps", [1, 50, 999, 9_999])
def test_hidden_sizes__floor_of_one(n_snps):
    h1, h2 = ModelConfig(n_snps=n_snps).hidden_sizes()
    assert h1 >= 1 and h2 == 1


def test_model__tiny_hidden_warns(caplog):
    with caplog.at_level(logging.WARNING):
        model = AnnClassifier(ModelConfig(n_snps=50))
    assert model.first_linear.out_features == 1
    assert "tiny" in caplog.text


def test_n_parameters__paper_count():
    config = ModelConfig(n_snps=PAPER_SNPS)
    h1, h2 = config.hidden_sizes()
    # by hand: weights + biases of the three linear layers
    assert PAPER_SNPS * h1 + h1 + h1 * h2 + h2 + h2 + 1 == 84_260_139
    with torch.device("meta"):  # no memory: shapes only
        model = AnnClassifier(config)
    assert n_parameters(model) == 84_260_139
    assert model.first_linear.weight.shape == (290, PAPER_SNPS)


def test_layers__authors_order_and_dropouts():
    model = AnnClassifier(ModelConfig(n_snps=3_000, input_dropout=0.7, hidden_dropout=0.3))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [nn.Dropout, nn.Linear, nn.Dropout, nn.ReLU, nn.Linear, nn.Dropout, nn.GELU, nn.Linear,
                     nn.Sigmoid]
    assert [model.layers[i].p for i in (0, 2, 5)] == [0.7, 0.3, 0.3]
    assert ModelConfig(n_snps=10).input_dropout == 0.99 and ModelConfig(n_snps=10).hidden_dropout == 0.6


def test_forward__shapes_and_range():
    model = AnnClassifier(ModelConfig(n_snps=200, h1=8, h2=3)).eval()
    x = torch.randint(-1, 2, (5, 200)).float()
    y = model(x)
    assert y.shape == (5, 1)
    assert torch.all((y > 0) & (y < 1))


def test_forward_from_preactivation__equals_forward_in_eval():
    torch.manual_seed(0)
    model = AnnClassifier(ModelConfig(n_snps=300, h1=10, h2=4)).eval()
    x = torch.randint(-1, 2, (7, 300)).float()
    torch.testing.assert_close(model.forward_from_preactivation(model.first_linear(x)), model(x))


def test_state_dict__authors_weights_load():
    torch.manual_seed(1)
    authors = AuthorsClassifier(20_000, 0.5).eval()
    ours = AnnClassifier(ModelConfig(n_snps=20_000, input_dropout=0.5))
    ours.load_state_dict(authors.state_dict())
    ours.eval()
    x = torch.randint(-1, 2, (4, 20_000)).float()
    torch.testing.assert_close(ours(x), authors(x))


def test_save_model__roundtrip(tmp_path):
    model = AnnClassifier(ModelConfig(n_snps=120, h1=6, h2=2, input_dropout=0.5))
    save_model(tmp_path / "m.pt", model, meta={"seed": 3, "case_rows": [1, 2]})
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta == {"seed": 3, "case_rows": [1, 2]}
    assert not loaded.training
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
