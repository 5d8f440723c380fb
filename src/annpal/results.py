"""One owner for every artifact passed between pipeline steps (work in progress: see issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Spellings of a true flag accepted in a TSV column (pandas writes ``True``; older files ``1``).
_TRUE_TEXT = ("true", "1", "1.0", "yes")


def as_bool(values: pd.Series) -> np.ndarray:
    """A flag column of a TSV as a bool array (``True``/``true``/``1``/``yes`` are true, the rest false)."""
    if values.dtype == bool:
        return values.to_numpy()
    return values.astype(str).str.strip().str.lower().isin(_TRUE_TEXT).to_numpy()
