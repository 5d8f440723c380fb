"""Covariates of the network (``--nn-covariates``) and the shared PCA step (docs/method.md §7 and
"Covariates in the network").

The principal components are computed once per run (``annpal-pca``, :func:`pca_table`) and read by both
the linear comparator (``annpal-gwas --pcs``) and the networks (``annpal-train --nn-covariates pcs``), so
the two adjust for the same axes of ancestry. A network's covariates are the PC columns, the ``--covar``
columns, or both (:data:`NN_COVARIATE_CHOICES`); :func:`nn_covariates` assembles them in the order of the
dataset's samples. ``annpal-train`` stores the raw values it trained with beside ``model.pt``
(:data:`annpal.results.COVARIATES`), and ``annpal-attribute`` reads them back from there, so attribution
always sees exactly the training covariates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annpal import results
from annpal.errors import InputError
from annpal.gwas import PCAResult, read_covariates

#: Values of ``--nn-covariates``: which covariates join the network after its first layer.
NN_COVARIATE_CHOICES = ("none", "pcs", "file", "pcs+file")


def uses_pcs(mode: str) -> bool:
    """Whether ``--nn-covariates mode`` takes the PC scores."""
    return mode in ("pcs", "pcs+file")


def uses_file(mode: str) -> bool:
    """Whether ``--nn-covariates mode`` takes the ``--covar`` columns."""
    return mode in ("file", "pcs+file")


def pca_table(samples: pd.DataFrame, pca: PCAResult) -> pd.DataFrame:
    """The ``pcs.tsv`` artifact: ``FID IID PC1 … PCk`` (unit-variance scores), one row per sample."""
    table = pd.DataFrame({"FID": samples["FID"].to_numpy(), "IID": samples["IID"].to_numpy()})
    for k in range(pca.scores.shape[1]):
        table[f"PC{k + 1}"] = pca.scores[:, k]
    return table


def pca_summary(pca: PCAResult, *, seed: int) -> dict[str, Any]:
    """What ``pca.json`` and ``gwas.json`` say about a PCA: method, seed, SNPs used, spectrum."""
    return {"method": pca.method, "seed": seed, "n_snps_used": pca.n_snps_used,
            "n_pcs": int(pca.scores.shape[1]),
            "singular_values": pca.singular_values.tolist(),
            "explained_variance_ratio": pca.explained_variance_ratio.tolist()}


def _aligned(table: pd.DataFrame, samples: pd.DataFrame, path: Path, fix: str) -> pd.DataFrame:
    """``table``'s rows in the order of ``samples`` (matched on FID and IID)."""
    key = table["FID"].astype(str) + "\x00" + table["IID"].astype(str)
    if key.duplicated().any():
        raise InputError(f"{path}: {int(key.duplicated().sum())} duplicated FID/IID rows; {fix}")
    want = samples["FID"].astype(str) + "\x00" + samples["IID"].astype(str)
    pos = pd.Index(key).get_indexer(want)
    if (pos < 0).any():
        raise InputError(f"{path}: {int((pos < 0).sum())} of {len(want)} dataset samples have no row; {fix}")
    return table.iloc[pos].reset_index(drop=True)


