"""Attributions of a trained network and their mean attribution scores (METHOD.md §3).

- :mod:`~annpal.attribution.ig`: integrated gradients (captum), zero baseline, 100 steps.
- :mod:`~annpal.attribution.saliency`: saliency maps (captum), absolute gradients.
- :mod:`~annpal.attribution.permutation`: permutation importance, exact fast path and reference loop.
- :mod:`~annpal.attribution.mas`: per-sample L1 normalisation and averaging into the MAS, streamed.
"""

from annpal.attribution.ig import CPU_MAX_IG_ROWS, ig_internal_batch_size, integrated_gradients
from annpal.attribution.mas import (
    METHODS,
    MasAccumulator,
    MasResult,
    attribution_rows,
    mas_for_model,
    mas_from_attributions,
)
from annpal.attribution.permutation import (
    draw_replacement_genotypes,
    feature_block_size,
    permutation_importance,
    permutation_importance_reference,
)
from annpal.attribution.saliency import saliency

__all__ = [
    "CPU_MAX_IG_ROWS",
    "METHODS",
    "MasAccumulator",
    "MasResult",
    "attribution_rows",
    "draw_replacement_genotypes",
    "feature_block_size",
    "ig_internal_batch_size",
    "integrated_gradients",
    "mas_for_model",
    "mas_from_attributions",
    "permutation_importance",
    "permutation_importance_reference",
    "saliency",
]
