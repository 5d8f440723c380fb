"""Windowed linkage disequilibrium (|Pearson r|) between neighbouring SNPs and LD-proxy sets.

docs/method.md §4 step 2: a SNP detected by one model stands for the SNPs in LD with it, so each model's
detected set is expanded with every SNP ``j`` within ``±w`` SNPs of a detected SNP ``i`` *on the same
chromosome* with ``|r(x_i, x_j)| > ld_r`` (paper: ``w = 20``, ``ld_r = 0.5``, r over all samples).

The authors' loop (``4_get_pal.py``) calls ``np.corrcoef`` for every detected SNP and offset, inside every
bootstrap draw too. It has two bugs that we do not copy:

* windows cross chromosome boundaries (the last SNPs of chromosome 1 proxy the first of chromosome 2);
* negative indices are not guarded (only ``i + ix >= M`` is skipped): for ``i < w`` numpy's negative
  indexing wraps ``i + ix < 0`` around to the *end* of the genome, so SNP ``i`` is correlated with a SNP
  there and, when that passes, the negative number ``i + ix`` itself is added to the proxy set (it
  never matches a real SNP's count, but it lands in the PAL-common list and wraps again when plotted).

Here the banded matrix ``|r|`` (``M × 2w``, column ``c`` holding offset ``offsets[c]`` in
``-w..-1, 1..w``) is computed once, vectorised over blocks of SNPs streamed from the (memory-mapped)
int8 genotype matrix, and reused for every model, threshold and draw. Pairs that do not exist (offset
past either end of the genome or onto another chromosome) hold 0, so they never pass ``|r| > ld_r``.
SNPs with zero variance get ``r = 0`` with every neighbour (``np.corrcoef`` gives NaN there, and
``abs(nan) > 0.5`` is False in the authors' loop, so the proxy sets agree).

Precision: the band is computed in float64 by default, like the authors' ``np.corrcoef``. In float32 a
pair within about 1e-6 of the cut can land on the wrong side of ``|r| > ld_r`` (float32 cannot even
hold ``0.5 + 1e-8``, and centring and summing in float32 err by ~1e-6); PAL needs the rows of the
detected SNPs only, so float64 costs nothing that matters. :class:`BandRows` computes rows on demand
for the recounts of the null draws (:func:`annpal.null.amas_pvalues`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["band_offsets", "banded_abs_r", "proxy_expand", "chromosome_codes", "BandRows"]


def band_offsets(window: int) -> np.ndarray:
    """Offsets ``-w..-1, 1..w`` held by the columns of the banded ``|r|`` matrix (§4 step 2)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)]).astype(np.int64)


def chromosome_codes(chromosomes: np.ndarray) -> np.ndarray:
    """Integer code per SNP, equal for equal chromosome labels (labels compared as strings)."""
    labels = np.asarray(chromosomes).astype(str)
    _, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64).ravel()


def _standardise(block: np.ndarray, dtype: type) -> np.ndarray:
    """Centre each column and scale it to unit Euclidean norm; zero-variance columns become 0.

    With unit-norm centred columns the dot product of two columns is their Pearson r.
    """
    z = block.astype(dtype, copy=True)
    z -= z.mean(axis=0, dtype=np.float64).astype(dtype)
    norm = np.sqrt(np.einsum("ij,ij->j", z, z, dtype=np.float64))
    scale = np.zeros_like(norm)
    # Zero variance: r is undefined; we use 0 (never a proxy), as NaN > ld_r is False for the authors.
    nonzero = norm > 0
    scale[nonzero] = 1.0 / norm[nonzero]
    z *= scale.astype(dtype)
    return z


