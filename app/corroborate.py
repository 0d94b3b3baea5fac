"""Corroboration as a case-level job: load a statements file (or take the case's indicated
places), test each statement against the case's evidence with
:func:`routetrace.routes.corroborate.corroborate_statements`, store the verdicts and write the CSVs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..case import open_case, writes_case
from ..csvout import write_csv
from ..errors import CaseError
from ..loaders import load
from ..routes.corroborate import CorroborationResult, corroborate_statements

__all__ = ["corroborate_case", "write_corroboration"]


def write_corroboration(result: CorroborationResult, out: str | Path) -> list[Path]:
    """Write ``corroboration.csv``, ``corroboration_evidence.csv``, ``corroboration_sequence.csv``
    and ``corroboration_params.json`` under folder ``out``; return their paths.

    Written by :func:`routetrace.csvout.write_csv`: times UTC (``...Z``), durations in seconds
    (``*_s``), text cells that a spreadsheet would run as a formula prefixed with ``'``.

    Parameters
    ----------
    result : CorroborationResult
        The result of :func:`routetrace.routes.corroborate.corroborate_statements`.
    out : str or pathlib.Path
        The folder to write into (created when missing; files there are replaced).

    Returns
    -------
    list of pathlib.Path
        The four files written, in the order above.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> _ = (d / "st.yaml").write_text(
    ...     'routetrace: statements/1\\nstatements:\\n- {statement_id: S1, person_id: V1, role: victim, '
    ...     'hearing_date: "2025-11-03", text: "we stopped", place: "51.0,3.87", '
    ...     't_start: "2025-10-26T21:00Z", t_end: "2025-10-26T21:10Z", uncertainty_m: 100}\\n')
    >>> result = corroborate_case(d / "case", d / "st.yaml")
    >>> [p.name for p in write_corroboration(result, d / "out")]
    ['corroboration.csv', 'corroboration_evidence.csv', 'corroboration_sequence.csv', 'corroboration_params.json']
    >>> tmp.cleanup()
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    v = result.verdicts.sort_values(["statement_id", "subject_id"], kind="mergesort")
    e = result.evidence.sort_values(["corroboration_id", "role", "distance_m", "evidence_id"],
                                    kind="mergesort")
    s = result.sequence.sort_values(["person_id", "subject_id", "check", "position", "statement_id"],
                                    kind="mergesort")
    paths = [write_csv(v, folder / "corroboration.csv"),
             write_csv(e, folder / "corroboration_evidence.csv"),
             write_csv(s, folder / "corroboration_sequence.csv")]
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
    the case, runs :func:`corroborate_statements` with ``params``, and stores the tables ``statements`` (the
    indicated places, a map layer), ``corroboration``, ``corroboration_evidence`` and
    ``corroboration_sequence`` in the case, the parameters in the manifest, and the CSVs
    under ``out`` (default ``CASE/corroboration``).

    Parameters
    ----------
    case_root : str or pathlib.Path
        The case folder.
    statements : str or pathlib.Path, optional
        A statements file (any format a statements loader reads); default None: the
        ``indicated`` places already in the case.
    tz : str, optional
        IANA zone for statement times written without an offset (as for ingest).
    options : mapping, optional
        Loader options (as for ingest).
    out : str or pathlib.Path, optional
        Folder for the CSVs; default ``CASE/corroboration``.
    **params
        Keyword parameters of :func:`routetrace.routes.corroborate.corroborate_statements` (its
        defaults apply to any not given).

    Returns
    -------
    CorroborationResult
        The verdicts, evidence, sequence check and parameters, as stored.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> _ = (d / "st.yaml").write_text(
    ...     'routetrace: statements/1\\nstatements:\\n- {statement_id: S1, person_id: V1, role: victim, '
    ...     'hearing_date: "2025-11-03", text: "we stopped", place: "51.0,3.87", '
    ...     't_start: "2025-10-26T21:00Z", t_end: "2025-10-26T21:10Z", uncertainty_m: 100}\\n')
    >>> result = corroborate_case(d / "case", d / "st.yaml")
    >>> result.verdicts[["statement_id", "subject_id", "verdict"]].values.tolist()
    [['S1', 'lorry', 'supported'], ['S1', 'phone', 'supported']]
    >>> tmp.cleanup()
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
    res = corroborate_statements(places, case.table("fixes"), stops=stops, gaps=gaps, **params)
    case.write_table("statements", places)
    case.write_table("corroboration", res.verdicts)
    case.write_table("corroboration_evidence", res.evidence)
    case.write_table("corroboration_sequence", res.sequence)
    case.set_parameters("corroborate", {**res.params, **origin})
    write_corroboration(res, out if out is not None else case.root / "corroboration")
    return res
