"""The one CSV writer: every CSV any routetrace command writes goes through :func:`write_csv`.

A CSV is opened by an analyst in a spreadsheet, and the text in it came from seized
devices. A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel, LibreOffice and Google Sheets (``=HYPERLINK("http://x","y")``
becomes a live link; DDE payloads run programs). So every *text* cell that starts with one
of those characters is written with a leading apostrophe (``'=HYPERLINK(...)``), which the
spreadsheets show as the text itself and do not evaluate (OWASP "CSV injection"). Numbers
are numbers: a negative longitude stays ``-0.5``. Column names get the same treatment.

Types are written one way everywhere:

* times (``datetime64`` with a zone) as ISO 8601 UTC with ``Z``, with as many fraction
  digits as the column needs (0, 3, 6 or 9), so nothing is rounded away;
* durations (``timedelta64``) as seconds, the column renamed ``NAME_s`` (``dwell`` ->
  ``dwell_s``), never pandas' ``0 days 00:01:00``;
* missing values as an empty cell; rows end with ``\\n``; UTF-8 without BOM.

This module is core: it imports nothing from loaders, routes or maps.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ExportError

__all__ = ["FORMULA_START", "formula_safe", "iso_utc", "write_csv"]

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _safe_text(s: str) -> str:
    return "'" + s if s.startswith(FORMULA_START) else s


def iso_utc(col: pd.Series) -> pd.Series:
    """ISO 8601 UTC text (``...Z``) with the fraction digits the column needs (0, 3, 6 or
    9, the same for every row); NaT is missing (``None``).

    Parameters
    ----------
    col : pandas.Series
        Aware times (``datetime64[ns, UTC]``).

    Returns
    -------
    pandas.Series
        Text (object dtype), ``None`` where the time is missing.

    Example
    -------
    >>> iso_utc(pd.Series(pd.to_datetime(["2025-01-01T10:00:00.5Z", None], utc=True))).tolist()
    ['2025-01-01T10:00:00.500Z', None]
    """
    t = col.dt.tz_convert("UTC")
    ns = pd.DatetimeIndex(t).as_unit("ns").asi8
    valid = t.notna().to_numpy()
    frac = ns[valid] % 1_000_000_000
    digits = next((d for d, unit in ((0, 10**9), (3, 10**6), (6, 10**3)) if (frac % unit == 0).all()), 9)
    body = t.dt.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        fr = pd.Series(ns % 1_000_000_000 // 10 ** (9 - digits), index=col.index)
        body = body + "." + fr.astype(str).str.zfill(digits)
    text = (body + "Z").tolist()
    return pd.Series([x if ok else None for x, ok in zip(text, valid, strict=True)], index=col.index,
                     dtype=object)


def _plain_column(name: str, col: pd.Series) -> tuple[str, pd.Series]:
    """(column name, values as written) for one column."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return name, iso_utc(col)
    if pd.api.types.is_datetime64_dtype(col.dtype):  # naive: written as is, no zone invented
        return name, col.map(lambda v: v.isoformat(), na_action="ignore").astype(object)
    if pd.api.types.is_timedelta64_dtype(col.dtype):
        return f"{name}_s", col.dt.total_seconds()
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return name, col
    return name, col.map(_cell, na_action="ignore").astype(object)


def _cell(v: Any) -> Any:
    """One value of a text or mixed column."""
    if isinstance(v, str):
        return _safe_text(v)
    if isinstance(v, pd.Timestamp):
        return v.tz_convert("UTC").isoformat().replace("+00:00", "Z") if v.tzinfo else v.isoformat()
    if isinstance(v, pd.Timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return _safe_text(v.hex())
    if isinstance(v, (bool, int, float, np.number, np.bool_)):
        return v
    return _safe_text(str(v))


def formula_safe(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as :func:`write_csv` writes it: typed columns made text/seconds, risky text
    cells prefixed with ``'``, duration columns renamed ``NAME_s``.

    Parameters
    ----------
    df
        Any table. It is not changed.

    Returns
    -------
    pandas.DataFrame
        A new table whose text cells are inert in a spreadsheet.

    Raises
    ------
    ExportError
        When renaming a duration column would clash with a column already there
        (``dwell`` beside ``dwell_s``).

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["=1+1", "-2", "ok"], "lon": [-0.5, 3.0, 4.0],
    ...                   "dwell": pd.to_timedelta([60, 90, 0], unit="s")})
    >>> formula_safe(t).to_dict("list")
    {'name': ["'=1+1", "'-2", 'ok'], 'lon': [-0.5, 3.0, 4.0], 'dwell_s': [60.0, 90.0, 0.0]}
    """
    cols: dict[str, pd.Series] = {}
    for name in df.columns:
        new, values = _plain_column(str(name), df[name])
        new = _safe_text(new)
        if new in cols or (new != str(name) and new in {str(c) for c in df.columns}):
            raise ExportError(f"CSV column {new!r} would be written twice (a duration column "
                              f"{name!r} is written in seconds as {new!r})")
        cols[new] = values.reset_index(drop=True)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(df)))


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to ``path`` as a formula-safe CSV (see the module notes) and return the path.

    Parameters
    ----------
    df
        The table; its index is not written.
    path
        The file to write (replaced if it exists).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ExportError
        The file cannot be written, or two columns would get one name.

    Examples
    --------
    >>> import tempfile
    >>> p = write_csv(pd.DataFrame({"subject_id": ["@SUM(A1)"], "t": [pd.Timestamp(0, tz="UTC")]}),
    ...               Path(tempfile.mkdtemp()) / "x.csv")
    >>> p.read_text()
    "subject_id,t\\n'@SUM(A1),1970-01-01T00:00:00Z\\n"
    """
    p = Path(path)
    out = formula_safe(df)
    try:
        if _has_cr(out):
            _write_quoting_cr(out, p)
        else:
            out.to_csv(p, index=False, lineterminator="\n", encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    except OSError as exc:
        raise ExportError(f"cannot write CSV: {exc}", path=str(p)) from exc
    return p


def _has_cr(df: pd.DataFrame) -> bool:
    """Whether a text cell or a column name holds a carriage return."""
    if any("\r" in str(c) for c in df.columns):
        return True
    return any(df[c].map(lambda v: isinstance(v, str) and "\r" in v).any()
               for c in df.columns if df[c].dtype == object)


def _field(v: Any) -> str:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return ""
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if _NEEDS_QUOTES.search(s) else s


def _write_quoting_cr(df: pd.DataFrame, p: Path) -> None:
    """The same CSV, written row by row, for a table with a carriage return in a cell.

    Python's csv writer (under pandas) quotes a field for the characters of the line
    terminator only: with ``\n`` rows, a bare ``\r`` inside a cell was written unquoted, and
    spreadsheets and csv readers start a new row there, so device text ``x\r=HYPERLINK(..)``
    would forge a row that starts with a formula. Here every field holding ``, " \r \n`` is
    quoted.
    """
    with open(p, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(_field(c) for c in df.columns) + "\n")
        for row in df.itertuples(index=False, name=None):
            fh.write(",".join(_field(v) for v in row) + "\n")