def banded_abs_r(
    genotypes: np.ndarray,
    *,
    chromosomes: np.ndarray,
    window: int = 20,
    snps: np.ndarray | None = None,
    block_size: int = 4096,
    dtype: type = np.float64,
) -> np.ndarray:
    """``|Pearson r|`` between every SNP and its ``±window`` neighbours on the same chromosome (§4 step 2).

    Parameters
    ----------
    genotypes
        ``samples × SNPs`` matrix (int8 −1/0/1, possibly a read-only memmap; read in blocks of
        ``block_size`` SNPs, so memory stays ``O(samples × block_size)`` plus the band itself).
    chromosomes
        Chromosome label of each SNP (length ``M``); no window crosses a change of label.
    window
        ``w``: neighbours at offsets ``-w..-1, 1..w`` (see :func:`band_offsets`).
    snps
        Only fill the rows of these SNP indices (the rest are NaN, meaning "not computed"). PAL needs
        the rows of detected SNPs only, a few hundred out of 290 522 at paper scale.
    block_size
        SNPs read and standardised at a time.
    dtype
        Floating type of the computation and of the result: float64 (default) decides pairs near the
        cut-off as ``np.corrcoef`` does; float32 halves the memory of a full band but can flip a pair
        within ~1e-6 of ``ld_r`` (module docstring).

    Returns
    -------
    numpy.ndarray
        ``M × 2w`` array; entry ``[i, c]`` is ``|r(x_i, x_{i+offsets[c]})|``, 0 where that SNP does not
        exist or lies on another chromosome, NaN for rows not requested through ``snps``.
    """
    g = genotypes
    if g.ndim != 2:
        raise ValueError("genotypes must be a 2-D samples × SNPs matrix")
    n_snps = g.shape[1]
    codes = chromosome_codes(chromosomes)
    if codes.shape[0] != n_snps:
        raise ValueError(f"chromosomes has {codes.shape[0]} labels for {n_snps} SNPs")
    offsets = band_offsets(window)
    w = window
    if snps is None:
        band = _full_band(g, w=w, block_size=block_size, dtype=dtype)
        rows = np.arange(n_snps)
    else:
        rows = np.unique(np.asarray(snps, dtype=np.int64))
        if rows.size and (rows[0] < 0 or rows[-1] >= n_snps):
            raise ValueError("snps holds indices outside 0..M-1")
        band = np.full((n_snps, 2 * w), np.nan, dtype=dtype)
        _rows_band(g, rows, band, w=w, block_size=block_size, dtype=dtype)
    _zero_missing_pairs(band, rows, codes=codes, offsets=offsets)
    return band


def _zero_missing_pairs(band: np.ndarray, rows: np.ndarray, *, codes: np.ndarray, offsets: np.ndarray) -> None:
    """Set to 0 the band entries of ``rows`` whose partner does not exist.

    Past either end of the genome (the authors' negative indices wrap around instead) or onto another
    chromosome (the authors' windows cross boundaries).
    """
    n_snps = band.shape[0]
    for c, d in enumerate(offsets):
        j = rows + d
        bad = (j < 0) | (j >= n_snps)
        bad[~bad] = codes[j[~bad]] != codes[rows[~bad]]
        band[rows[bad], c] = 0.0


class BandRows:
    """A banded ``|r|`` (:func:`banded_abs_r`, float64) whose rows are computed on first use.

    ``band`` is the ``M × 2w`` array (NaN where not computed yet); :meth:`ensure` fills the rows asked
    for. Used to recount the LD-aware counts of a null draw whose detected SNPs differ from the
    observed ones (``annpal-pvalues``): only a few hundred rows are ever needed.

    Parameters
    ----------
    genotypes, chromosomes, window, block_size
        As :func:`banded_abs_r`.
    """

    def __init__(self, genotypes: np.ndarray, *, chromosomes: np.ndarray, window: int = 20,
                 block_size: int = 4096) -> None:
        if genotypes.ndim != 2:
            raise ValueError("genotypes must be a 2-D samples × SNPs matrix")
        self.genotypes = genotypes
        self.codes = chromosome_codes(chromosomes)
        if self.codes.shape[0] != genotypes.shape[1]:
            raise ValueError(f"chromosomes has {self.codes.shape[0]} labels for {genotypes.shape[1]} SNPs")
        self.window = window
        self.offsets = band_offsets(window)
        self.block_size = block_size
        self.band = np.full((genotypes.shape[1], 2 * window), np.nan, dtype=np.float64)
        self.done = np.zeros(genotypes.shape[1], dtype=bool)

    def ensure(self, snps: np.ndarray) -> np.ndarray:
        """Compute the rows ``snps`` not computed yet; return the band."""
        rows = np.unique(np.asarray(snps, dtype=np.int64))
        if rows.size and (rows[0] < 0 or rows[-1] >= self.done.size):
            raise ValueError("snps holds indices outside 0..M-1")
        rows = rows[~self.done[rows]]
        if rows.size:
            _rows_band(self.genotypes, rows, self.band, w=self.window, block_size=self.block_size,
                       dtype=np.float64)
            _zero_missing_pairs(self.band, rows, codes=self.codes, offsets=self.offsets)
            self.done[rows] = True
        return self.band


