"""Input-dropout survivors and their noise from a counter-based generator, drawn in parallel.

The input law of a training batch (docs/method.md §2): in the ``n_snps × b`` grid of a batch, cell
``(j, i)`` (SNP ``j``, batch position ``i``, cell index ``c = j·b + i``) survives independently with
probability ``1 − p`` and then carries ``x̃ = (x_ij − ξ)·scale`` with ``ξ ~ N(0, σ)``.

:func:`draw_batch` draws that law without a serial generator:

* **Segments.** The grid is cut into fixed segments of :func:`segment_snps` whole SNPs (the cut depends on
  ``b`` only). Each segment walks its own cells from its first one by geometric gaps,
  ``G = ⌊log U / log p⌋ + 1`` with ``U`` uniform on (0, 1] (53 random bits), so ``P(G > k) = p^k``.
  The geometric law is memoryless, so starting afresh at every segment's first cell is exactly a
  Bernoulli(1 − p) trial per cell; segments are independent and run in parallel.
* **Counter-based numbers.** Every random number comes from Philox4x32-10 (Salmon et al. 2011,
  "Parallel random numbers: as easy as 1, 2, 3"; Random123's ``philox4x32_R(10, …)``, checked against its
  known-answer vectors) keyed by the 64-bit ``key``, at counter ``(block, segment, stream)``: stream 0
  holds a segment's gaps, stream 1 its noise; a block's four 32-bit words make two 64-bit words, each
  one uniform. A number depends only on the key and its place, never on which thread drew it or how
  many threads there are. (The 4x32 variant, not numpy's 4x64: its 32 × 32-bit products vectorise,
  about half the cost per 64-bit word here.)
* **Two passes.** Pass 1 stores each segment's survivor offsets in a scratch slot of
  ``mean + 8 sd + 16`` entries and counts them; a prefix sum places the segments; pass 2 decodes
  ``(j, i)``, gathers the genotype, adds the noise (Box–Muller in float64, one block per two
  survivors) and writes the CSR row pointers of its own SNPs. A segment with more survivors than its
  slot (about 1e-15 per segment) is counted in full in pass 1 and redrawn from the same counters in
  pass 2, so no survivor is ever dropped.

:func:`draw_batch_reference` is the plain (numpy, serial, slow) transcription of the same draws, kept as
the reference the compiled path is tested against.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from annpal.numba_jit import jit

#: Cells per segment aimed at (a segment is ``max(1, SEGMENT_CELLS // b)`` whole SNPs): about 650
#: survivors at p = 0.99, 1 100 segments at paper scale, enough to balance any thread count.
SEGMENT_CELLS = 65536
#: Segments per parallel task (each task allocates its scratch once).
GROUP_SEGMENTS = 8

_MASK64 = (1 << 64) - 1
_U64 = np.uint64
# Philox4x32 multipliers and Weyl key increments (Random123, philox.h)
_M0, _M1 = _U64(0xD2511F53), _U64(0xCD9E8D57)
_W0, _W1 = _U64(0x9E3779B9), _U64(0xBB67AE85)
_LO32, _S32 = _U64(0xFFFFFFFF), _U64(32)
_STREAM_GAPS, _STREAM_NOISE = _U64(0), _U64(1)
_TWO_POW_M53 = 2.0 ** -53
# fdlibm's log (e_log.c) and sine/cosine kernels on [-π/4, π/4] (k_sin.c, k_cos.c)
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
#: Largest gap kept exactly; any longer one leaves every segment anyway (segments are < 2⁴⁰ cells).
_GAP_CAP = 2.0 ** 40


#: The parallel passes and the per-segment routines they call (annpal.numba_jit: cache, error model).
_jit = jit()
_jit_serial = jit(parallel=False)


#: Small arithmetic helpers are inlined into numba's IR, so LLVM can vectorise the loops that call them.
_inline = numba.njit(inline="always", error_model="numpy")


@intrinsic
def _as_bits(typingctx: Any, x: Any) -> Any:  # pragma: no cover - compile time
    """The IEEE-754 bits of a float64 as a uint64."""
    if x != types.float64:
        return None
    return types.uint64(types.float64), lambda ctx, builder, sig, args: builder.bitcast(args[0], ir.IntType(64))


@intrinsic
def _from_bits(typingctx: Any, w: Any) -> Any:  # pragma: no cover - compile time
    """The float64 whose IEEE-754 bits are the uint64 ``w``."""
    if w != types.uint64:
        return None
    return types.float64(types.uint64), lambda ctx, builder, sig, args: builder.bitcast(args[0], ir.DoubleType())


@_inline
def _philox_words(c0: np.uint64, c1: np.uint64, c2: np.uint64, c3: np.uint64, k0: np.uint64,
                  k1: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:  # pragma: no cover
    """Philox4x32-10 of the 32-bit counter words ``c0 … c3`` under key ``(k0, k1)`` (each held in a
    uint64): ten rounds, the key bumped by the Weyl constants before each round after the first."""
    for r in range(10):
        ka, kb = (k0 + _U64(r) * _W0) & _LO32, (k1 + _U64(r) * _W1) & _LO32
        p0, p1 = _M0 * c0, _M1 * c2  # 32 × 32 → 64-bit products: high and low halves
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ ka, p1 & _LO32, (p0 >> _S32) ^ c3 ^ kb, p0 & _LO32
    return c0, c1, c2, c3


@_inline
def _philox(block: np.uint64, seg: np.uint64, stream: np.uint64,
            key: np.uint64) -> tuple[np.uint64, np.uint64]:  # pragma: no cover - compiled
    """Block ``block`` of stream ``stream`` of segment ``seg`` as two 64-bit words ``(x0·2³² + x1,
    x2·2³² + x3)``: Philox4x32-10 at counter ``(block mod 2³², ⌊block / 2³²⌋, seg, stream)``, key
    ``(key mod 2³², ⌊key / 2³²⌋)``."""
    x0, x1, x2, x3 = _philox_words(block & _LO32, block >> _S32, seg, stream, key & _LO32, key >> _S32)
    return (x0 << _S32) | x1, (x2 << _S32) | x3


@_inline
def _uniform(word: np.uint64) -> float:  # pragma: no cover - compiled
    """The top 53 bits of ``word`` as a uniform on (0, 1]: ``(⌊word / 2¹¹⌋ + 1) / 2⁵³``."""
    return float((word >> _U64(11)) + _U64(1)) * _TWO_POW_M53


@_inline
def _log_uniform(word: np.uint64) -> float:  # pragma: no cover - compiled
    """``log U`` of :func:`_uniform` ``(word)``, fdlibm's ``log`` without branches (vectorisable, < 1 ulp)."""
    bits = _as_bits(float((word >> _U64(11)) + _U64(1)))  # n = 2⁵³·U, an exact float
    hi = bits >> _S32
    mant = hi & _U64(0xFFFFF)
    half = (mant + _U64(0x95F64)) & _U64(0x100000)  # mantissa ≥ √2: take f in [√2/2, √2) instead
    f = _from_bits(((mant | (half ^ _U64(0x3FF00000))) << _S32) | (bits & _LO32)) - 1.0
    k = float((hi >> _U64(20)) + (half >> _U64(20))) - 1023.0 - 53.0  # log U = log n − 53 log 2
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = (w * (_LG[1] + w * (_LG[3] + w * _LG[5])) + z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6]))))
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


