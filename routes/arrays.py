"""Small numpy helpers shared by the stages (no geography, no tables)."""

from __future__ import annotations

import numpy as np

__all__ = ["expand_ranges"]


def expand_ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(starts[k], ends[k])`` and the index k of each element.

    Empty or reversed ranges contribute nothing.

    Parameters
    ----------
    starts, ends : numpy.ndarray
        Integer arrays of equal length: range ``k`` is ``starts[k]`` (included) to
        ``ends[k]`` (excluded), as in :func:`numpy.arange`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(positions, k)``: every position of every range, in range order, and for each
        position the index of the range it came from (both int64, same length).

    Example
    -------
    >>> pos, k = expand_ranges(np.array([2, 7]), np.array([4, 8]))
    >>> pos.tolist(), k.tolist()
    ([2, 3, 7], [0, 0, 1])
    """
    lengths = np.maximum(ends - starts, 0)
    k = np.repeat(np.arange(len(starts)), lengths)
    if not len(k):
        return np.zeros(0, dtype=np.int64), k
    offsets = np.cumsum(lengths) - lengths
    return np.arange(len(k)) - offsets[k] + starts[k], k
