"""The paper's fully connected network (docs/method.md §2; authors' ``model.py``).

``Dropout(p_in) → Linear(M, H1) → Dropout(0.6) → ReLU → Linear(H1, H2) → Dropout(0.6) → GELU →
Linear(H2, 1) → Sigmoid`` (no sigmoid for a quantitative trait: ``output="linear"``). The layer order and the ``layers.<i>`` parameter names are the authors', so
their state dicts load unchanged. Genome-wide setting: ``H1 = M // 1000``, ``H2 = M // 10000``,
``p_in = 0.99`` (290 522 SNPs → 290, 29 units and 84 260 139 parameters).

Covariates (``--nn-covariates``, docs/method.md "Covariates in the network"): C named covariates (PC
scores, ``--covar`` columns) join *after* the first layer. They are standardised with the training rows'
mean and SD (buffers ``covariate_mean`` / ``covariate_scale``, saved with the weights) and concatenated to
the first hidden layer's output, so the second layer is ``Linear(H1 + C, H2)``. They never pass the input
dropout and never meet ``W1``: every per-SNP attribution is unchanged in form, and the covariates are
fixed additional inputs of the function being attributed. Without covariates the network is exactly the
paper's.
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
#: Output of the network: a case probability, or the (standardised) value of a quantitative trait.
OUTPUTS = ("sigmoid", "linear")
OUTPUT_OF_TRAIT = {"binary": "sigmoid", "quantitative": "linear"}


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
    covariates
        Names of the covariates joining after the first layer (empty: the paper's network).
    output
        ``sigmoid`` (the paper's case probability, binary trait) or ``linear`` (no final activation: the
        prediction of a standardised quantitative trait, trained with mean squared error).
    """

    n_snps: int
    h1_divisor: int = 1000
    h2_divisor: int = 10000
    h1: int | None = None
    h2: int | None = None
    input_dropout: float = 0.99
    hidden_dropout: float = 0.6
    extra: dict[str, Any] = field(default_factory=dict)
    covariates: tuple[str, ...] = ()
    output: str = "sigmoid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", tuple(str(c) for c in self.covariates))
        if self.output not in OUTPUTS:
            raise ValueError(f"output {self.output!r}: not one of {OUTPUTS}")

    @property
    def n_covariates(self) -> int:
        """C, the width of the covariate block joining after the first layer."""
        return len(self.covariates)

    def hidden_sizes(self) -> tuple[int, int]:
        """``(H1, H2)`` after divisors, explicit overrides and the floor of 1."""
        h1 = self.h1 if self.h1 is not None else self.n_snps // self.h1_divisor
        h2 = self.h2 if self.h2 is not None else self.n_snps // self.h2_divisor
        return max(1, int(h1)), max(1, int(h2))


class AnnClassifier(nn.Module):
    """The paper's classifier; ``forward`` maps ``(batch, M)`` floats (and ``(batch, C)`` raw covariates
    when the config names some) to ``(batch, 1)`` probabilities."""

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
            nn.Linear(h1 + config.n_covariates, h2),
            nn.Dropout(p=p),
            nn.GELU(),
            nn.Linear(h2, 1),
            # linear output (quantitative trait): no last layer at all, so the parameter names, the
            # first-layer fast paths and every walker over the tail see the same layers minus the sigmoid
            *([nn.Sigmoid()] if config.output == "sigmoid" else []),
        )

        if config.n_covariates:
            # Set from the training rows by set_covariate_scaling; saved in the state dict.
            self.register_buffer("covariate_mean", torch.zeros(config.n_covariates))
            self.register_buffer("covariate_scale", torch.ones(config.n_covariates))

    def set_covariate_scaling(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Standardise covariates as ``(c − mean) / scale`` (the training rows' mean and SD)."""
        with torch.no_grad():
            self.covariate_mean.copy_(torch.as_tensor(mean))
            self.covariate_scale.copy_(torch.as_tensor(scale))

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        z = self.layers[: FIRST_LINEAR + 1](x)
        return self.forward_from_preactivation(z, covariates)

    @property
    def first_linear(self) -> nn.Linear:
        """The only layer that sees genotypes (``W: H1 × M``)."""
        return self.layers[FIRST_LINEAR]

    def forward_from_preactivation(self, z: torch.Tensor, covariates: torch.Tensor | None = None
                                   ) -> torch.Tensor:
        """Everything after the first linear layer, applied to its pre-activations ``z`` (…, H1).

        In eval mode ``forward(x, c) == forward_from_preactivation(first_linear(x), c)``; the exact fast
        attributions rely on this. ``covariates`` (raw, ``(batch, C)``) broadcast over any leading
        dimensions of ``z`` beyond the batch (the fast IG passes ``(steps, batch, H1)``).
        """
        for layer in self.layers[FIRST_LINEAR + 1 : SECOND_LINEAR]:
            z = layer(z)
        z = self.join_covariates(z, covariates)
        for layer in self.layers[SECOND_LINEAR:]:
            z = layer(z)
        return z

    def join_covariates(self, hidden: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
        """The first hidden layer's output with the standardised covariates appended (``…, H1 + C``).

        Raises
        ------
        ValueError
            Covariates missing for a network that has them, given to one that has none, or of the
            wrong width.
        """
        n_cov = self.config.n_covariates
        if n_cov == 0:
            if covariates is not None and covariates.shape[-1] != 0:
                raise ValueError("this network takes no covariates; pass none")
            return hidden
        if covariates is None or covariates.shape[-1] != n_cov:
            got = "none" if covariates is None else f"{covariates.shape[-1]}"
            raise ValueError(f"this network takes {n_cov} covariates ({', '.join(self.config.covariates)}); "
                             f"got {got}")
        dtype = hidden.dtype
        c = (covariates.to(dtype) - self.covariate_mean.to(dtype)) / self.covariate_scale.to(dtype)
        return torch.cat([hidden, c.expand(*hidden.shape[:-1], n_cov)], dim=-1)

    @property
    def second_linear(self) -> nn.Linear:
        """``W2: H2 × (H1 + C)``; its last C columns weigh the covariates."""
        return self.layers[SECOND_LINEAR]


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
