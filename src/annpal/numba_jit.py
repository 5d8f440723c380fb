"""How annpal compiles its numba kernels (:mod:`annpal.counter_rng`, :mod:`annpal.fused_input`).

* cached on disk where numba finds a writable place: ``$NUMBA_CACHE_DIR``, next to the package, then the
  user's cache folder (``~/.cache/numba``); where none is writable (a read-only container without a home)
  the kernels compile in memory in every process instead of failing;
* ``error_model="numpy"``: a float division does not test its divisor for zero (Python's error model
  would, and the test keeps LLVM from vectorising the loops); no divisor in these kernels can be zero;
* ``nogil``: the kernels release the GIL;
* the ``workqueue`` threading layer unless ``NUMBA_THREADING_LAYER`` says otherwise: numba's OpenMP
  threads spin after each parallel region, taking the cores from torch's own OpenMP pool (a second copy
  of libgomp) in the operations between; the workqueue pool sleeps instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"


def jit(*, parallel: bool = True, **options: Any) -> Callable[[Any], Any]:
    """A decorator: ``numba.njit`` with annpal's options (module notes) plus ``options``.

    Parameters
    ----------
    parallel
        Compile ``prange`` loops to run on numba's threads (``numba.set_num_threads``).
    **options
        More ``numba.njit`` options (e.g. ``fastmath``, ``inline``).
    """
    settings = {"parallel": parallel, "nogil": True, "error_model": "numpy", **options}

    def decorate(func: Any) -> Any:
        try:
            return numba.njit(cache=True, **settings)(func)
        except RuntimeError:  # "cannot cache function …: no locator available"
            return numba.njit(cache=False, **settings)(func)

    return decorate


__all__ = ["jit"]