@_inline
def _sincos_2pi(word: np.uint64) -> tuple[float, float]:  # pragma: no cover - compiled
    """``(sin 2πU, cos 2πU)`` of :func:`_uniform` ``(word)``, fdlibm's kernels without branches.

    ``U = q/4 + t`` with ``q = round(4U)`` and ``|t| ≤ 1/8`` exactly (no range-reduction error).
    """
    u = _uniform(word)
    q = math.floor(4.0 * u + 0.5)
    x = 2.0 * math.pi * (u - 0.25 * q)
    z = x * x
    sin_x = x + z * x * (_S[0] + z * (_S[1] + z * (_S[2] + z * (_S[3] + z * (_S[4] + z * _S[5])))))
    r = z * z * (_C[0] + z * (_C[1] + z * (_C[2] + z * (_C[3] + z * (_C[4] + z * _C[5])))))
    hz = 0.5 * z
    cw = 1.0 - hz
    cos_x = cw + (((1.0 - cw) - hz) + r)
    # 2πU = q·π/2 + x; two-way selects only (a four-way choice stops LLVM from vectorising)
    quad = np.int64(q)
    odd = (quad & 1) == 1
    sin_u = cos_x if odd else sin_x
    cos_u = sin_x if odd else cos_x
    sin_u = -sin_u if (quad & 2) == 2 else sin_u
    cos_u = -cos_u if ((quad + 1) & 2) == 2 else cos_u
    return sin_u, cos_u


