"""SmoothGrad over saliency (Smilkov et al. 2017) through captum's :class:`~captum.attr.NoiseTunnel`.

For each sample, ``n_samples`` noisy copies x + ε with ε ~ N(0, σ²) on every genotype (σ on the −1/0/1
genotype scale, absolute, not relative to the range) go through captum's ``Saliency(abs=True)``; the
score is the mean of the absolute gradients (``nt_type="smoothgrad"``). The noise is drawn from torch's
generator seeded with ``seed`` inside :func:`torch.random.fork_rng`, so the caller's random state is left
alone and a model's scores are reproducible for a given batch size. captum passes one noisy copy of the
batch at a time (``nt_samples_batch_size=1``): memory stays at one batch of float rows, and the draws do not
depend on a memory budget.

There is no exact hidden-space shortcut here (unlike IG, saliency and DeepLIFT): the noise is
M-dimensional, so every noisy copy costs one full forward and backward pass.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import NoiseTunnel, Saliency
from torch import nn

from annpal.attribution.ig import covariate_args, genotype_tensor, model_device, require_eval

#: Noisy copies per sample (paper of the method: 50 saturates; 20 keeps paper scale to minutes).
SG_SAMPLES = 20
#: Noise standard deviation on the −1/0/1 genotype scale: 15 % of its range of 2 (Smilkov et al.
#: recommend 10–20 % of the input range).
SG_SIGMA = 0.3


def smoothgrad(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *, n_samples: int = SG_SAMPLES,
               sigma: float = SG_SIGMA, seed: int = 0,
               covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Mean absolute gradient over noisy copies of each sample (SmoothGrad over saliency).

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` (output ``(batch, 1)``) in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    n_samples
        Noisy copies per sample.
    sigma
        Standard deviation of the Gaussian noise on the genotype scale.
    seed
        Seed of the noise.
    covariates
        The samples' raw covariates for a network that takes them: fixed additional inputs, no noise.

    Returns
    -------
    numpy.ndarray
        float32, samples × M, non-negative.
    """
    require_eval(model)
    device = model_device(model)
    x = genotype_tensor(genotypes, device=device).requires_grad_()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        attr = NoiseTunnel(Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=int(n_samples), nt_samples_batch_size=1,
            stdevs=float(sigma), target=0, abs=True,
            additional_forward_args=covariate_args(model, covariates))
    return attr.detach().cpu().numpy()
