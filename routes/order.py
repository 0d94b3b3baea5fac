"""The order every stage reads a ``fixes`` table in: subject, time, then fix id."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema


def sort_fixes(fixes: pd.DataFrame) -> pd.DataFrame:
    """A ``fixes`` table in the order every stage reads it: by subject, then time, then (for
    equal times of one subject) ``fix_id``. The ids are derived only when such ties exist, so
    the usual table is sorted on its two columns alone.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table; not modified.

    Returns
    -------
    pandas.DataFrame
        The rows reordered (a stable sort), with their index.

    Example
    -------
    >>> from .. import schema
    >>> f = schema.coerce(pd.DataFrame({"subject_id": "lorry", "t_utc": pd.to_datetime(
    ...     ["2025-10-26T21:01Z", "2025-10-26T21:00Z", "2025-10-26T21:00Z"]), "lat": 51.0,
    ...     "lon": 3.87, "fix_kind": "gps", "source_id": ["b" * 64, "b" * 64, "a" * 64],
    ...     "record": ["line 2", "line 3", "line 9"]}), "fixes")
    >>> sort_fixes(f).index.tolist()
    [2, 1, 0]
    """
    f = fixes.sort_values(["subject_id", "t_utc"], kind="mergesort")
    if len(f) < 2:
        return f
    codes = pd.factorize(f["subject_id"], use_na_sentinel=False)[0]
    t = f["t_utc"].to_numpy(dtype="datetime64[ns]").view("int64")
    if not np.any((codes[1:] == codes[:-1]) & (t[1:] == t[:-1])):
        return f
    keyed = f.reset_index(drop=True).assign(**{"fix_id": schema.fix_ids(f).to_numpy()})
    return f.iloc[keyed.sort_values(["subject_id", "t_utc", "fix_id"], kind="mergesort").index]