def read_pcs(path: str | os.PathLike[str], samples: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """PC scores from a ``pcs.tsv`` written by ``annpal-pca``, in the order of the dataset's ``samples``.

    Returns
    -------
    values, names
        ``N × k`` float64 and ``["PC1", …, "PCk"]``.

    Raises
    ------
    InputError
        Not a ``pcs.tsv`` (no FID/IID or no PC columns, non-numeric scores), or dataset samples missing.
    """
    path = Path(path)
    fix = f"{results.PCS.fix()} for this dataset"
    table = results.read(results.PCS, path)
    names = [c for c in table.columns if c not in ("FID", "IID")]
    if not names or any(not (n.startswith("PC") and n[2:].isdigit()) for n in names):
        raise InputError(f"{path}: expected columns FID IID PC1 … PCk, found {', '.join(table.columns[:6])}; {fix}")
    rows = _aligned(table, samples, path, fix)
    values = rows[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{path}: non-numeric or missing PC scores; {fix}")
    return values, names


def nn_covariates(mode: str, samples: pd.DataFrame, *, pcs: str | os.PathLike[str] | None = None,
                  covar: str | os.PathLike[str] | None = None) -> tuple[np.ndarray | None, list[str]]:
    """The network's covariates for ``--nn-covariates mode``: PC scores, then ``--covar`` columns.

    Parameters
    ----------
    mode
        One of :data:`NN_COVARIATE_CHOICES`.
    samples
        The prepared dataset's samples (row order of the result).
    pcs, covar
        ``pcs.tsv`` (``annpal-pca``) and the user's covariate TSV; each required exactly when ``mode``
        uses it.

    Returns
    -------
    values, names
        ``N × C`` float64 (``None`` for ``none``) and the column names.

    Raises
    ------
    InputError
        Unknown mode, a file the mode needs is missing or one it does not use is given, a name clash
        between the files, or a bad file (:func:`read_pcs`, :func:`annpal.gwas.read_covariates`).
    """
    if mode not in NN_COVARIATE_CHOICES:
        raise InputError(f"--nn-covariates {mode}: not one of {', '.join(NN_COVARIATE_CHOICES)}")
    for needed, given, option in ((uses_pcs(mode), pcs, "--pcs"), (uses_file(mode), covar, "--covar")):
        if needed and given is None:
            raise InputError(f"--nn-covariates {mode} needs {option}; give it or choose another mode")
        if not needed and given is not None:
            raise InputError(f"{option} given but --nn-covariates {mode} does not use it; drop it or "
                             "choose a mode that does (pcs, file, pcs+file)")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    if pcs is not None:
        values, pc_names = read_pcs(pcs, samples)
        blocks.append(values)
        names += pc_names
    if covar is not None:
        values, covar_names = read_covariates(covar, samples)
        clash = sorted(set(covar_names) & set(names))
        if clash:
            raise InputError(f"{covar}: column(s) {', '.join(clash)} clash with PC names; rename them")
        blocks.append(values)
        names += covar_names
    return (np.hstack(blocks) if blocks else None), names


def covariate_table(samples: pd.DataFrame, values: np.ndarray, names: list[str] | tuple[str, ...]
                    ) -> pd.DataFrame:
    """The ``covariates.tsv`` artifact a trained model keeps: ``FID IID <names>`` (raw values)."""
    table = pd.DataFrame({"FID": samples["FID"].to_numpy(), "IID": samples["IID"].to_numpy()})
    for j, name in enumerate(names):
        table[name] = values[:, j]
    return table


def read_model_covariates(path: str | os.PathLike[str], samples: pd.DataFrame,
                          names: tuple[str, ...]) -> np.ndarray:
    """A model's ``covariates.tsv`` in the order of ``samples``, checked against the model's ``names``.

    Raises
    ------
    InputError
        Missing file, other columns than the model's covariates, samples missing, non-numeric values.
    """
    path = Path(path)
    fix = "give the covariates.tsv that annpal-train wrote beside this model.pt"
    if not path.is_file():
        raise InputError(f"{path}: missing; the model was trained with covariates ({', '.join(names)}); {fix}")
    table = results.read(results.COVARIATES, path)
    found = [c for c in table.columns if c not in ("FID", "IID")]
    if tuple(found) != tuple(names):
        raise InputError(f"{path}: columns {', '.join(found) or 'none'} but the model takes "
                         f"{', '.join(names)}; {fix}")
    rows = _aligned(table, samples, path, fix)
    values = rows[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{path}: non-numeric or missing covariate values; {fix}")
    return values


__all__ = ["NN_COVARIATE_CHOICES", "covariate_table", "nn_covariates", "pca_summary", "pca_table",
           "read_model_covariates", "read_pcs", "uses_file", "uses_pcs"]
