"""The paper's fully connected network (docs/method.md §2; authors' ``model.py``).

``Dropout(p_in) → Linear(M, H1) → Dropout(0.6) → ReLU → Linear(H1, H2) → Dropout(0.6) → GELU →
Linear(H2, 1) → Sigmoid``. The layer order and the ``layers.<i>`` parameter names are the authors', so
their state dicts load unchanged. Genome-wide setting: ``H1 = M // 1000``, ``H2 = M // 10000``,
``p_in = 0.99`` (290 522 SNPs → 290, 29 units and 84 260 139 parameters).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Index of each layer in ``AnnClassifier.layers`` (authors' order).
FIRST_LINEAR, SECOND_LINEAR, OUTPUT_LINEAR = 1, 4, 7


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one network.

    Parameters
    ----------
    n_snps
        Input width M.
    h1_divisor, h2_divisor
        Hidden sizes ``H1 = M // h1_divisor`` and ``H2 = M // h2_divisor`` (paper: 1000, 10000), never
        below 1. Ignored where ``h1``/``h2`` are given explicitly.
    h1, h2
        Explicit hidden sizes (override the divisors).
    input_dropout
        Dropout on the input (paper genome-wide: 0.99; 20k-SNP panel: 0.5).
    hidden_dropout
        Dropout after each hidden linear layer (paper: 0.6).
    """

    n_snps: int
    h1_divisor: int = 1000
    h2_divisor: int = 10000
    h1: int | None = None
    h2: int | None = None
    input_dropout: float = 0.99
    hidden_dropout: float = 0.6
    extra: dict[str, Any] = field(default_factory=dict)

    def hidden_sizes(self) -> tuple[int, int]:
        """``(H1, H2)`` after divisors, explicit overrides and the floor of 1."""
        h1 = self.h1 if self.h1 is not None else self.n_snps // self.h1_divisor
        h2 = self.h2 if self.h2 is not None else self.n_snps // self.h2_divisor
        return max(1, int(h1)), max(1, int(h2))


class AnnClassifier(nn.Module):
    """The paper's classifier; ``forward`` maps ``(batch, M)`` floats to ``(batch, 1)`` probabilities."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        h1, h2 = config.hidden_sizes()
        if h1 < 2 or h2 < 2:
            log.warning(
                "hidden sizes are tiny (H1=%d, H2=%d for %d SNPs): lower the divisors or set the sizes "
                "explicitly for small SNP panels", h1, h2, config.n_snps,
            )
        p = config.hidden_dropout
        self.layers = nn.Sequential(
            nn.Dropout(p=config.input_dropout),
            nn.Linear(config.n_snps, h1),
            nn.Dropout(p=p),
            nn.ReLU(),
            nn.Linear(h1, h2),
            nn.Dropout(p=p),
            nn.GELU(),
            nn.Linear(h2, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @property
    def first_linear(self) -> nn.Linear:
        """The only layer that sees genotypes (``W: H1 × M``)."""
        return self.layers[FIRST_LINEAR]

    def forward_from_preactivation(self, z: torch.Tensor) -> torch.Tensor:
        """Everything after the first linear layer, applied to its pre-activations ``z`` (…, H1).

        In eval mode ``forward(x) == forward_from_preactivation(first_linear(x))``; the exact fast
        permutation importance relies on this.
        """
        for layer in self.layers[FIRST_LINEAR + 1 :]:
            z = layer(z)
        return z


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_model(path: str | os.PathLike[str], model: AnnClassifier, *, meta: dict[str, Any]) -> None:
    """Save weights, architecture and ``meta`` (seeds, permutation, recipe) to one ``.pt`` file.

    The caller is responsible for atomicity (write to a temporary name, then rename).
    """
    torch.save(
        {"state_dict": model.state_dict(), "config": asdict(model.config), "meta": meta},
        path,
    )


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
               ) -> tuple[AnnClassifier, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; returns ``(model in eval mode, meta)``."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    model = AnnClassifier(ModelConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, blob["meta"]
