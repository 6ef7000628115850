"""The k heaviest entries of a sparse row, written into a table row (the streamed tables' rewrite)."""

from __future__ import annotations

import numpy as np


def top_into(out: np.ndarray, position: int, cols: np.ndarray, weights: np.ndarray, k: int) -> None:
    """out[0, position] / out[1, position] := the k heaviest (col, weight), heaviest first (rest PAD / 0)."""
    if cols.size == 0:
        return
    if cols.size > k:
        chosen = np.argpartition(-weights, k - 1)[:k]
        cols, weights = cols[chosen], weights[chosen]
    order = np.lexsort((cols, -weights))
    out[0, position, : order.size] = cols[order]
    out[1, position, : order.size] = weights[order]
