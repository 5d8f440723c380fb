"""Attributions of a trained network and their mean attribution scores (docs/method.md §3).

- :mod:`~annpal.attribution.ig`: integrated gradients (captum reference), zero baseline, 100 steps.
- :mod:`~annpal.attribution.saliency`: saliency maps (captum reference), absolute gradients.
- :mod:`~annpal.attribution.deeplift`: DeepLIFT, Rescale rule, zero baseline (captum reference).
- :mod:`~annpal.attribution.smoothgrad`: SmoothGrad over saliency (captum NoiseTunnel).
- :mod:`~annpal.attribution.firstlayer`: exact hidden-space forms of IG, saliency and DeepLIFT.
- :mod:`~annpal.attribution.permutation`: permutation importance, exact fast path and reference loop.
- :mod:`~annpal.attribution.mas`: per-sample L1 normalisation and averaging into the MAS, streamed.
- :mod:`~annpal.attribution.allocator`: reuse of freed memory (no page faults pass after pass).
"""

from annpal.attribution.allocator import keep_freed_memory
from annpal.attribution.deeplift import deeplift
from annpal.attribution.firstlayer import (
    fast_deeplift,
    fast_integrated_gradients,
    fast_saliency,
    is_annpal_network,
)
from annpal.attribution.ig import CPU_MAX_IG_ROWS, ig_internal_batch_size, integrated_gradients
from annpal.attribution.mas import (
    IMPLS,
    METHODS,
    MasAccumulator,
    MasResult,
    attribution_rows,
    mas_for_model,
    mas_from_attributions,
    resolve_impl,
)
from annpal.attribution.permutation import (
    draw_replacement_genotypes,
    permutation_importance,
    permutation_importance_reference,
    pm_block_shape,
)
from annpal.attribution.saliency import saliency
from annpal.attribution.smoothgrad import SG_SAMPLES, SG_SIGMA, smoothgrad

__all__ = [
    "CPU_MAX_IG_ROWS",
    "IMPLS",
    "METHODS",
    "SG_SAMPLES",
    "SG_SIGMA",
    "MasAccumulator",
    "MasResult",
    "attribution_rows",
    "deeplift",
    "draw_replacement_genotypes",
    "fast_deeplift",
    "fast_integrated_gradients",
    "fast_saliency",
    "ig_internal_batch_size",
    "integrated_gradients",
    "is_annpal_network",
    "keep_freed_memory",
    "mas_for_model",
    "mas_from_attributions",
    "permutation_importance",
    "permutation_importance_reference",
    "pm_block_shape",
    "resolve_impl",
    "saliency",
    "smoothgrad",
]
