"""Corroboration as a case-level job: load a statements file (or take the case's indicated
places), test each statement against the case's evidence with
:func:`routetrace.routes.corroborate.corroborate`, store the verdicts and write the CSVs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..case import open_case, writes_case
from ..errors import CaseError
from ..loaders import load
from ..routes.corroborate import CorroborationResult, corroborate

__all__ = ["corroborate_case", "write_corroboration"]


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return ""
    if isinstance(v, pd.Timestamp):
        return str(v.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(v, pd.Timedelta):
        return str(int(v.total_seconds()))
    if isinstance(v, float):
        return f"{v:.7f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    s = str(v)
    # spreadsheet formula injection: text from evidence must stay inert when opened
    return "'" + s if s.startswith(_FORMULA) else s


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([c if c != "time_diff" and c != "nearest_time_diff" else f"{c}_s" for c in df.columns])
        for row in df.itertuples(index=False):
            w.writerow([_cell(v) for v in row])
    return path


def write_corroboration(result: CorroborationResult, out: str | Path) -> list[Path]:
    """Write ``corroboration.csv``, ``corroboration_evidence.csv``, ``corroboration_sequence.csv``
    and ``corroboration_params.json`` under folder ``out``; return their paths.

    Times are UTC (``...Z``), durations in seconds (``*_s``). Cells that a spreadsheet would
    run as a formula (starting with ``= + - @``) are prefixed with ``'``.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    v = result.verdicts.sort_values(["statement_id", "subject_id"], kind="mergesort")
    e = result.evidence.sort_values(["corroboration_id", "role", "distance_m", "evidence_id"],
                                    kind="mergesort")
    s = result.sequence.sort_values(["person_id", "subject_id", "check", "position", "statement_id"],
                                    kind="mergesort")
    paths = [_write_csv(v, folder / "corroboration.csv"),
             _write_csv(e, folder / "corroboration_evidence.csv"),
             _write_csv(s, folder / "corroboration_sequence.csv")]
    p = folder / "corroboration_params.json"
    p.write_text(json.dumps(result.params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return [*paths, p]


@writes_case  # holds the case lock while it reads, computes and stores
def corroborate_case(
    case_root: str | Path,
    statements: str | Path | None = None,
    *,
    tz: str | None = None,
    options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    **params: Any,
) -> CorroborationResult:
    """``routetrace corroborate CASE [statements.yaml]``: load the statements, test them, store.

    Reads the case's ``fixes`` (and ``stops``/``gaps`` when the stops stage has stored
    them), loads ``statements`` with its loader (``tz`` and ``options`` as for ingest) or,
    when ``statements`` is ``None``, takes the ``indicated`` places already ingested into
    the case, runs :func:`corroborate` with ``params``, and stores the tables ``statements`` (the
    indicated places, a map layer), ``corroboration``, ``corroboration_evidence`` and
    ``corroboration_sequence`` in the case, the parameters in the manifest, and the CSVs
    under ``out`` (default ``CASE/corroboration``).
    """
    case = open_case(case_root)
    kinds = tuple(params.get("kinds", ("indicated",)))
    if statements is not None:
        res_st = load(statements, tz=tz, options=options)
        places, origin = res_st.places, {"statements": str(statements),
                                         "statements_sha256": res_st.source_id}
    else:
        allp = case.table("places")
        places = allp[allp["kind"].astype(str).isin(kinds)].reset_index(drop=True)
        origin = {"statements": "indicated places of the case"}
        if not len(places):
            raise CaseError("the case has no indicated places: ingest a statements file or "
                            "pass one (routetrace corroborate CASE statements.yaml)",
                            path=str(case_root))
    names = set(case.table_names())
    stops = case.table("stops") if "stops" in names else None
    gaps = case.table("gaps") if "gaps" in names else None
    res = corroborate(places, case.table("fixes"), stops=stops, gaps=gaps, **params)
    case.write_table("statements", places)
    case.write_table("corroboration", res.verdicts)
    case.write_table("corroboration_evidence", res.evidence)
    case.write_table("corroboration_sequence", res.sequence)
    case.set_parameters("corroborate", {**res.params, **origin})
    write_corroboration(res, out if out is not None else case.root / "corroboration")
    return res