def _full_band(g: np.ndarray, *, w: int, block_size: int, dtype: type) -> np.ndarray:
    """Every row of the band: forward offsets from row-wise dot products, backward ones by symmetry.

    Each block is transposed to SNP-major order so that the dot product of SNP ``i`` with SNP ``i + d``
    runs over one contiguous row of samples; a row-wise ``einsum`` per offset streams through memory and
    beat small Gram-matrix products (which compute ``tile + w`` pairs per SNP instead of ``w``).
    """
    n_snps = g.shape[1]
    band = np.zeros((n_snps, 2 * w), dtype=dtype)
    fwd = band[:, w:]  # view: offsets +1..+w
    block_size = max(block_size, 1)
    for start in range(0, n_snps, block_size):
        stop = min(start + block_size, n_snps)
        zt = np.ascontiguousarray(_standardise(np.asarray(g[:, start:min(stop + w, n_snps)]), dtype).T)
        width = zt.shape[0]
        for d in range(1, w + 1):
            nb = min(stop - start, width - d)
            if nb > 0:
                fwd[start:start + nb, d - 1] = np.abs(np.einsum("ij,ij->i", zt[:nb], zt[d:d + nb]))
    # Backward offset -d of SNP i is the forward offset +d of SNP i - d.
    for d in range(1, min(w, n_snps - 1) + 1):
        band[d:, w - d] = fwd[:-d, d - 1]
    np.minimum(band, 1.0, out=band)  # rounding can give 1 + eps for identical columns
    return band


def _rows_band(g: np.ndarray, rows: np.ndarray, band: np.ndarray, *, w: int, block_size: int,
               dtype: type) -> None:
    """Fill the band rows ``rows`` by reading only the columns within ``±w`` of them."""
    n_snps = g.shape[1]
    offsets = band_offsets(w)
    per_chunk = max(1, block_size // (2 * w + 1))
    for s in range(0, rows.size, per_chunk):
        r = rows[s:s + per_chunk]
        cols = np.unique(np.clip(r[:, None] + np.arange(-w, w + 1)[None, :], 0, n_snps - 1))
        z = _standardise(np.asarray(g[:, cols]), dtype)
        pos = np.searchsorted(cols, r)
        zi = z[:, pos]
        for c, d in enumerate(offsets):
            j = np.clip(r + d, 0, n_snps - 1)
            zj = z[:, np.searchsorted(cols, j)]
            band[r, c] = np.minimum(np.abs(np.einsum("ij,ij->j", zi, zj)), 1.0)


def proxy_expand(detected: np.ndarray, *, band: np.ndarray, ld_r: float = 0.5) -> np.ndarray:
    """LD-proxy expansion of one model's detected set (§4 step 2).

    Returns the sorted unique indices ``D ∪ {i + d : i ∈ D, |r(i, i+d)| > ld_r}`` where the band
    already restricts ``d`` to ``±w`` on the same chromosome (strict ``>``, as the authors).

    Raises
    ------
    ValueError
        A band row of a detected SNP was not computed (NaN), or ``ld_r`` is outside ``[0, 1)``.
    """
    if not 0.0 <= ld_r < 1.0:
        raise ValueError(f"ld_r must be in [0, 1), got {ld_r}")
    det = np.unique(np.asarray(detected, dtype=np.int64))
    if det.size == 0:
        return det
    rows = band[det]
    if np.isnan(rows).any():
        raise ValueError("band rows of detected SNPs were not computed; pass them through snps=")
    window = band.shape[1] // 2
    hit = rows > ld_r
    neighbours = (det[:, None] + band_offsets(window)[None, :])[hit]
    return np.union1d(det, neighbours)