@_inline
def _gap(word: np.uint64, inv_log_p: float) -> np.int64:  # pragma: no cover - compiled
    """Geometric gap ``⌊log U / log p⌋ + 1`` (the division as a multiplication by ``1/log p``: a rounding
    apart), capped at :data:`_GAP_CAP` so it converts to int64."""
    return np.int64(min(math.floor(_log_uniform(word) * inv_log_p), _GAP_CAP)) + 1


@_jit_serial
def _draw_gaps(k0: np.uint64, seg: int, blk0: int, inv_log_p: float,
               gaps: np.ndarray) -> None:  # pragma: no cover - compiled
    """``gaps[h, t]`` = the gap of word ``h`` of block ``blk0 + t`` of segment ``seg``'s gap stream."""
    useg = _U64(seg)
    for t in range(gaps.shape[1]):
        wa, wb = _philox(_U64(blk0 + t), useg, _STREAM_GAPS, k0)
        gaps[0, t] = _gap(wa, inv_log_p)
        gaps[1, t] = _gap(wb, inv_log_p)


@_jit_serial
def _draw_normals(k0: np.uint64, seg: int, normals: np.ndarray, t0: int, t1: int) -> None:  # pragma: no cover
    """``normals[:, t]``, ``t0 ≤ t < t1``: Box–Muller on the two words of block ``t`` of segment ``seg``'s
    noise stream: ``√(−2 log U₀)·(cos, sin)(2πU₁)``."""
    useg = _U64(seg)
    for t in range(t0, t1):
        wa, wb = _philox(_U64(t), useg, _STREAM_NOISE, k0)
        radius = math.sqrt(-2.0 * _log_uniform(wa))
        sin_t, cos_t = _sincos_2pi(wb)
        normals[0, t], normals[1, t] = radius * cos_t, radius * sin_t


@_jit_serial
def _segment_offsets(k0: np.uint64, seg: int, n_cells: int, inv_log_p: float, gaps: np.ndarray,
                     out: np.ndarray, cap: int) -> int:  # pragma: no cover - compiled
    """Survivor offsets of segment ``seg`` (``0 … n_cells − 1``) into ``out[:cap]``; returns how many.

    Survivors beyond ``cap`` are counted, not stored. Gaps are drawn ``gaps.shape[1]`` blocks at a time
    (``gaps`` is scratch); ``inv_log_p = 1/log p``, or 0 for p = 0 (every gap 1, nothing drawn).
    """
    if inv_log_p == 0.0:
        for c in range(min(n_cells, cap)):
            out[c] = c
        return n_cells
    pos, count, blk0, n_blk = -1, 0, 0, gaps.shape[1]
    while True:
        _draw_gaps(k0, seg, blk0, inv_log_p, gaps)
        for d in range(2 * n_blk):  # word d of the chunk: word d % 2 of block d / 2
            pos += gaps[d & 1, d >> 1]
            if pos >= n_cells:
                return count
            if count < cap:
                out[count] = pos
            count += 1
        blk0 += n_blk


