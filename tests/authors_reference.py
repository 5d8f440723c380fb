"""The authors' code (github genodeco/Interpreting-ANNs-for-GWAS), re-implemented plainly, in one place.

Reference implementations for tests (independent values to compare against) and benchmarks (the
baseline timed in the same run). Loops and arithmetic are theirs; where a function adds an option that
fixes one of their bugs, the option says so and is off by default.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
from torch import nn


class AuthorsClassifier(nn.Module):
    """The authors' ``model.py`` ``Classifier``, copied plainly (hidden sizes from the divisors)."""

    def __init__(self, data_shape: int, init_dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Dropout(p=init_dropout, inplace=False),
            nn.Linear(data_shape, int(data_shape // 1000)),
            nn.Dropout(p=0.6, inplace=False),
            nn.ReLU(),
            nn.Linear(int(data_shape // 1000), int(data_shape // 10000)),
            nn.Dropout(p=0.6, inplace=False),
            nn.GELU(),
            nn.Linear(int(data_shape // 10000), 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.layers(x)


def authors_pal(df: np.ndarray, mas_list: np.ndarray, thresh: float, chrom: np.ndarray | None = None):
    """4_get_pal.py re-implemented plainly (same loops and arithmetic). ``chrom`` adds the one fix we
    make (same chromosome, no negative index) so multi-chromosome data can be compared too."""
    mas_detected = []
    for i in range(mas_list.shape[0]):
        mas_detected.append((mas_list[i, :] > np.percentile(mas_list[i, :], thresh)).nonzero()[0])
    common = mas_detected.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(mas_detected)):
            for i2 in range(len(mas_detected[i])):
                for ix in range(-20, 21):
                    j = mas_detected[i][i2] + ix
                    if ix == 0 or j >= df.shape[1]:
                        continue
                    if chrom is not None and (j < 0 or chrom[j] != chrom[mas_detected[i][i2]]):
                        continue
                    if abs(np.corrcoef(df[:, mas_detected[i][i2]], df[:, j])[0][1]) > 0.5:
                        common[i] = np.append(common[i], j)
    for i in range(len(common)):
        common[i] = np.sort(np.unique(common[i]))
    element_counts = Counter([item for sub in common for item in sub])
    pal_common = np.sort(np.array([e for e, c in element_counts.items() if c >= mas_list.shape[0]]))
    mean_mas = np.mean(mas_list, axis=0)
    detected = (mean_mas > np.percentile(mean_mas, thresh)).nonzero()[0]
    amas = mean_mas.copy()
    for i in range(len(detected)):
        amas[detected[i]] = amas[detected[i]] * (element_counts[detected[i]] / mas_list.shape[0])
    pal_amas = (amas > np.percentile(mean_mas, thresh)).nonzero()[0]
    return element_counts, amas, pal_amas, pal_common