@_jit
def _count_pass(k0: np.uint64, n_snps: int, b: int, seg_snps: int, inv_log_p: float, n_blk: int,
                group: int, scratch: np.ndarray, cap: int, counts: np.ndarray) -> None:  # pragma: no cover
    """Pass 1: every segment's survivor count, and its offsets in ``scratch[seg·cap …]`` if they fit.

    Segments are handed out in groups of ``group`` (one scratch buffer per group).
    """
    n_seg = counts.size
    for g in prange((n_seg + group - 1) // group):
        gaps = np.empty((2, n_blk), np.int64)
        for seg in range(g * group, min(n_seg, (g + 1) * group)):
            n_cells = (min(n_snps, (seg + 1) * seg_snps) - seg * seg_snps) * b
            counts[seg] = _segment_offsets(k0, seg, n_cells, inv_log_p, gaps, scratch[seg * cap:(seg + 1) * cap],
                                           cap)


@_jit_serial
def _decode_segment(offsets: np.ndarray, j0: int, start: int, n_snps: int, b: int, rows: np.ndarray,
                    snp: np.ndarray, sample: np.ndarray, where: np.ndarray) -> None:  # pragma: no cover
    """Cells ``offsets`` of a segment starting at SNP ``j0`` → ``snp``, ``sample`` from output index
    ``start``, and ``where[k]``, the genotype's index in ``x_flat``."""
    inv_b, b32 = 1.0 / b, np.int32(b)
    n = offsets.size
    seg_snp, seg_sample = snp[start:start + n], sample[start:start + n]
    for k in range(n):
        o = offsets[k]
        # ⌊o / b⌋ by a float64 product, corrected by one where it rounded across a multiple of b
        jl = np.int32(np.float64(o) * inv_b)
        r = o - jl * b32
        jl = jl + np.int32(r >= b32) - np.int32(r < 0)
        seg_snp[k] = np.int32(j0) + jl
        seg_sample[k] = o - jl * b32
    for k in range(n):
        where[k] = rows[seg_sample[k]] * n_snps + seg_snp[k]


@_jit_serial
def _gather_segment(where: np.ndarray, count: int, normals: np.ndarray, start: int, x_flat: np.ndarray,
                    sigma: float, scale: float, values: np.ndarray) -> None:  # pragma: no cover - compiled
    """``values[start + k] = (x − σ·z_k)·scale``: the gather is a random read of a large matrix, so the
    loop is kept this small that many of its cache misses are in flight at once (computing the noise in
    the same loop, or chunk by chunk with prefetches, measured 1.5–2x slower)."""
    if sigma > 0.0:
        for k in range(count):
            values[start + k] = np.float32((float(x_flat[where[k]]) - sigma * normals[k & 1, k >> 1]) * scale)
    else:
        for k in range(count):
            values[start + k] = np.float32(float(x_flat[where[k]]) * scale)


@_jit_serial
def _row_pointers(snp: np.ndarray, start: int, count: int, j0: int, j1: int,
                  crow: np.ndarray) -> None:  # pragma: no cover - compiled
    """``crow[j]`` (first survivor of SNP ≥ ``j``) for the SNPs ``j0 … j1 − 1`` of one segment, without
    data-dependent branches: each survivor writes its index at its SNP, last survivor first (so the
    first one of a SNP stays), then SNPs without a survivor take their successor's value."""
    end = start + count  # crow[j1] belongs to the next segment (another thread): never read or written
    crow[j0:j1] = end
    for k in range(end - 1, start - 1, -1):
        crow[snp[k]] = k
    for j in range(j1 - 1, j0 - 1, -1):
        end = min(crow[j], end)
        crow[j] = end


@_jit
def _fill_pass(k0: np.uint64, n_snps: int, b: int, seg_snps: int, inv_log_p: float, n_blk: int, group: int,
               scratch: np.ndarray, cap: int, starts: np.ndarray, x_flat: np.ndarray, rows: np.ndarray,
               sigma: float, scale: float, snp: np.ndarray, sample: np.ndarray, values: np.ndarray,
               crow: np.ndarray) -> None:  # pragma: no cover - compiled
    """Pass 2: every segment's survivors and the row pointers ``crow[j]`` of its SNPs."""
    n_seg = starts.size - 1
    for g in prange((n_seg + group - 1) // group):
        normals = np.empty((2, (cap + 1) // 2 if sigma > 0.0 else 0), np.float64)
        where = np.empty(cap, np.int64)
        for seg in range(g * group, min(n_seg, (g + 1) * group)):
            j0, j1 = seg * seg_snps, min(n_snps, (seg + 1) * seg_snps)
            start, count = starts[seg], starts[seg + 1] - starts[seg]
            if count <= cap:
                offsets = scratch[seg * cap:seg * cap + count]
            else:  # the rare segment that overflowed its slot: redraw it whole from the same counters
                offsets = np.empty(count, np.int32)
                _segment_offsets(k0, seg, (j1 - j0) * b, inv_log_p, np.empty((2, n_blk), np.int64), offsets,
                                 count)
                where = np.empty(count, np.int64)
                normals = np.empty((2, (count + 1) // 2 if sigma > 0.0 else 0), np.float64)
            if sigma > 0.0:
                _draw_normals(k0, seg, normals, 0, (count + 1) // 2)
            _decode_segment(offsets, j0, start, n_snps, b, rows, snp, sample, where)
            _gather_segment(where, count, normals, start, x_flat, sigma, scale, values)
            _row_pointers(snp, start, count, j0, j1, crow)


def segment_snps(b: int) -> int:
    """SNPs per segment for a batch of ``b`` rows: ``max(1, SEGMENT_CELLS // b)`` (depends on ``b`` only)."""
    return max(1, SEGMENT_CELLS // max(1, b))


def survivor_capacity(n_cells: int, p: float) -> int:
    """Room for the survivors of ``n_cells`` cells at dropout ``p``: the mean count + 8 standard deviations
    + 16, at most ``n_cells`` (a segment's scratch slot here; a caller's ``out=`` arrays)."""
    mean = n_cells * (1.0 - p)
    return min(n_cells, int(mean + 8.0 * math.sqrt(n_cells * p * (1.0 - p)) + 16.0))


def _chunk_blocks(n_cells: int, p: float) -> int:
    """Philox blocks of gaps drawn at a time: the mean survivor count + 2 standard deviations + 8, two
    gaps a block (about 2.5 % of segments need a second chunk; few words are drawn in vain)."""
    return max(1, int(n_cells * (1.0 - p) + 2.0 * math.sqrt(n_cells * p * (1.0 - p)) + 8.0) // 2 + 1)


def _check(p: float, sigma: float, x_flat: np.ndarray, rows: np.ndarray) -> None:
    """Raise ``ValueError`` for arguments outside the law's domain."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"input dropout p must be in [0, 1), got {p}")
    if not sigma >= 0.0:
        raise ValueError(f"input noise sigma must be ≥ 0, got {sigma}")
    if x_flat.dtype != np.int8 or x_flat.ndim != 1 or rows.dtype != np.int64 or rows.ndim != 1:
        raise ValueError("x_flat must be a flat int8 array and rows a flat int64 array")


_local = threading.local()


def _scratch(n: int) -> np.ndarray:
    """This thread's scratch buffer of at least ``n`` int32, kept between calls: a fresh one is a few
    MB of first-touch page faults per batch (measured 2–3 ms)."""
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.size < n:
        buf = _local.scratch = np.empty(max(n, 1), np.int32)
    return buf[:n]


def _outputs(n: int, n_snps: int, out: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, ...]:
    """``(snp, sample, values, crow)`` for ``n`` survivors: views of ``out`` where it is large enough."""
    if out is not None and out[0].size >= n and out[1].size >= n and out[2].size >= n and out[3].size == n_snps + 1:
        return out[0][:n], out[1][:n], out[2][:n], out[3]
    return np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float32), np.empty(n_snps + 1, np.int64)


def draw_batch(key: int, x_flat: np.ndarray, n_snps: int, rows: np.ndarray, p: float, sigma: float,
               scale: float, *, out: tuple[np.ndarray, ...] | None = None, _capacity: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Survivors of input dropout ``p`` in a batch, their noisy scaled genotypes, CSR by SNP.

    Parameters
    ----------
    key
        Philox key (taken modulo 2⁶⁴); the output is a function of ``key`` and the inputs only, the same
        on any number of numba threads (``numba.set_num_threads``).
    x_flat
        int8 genotype matrix (``n_rows × n_snps``, row-major) flattened.
    n_snps
        Columns of the genotype matrix (``M``).
    rows
        int64 row indices of the batch (``b`` of them).
    p
        Input dropout, ``0 ≤ p < 1``: each cell survives with probability ``1 − p``.
    sigma
        Standard deviation of the Gaussian input noise (0: none).
    scale
        Factor applied after the noise (the recipe's ``1/(1 − p)``).
    out
        Optional buffers ``(snp, sample, values, crow)`` (int32, int32, float32 of any length, int64 of
        ``n_snps + 1``) to write into: the results are then views of them wherever they are long enough
        (fresh arrays otherwise). Reusing buffers saves the page faults of fresh ones, a few ms per batch
        at paper scale; the caller must not reuse them while it still needs an earlier batch's results.
    _capacity
        Test hook: scratch entries per segment (default mean + 8 sd + 16); any value gives the same output.

    Returns
    -------
    (snp, sample, values, crow)
        ``snp``, ``sample`` (int32) and ``values`` (float32, ``(x − ξ)·scale`` rounded once) of every
        survivor in increasing cell ``j·b + i``; ``crow`` (int64, ``n_snps + 1``): ``crow[j]`` = index
        of the first survivor with SNP ≥ ``j``, ``crow[n_snps]`` = number of survivors.

    Raises
    ------
    ValueError
        ``p`` outside [0, 1), negative ``sigma``, or arrays of the wrong dtype or shape.
    """
    _check(p, sigma, x_flat, rows)
    rows = np.ascontiguousarray(rows)  # one compiled signature (a strided view would compile another)
    b = rows.size
    if b == 0 or n_snps == 0:
        snp, sample, values, crow = _outputs(0, n_snps, out)
        crow[:] = 0
        return snp, sample, values, crow
    seg_snps = segment_snps(b)
    n_seg = -(-n_snps // seg_snps)
    seg_cells = min(seg_snps, n_snps) * b  # the largest segment
    cap = survivor_capacity(seg_cells, p) if _capacity is None else _capacity
    n_blk = _chunk_blocks(seg_cells, p)
    inv_log_p = 1.0 / math.log(p) if p > 0.0 else -0.0
    k0 = np.uint64(key & _MASK64)
    counts = np.empty(n_seg, np.int64)
    scratch = _scratch(n_seg * cap)
    _count_pass(k0, n_snps, b, seg_snps, inv_log_p, n_blk, GROUP_SEGMENTS, scratch, cap, counts)
    starts = np.zeros(n_seg + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    n = int(starts[-1])
    snp, sample, values, crow = _outputs(n, n_snps, out)
    _fill_pass(k0, n_snps, b, seg_snps, inv_log_p, n_blk, GROUP_SEGMENTS, scratch, cap, starts, x_flat, rows,
               float(sigma), float(scale), snp, sample, values, crow)
    crow[n_snps] = n
    return snp, sample, values, crow


def _reference_philox(blocks: np.ndarray, seg: int, stream: int, key: int) -> tuple[np.ndarray, np.ndarray]:
    """Philox4x32-10 in plain numpy (uint64 arrays holding 32-bit words), the counters and word pairing
    of :func:`_philox`: two arrays of 64-bit words for the blocks ``blocks``."""
    mask = np.uint64(0xFFFFFFFF)
    c0, c1 = blocks & mask, blocks >> np.uint64(32)
    c2, c3 = np.full_like(blocks, seg), np.full_like(blocks, stream)
    for r in range(10):
        ka, kb = np.uint64((key + r * 0x9E3779B9) & 0xFFFFFFFF), np.uint64(((key >> 32) + r * 0xBB67AE85) & 0xFFFFFFFF)
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ ka, p1 & mask, (p0 >> np.uint64(32)) ^ c3 ^ kb, p0 & mask
    return (c0 << np.uint64(32)) | c1, (c2 << np.uint64(32)) | c3


def _reference_uniform(words: np.ndarray) -> np.ndarray:
    return ((words >> np.uint64(11)) + np.uint64(1)) * _TWO_POW_M53


def _reference_segment(key: int, seg: int, n_cells: int, p: float) -> np.ndarray:
    """Survivor offsets of one segment: geometric gaps from words 0, 1, 2, … of its gap stream."""
    if p == 0.0:
        return np.arange(n_cells, dtype=np.int64)
    inv_log_p, offsets, pos, blk0 = 1.0 / math.log(p), [], -1, 0
    while pos < n_cells:
        wa, wb = _reference_philox(np.arange(blk0, blk0 + 32, dtype=np.uint64), seg, 0, key)
        u = _reference_uniform(np.column_stack([wa, wb]).reshape(-1))
        gaps = np.minimum(np.floor(np.log(u) * inv_log_p), _GAP_CAP).astype(np.int64) + 1
        walk = pos + np.cumsum(gaps)
        offsets.append(walk[walk < n_cells])
        pos, blk0 = int(walk[-1]), blk0 + 32
    return np.concatenate(offsets)


def _reference_normals(key: int, seg: int, n: int) -> np.ndarray:
    """``n`` standard normals of a segment's noise stream: Box–Muller on the two words of each block."""
    wa, wb = _reference_philox(np.arange(-(-n // 2), dtype=np.uint64), seg, 1, key)
    radius, angle = np.sqrt(-2.0 * np.log(_reference_uniform(wa))), 2.0 * np.pi * _reference_uniform(wb)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]).reshape(-1)[:n]


def draw_batch_reference(key: int, x_flat: np.ndarray, n_snps: int, rows: np.ndarray, p: float, sigma: float,
                         scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plain (numpy, serial, slow) transcription of :func:`draw_batch`: the same segments, counters
    and formulas, numpy's own ``Philox`` and ``log``/``sin``/``cos``. Equal to it up to float rounding
    (its offsets only differ where ``log U / log p`` rounds across an integer, about 1e-16 per draw)."""
    _check(p, sigma, x_flat, rows)
    b = rows.size
    seg_snps = segment_snps(b)
    snps, samples, noise = [], [], []
    for seg in range(-(-n_snps // seg_snps) if b else 0):
        j0, j1 = seg * seg_snps, min(n_snps, (seg + 1) * seg_snps)
        offsets = _reference_segment(key & _MASK64, seg, (j1 - j0) * b, p)
        snps.append(j0 + offsets // b)
        samples.append(offsets % b)
        noise.append(_reference_normals(key & _MASK64, seg, offsets.size) if sigma > 0 else np.zeros(offsets.size))
    snp = np.concatenate(snps) if snps else np.empty(0, np.int64)
    sample = np.concatenate(samples) if samples else np.empty(0, np.int64)
    z = np.concatenate(noise) if noise else np.empty(0)
    x = x_flat[rows[sample] * n_snps + snp].astype(np.float64)
    values = ((x - sigma * z) * scale).astype(np.float32)
    crow = np.searchsorted(snp, np.arange(n_snps + 1)).astype(np.int64)
    return snp.astype(np.int32), sample.astype(np.int32), values, crow


@_jit_serial
def _philox_block(c0: np.uint64, c1: np.uint64, c2: np.uint64, c3: np.uint64, k0: np.uint64,
                  k1: np.uint64) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(4, np.uint32)
    out[0], out[1], out[2], out[3] = _philox_words(c0, c1, c2, c3, k0, k1)
    return out


def philox4x32(counter: tuple[int, int, int, int], key: tuple[int, int]) -> np.ndarray:
    """One block of the compiled Philox4x32-10: four uint32 words for 32-bit ``counter`` and ``key`` words
    (Random123's ``philox4x32_R(10, counter, key)``; its known-answer vectors test it)."""
    c = [np.uint64(v & 0xFFFFFFFF) for v in (*counter, *key)]
    return _philox_block(*c)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of :func:`draw_batch` on a tiny input."""
    x, rows = np.zeros(4, np.int8), np.zeros(2, np.int64)
    draw_batch(1, x, 2, rows, 0.5, 1.0, 2.0)
    draw_batch(1, x, 2, rows, 0.5, 0.0, 2.0, _capacity=1)
    philox4x32((0, 0, 0, 0), (0, 0))
