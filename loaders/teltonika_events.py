"""Teltonika loader: events from IO elements (value, edge and derived events).

Rules (what becomes an event, thresholds, flags) are documented in the module docstring of
:mod:`routetrace.loaders.teltonika`; this module computes them per subject in time order,
vectorised over the long IO table built by :mod:`routetrace.loaders.teltonika_tables`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from .base import compact_json

if TYPE_CHECKING:
    from .teltonika_tables import IoCols

__all__ = ["DICTIONARY_COLUMNS", "RecInfo", "alarm_events", "cell_events", "concat_events", "dictionary_take",
           "decode_identifier", "dictionary", "hdop_h_acc", "identifier_events", "io_event_frames",
           "io_events", "join_text"]


def str_take(labels: np.ndarray, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a pandas ``string`` array, taken in Arrow (``labels``: a few
    Python strings or None; a code < 0 is missing): no Python string per row."""
    lab = pa.array([None if x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x))
                    else str(x) for x in labels], type=pa.large_string())
    codes = np.asarray(codes, dtype=np.int64)
    out: pd.api.extensions.ExtensionArray = pd.StringDtype().__from_arrow__(
        lab.take(pa.array(codes, mask=codes < 0)))
    return out


def join_text(*parts: Any) -> pd.Series:
    """Concatenate texts element-wise in one Arrow pass (no intermediate column per ``+``):
    each part is a ``str`` (the same for every row), an integer array (written in decimal)
    or a string array; a missing value in any part makes the row missing, as ``+`` does.

    Parameters
    ----------
    *parts
        The pieces of each row's text, in order (arrays of one length).

    Returns
    -------
    pandas.Series
        The joined texts (``string`` dtype, Arrow-backed).

    Example
    -------
    >>> join_text("IO ", np.array([239, 16]), " = ", pd.array(["on", None], dtype="string")).tolist()
    ['IO 239 = on', <NA>]
    """
    arrays: list[Any] = []
    for p in parts:
        if isinstance(p, str):
            arrays.append(pa.scalar(p, pa.large_string()))
        elif isinstance(p, np.ndarray) and p.dtype.kind in "iu":
            arrays.append(pa.array(p).cast(pa.large_string()))
        elif isinstance(p, np.ndarray) and p.dtype.kind == "U":
            arrays.append(pa.array(p, type=pa.large_string()))
        elif isinstance(p, pa.Array) and p.type == pa.large_string():
            arrays.append(p)
        else:
            arrays.append(pa.array(pd.array(p, dtype="string"), type=pa.large_string()))
    joined = pc.binary_join_element_wise(*arrays, pa.scalar("", pa.large_string()))
    return pd.Series(pd.StringDtype().__from_arrow__(joined), dtype="string")


_TRUE_FALSE = pa.array(["false", "true"], type=pa.large_string())


def _decimal(a: np.ndarray) -> pa.Array:
    """Integers written in decimal, as Arrow text (to be joined more than once)."""
    return pa.array(a).cast(pa.large_string())


def _edge_codes(profs: list[dict[str, Any]], pk: np.ndarray, raw: np.ndarray,
                names: list[str]) -> np.ndarray:
    """Per row, the edge kind its raw value enters (index into ``names``, which is filled in
    the map's order), -1 for none: the rows of each IO with ``edges`` are found once.

    >>> prof = {"io": {239: {"edges": {"1": "ignition_on", "0": "ignition_off"}}}}
    >>> names = []
    >>> _edge_codes([prof], np.array([239, 16, 239]), np.array([1, 1, 0]), names).tolist(), names
    ([0, -1, 1], ['ignition_on', 'ignition_off'])
    """
    code = np.full(len(pk), -1, dtype=np.int16)  # a few edge kinds
    for pi, p in enumerate(profs):
        for io_num, e in p["io"].items():
            edges = e.get("edges") or {}
            for k in edges.values():
                if k not in names:
                    names.append(k)
            if not edges:
                continue
            rows = np.flatnonzero(pk == pi * 65536 + io_num)
            vals = raw[rows]
            for rv, k in edges.items():
                code[rows[vals == int(rv)]] = names.index(k)
    return code


def _matrix_columns(sel: np.ndarray, rec: np.ndarray, iid: np.ndarray, t_ns: np.ndarray,
                    subj_codes: np.ndarray, prof_of_rec: np.ndarray) -> tuple[int, np.ndarray] | None:
    """``(k, columns)`` when the IO rows are a matrix of ``k`` per record, one subject sending
    one IO layout in time order, with the same columns selected in every record (checked,
    not assumed): each selected column is then one series in time order, and the event
    order is the transpose. Else None.

    >>> _matrix_columns(np.array([True, False, True, False]), np.array([0, 0, 1, 1]),
    ...                 np.array([16, 239, 16, 239]), np.array([5, 9]),
    ...                 np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.int64))
    (2, array([0]))
    """
    n = len(t_ns)
    if not (n and _in_time_order(t_ns, subj_codes) and (subj_codes == subj_codes[0]).all()
            and (prof_of_rec == prof_of_rec[0]).all()):
        return None
    k = _layout_width(rec, iid)
    if not k or not bool((sel.reshape(-1, k) == sel[:k]).all()):
        return None
    return k, np.flatnonzero(sel[:k]).astype(np.int64)


def _selected_order(sel: np.ndarray, rec: np.ndarray, iid: np.ndarray, t_ns: np.ndarray,
                    subj_codes: np.ndarray, prof_of_rec: np.ndarray) -> np.ndarray:
    """The IO rows ``sel`` in event order (:func:`_event_order`), by a sort; when every row
    is selected, without a row list or filtered copies. (Rows that form a matrix,
    :func:`_matrix_columns`, need no sort: :func:`io_events` takes them column by column.)

    >>> _selected_order(np.array([True, False, True]), np.array([0, 0, 1]),
    ...                 np.array([16, 2, 16]), np.array([5, 9]), np.zeros(2, dtype=np.int32),
    ...                 np.zeros(2, dtype=np.int64)).tolist()
    [0, 2]
    """
    if sel.all():
        return _event_order(rec, iid, t_ns, subj_codes, prof_of_rec)
    rows = np.flatnonzero(sel)
    out: np.ndarray = rows[_event_order(rec[rows], iid[rows], t_ns, subj_codes, prof_of_rec)]
    return out


def _in_time_order(t_ns: np.ndarray, subj_codes: np.ndarray) -> bool:
    """Whether records are already in (subject, time) order, so that ranking them by
    (subject, time, record) is the identity (the usual capture of one device).

    >>> _in_time_order(np.array([5, 5, 9]), np.zeros(3, dtype=np.int32))
    True
    >>> _in_time_order(np.array([5, 9, 1]), np.array([0, 0, 1])), _in_time_order(
    ...     np.array([5, 1]), np.zeros(2, dtype=np.int32))
    (True, False)
    """
    up = subj_codes[1:] > subj_codes[:-1]
    tie = subj_codes[1:] == subj_codes[:-1]
    return bool(np.all(up | (tie & (t_ns[1:] >= t_ns[:-1]))))


def _layout_width(rec: np.ndarray, iid: np.ndarray) -> int:
    """``k`` when the IO rows (sorted by record, then id) are ``k`` rows per record with
    the same ids, each once, in every record; else 0.

    >>> _layout_width(np.array([0, 0, 2, 2]), np.array([16, 239, 16, 239]))
    2
    >>> _layout_width(np.array([0, 0, 2, 2]), np.array([16, 16, 16, 16]))
    0
    """
    if not len(rec):
        return 0
    k = int(np.searchsorted(rec, rec[0], side="right"))
    m = len(rec) // k
    if m * k != len(rec) or not bool(np.all(iid[1:k] > iid[:k - 1])):
        return 0
    per_rec = rec.reshape(m, k)
    first = per_rec[:, 0]
    if not (bool(np.all(first[1:] > first[:-1])) and bool((per_rec == first[:, None]).all())):
        return 0
    return k if bool((iid.reshape(m, k) == iid[:k]).all()) else 0


def _event_order(rec: np.ndarray, iid: np.ndarray, t_ns: np.ndarray, subj_codes: np.ndarray,
                 prof_of_rec: np.ndarray) -> np.ndarray:
    """The permutation of ``np.lexsort((rec, t_ns[rec], prof * 65536 + iid, subj[rec]))``,
    computed as one stable sort of a single integer key: records are ranked by (subject,
    time, record) first (one row per record, not per IO element), then the key is (subject,
    IO key, rank). Rows with equal keys (one IO id twice in a record) keep their order.

    When each subject's records are already in time order (the usual capture), rows (in
    record order) are in rank order within a subject: the key is then only (subject, IO
    key), a small integer sorted in linear time, with no per-row rank (memory).

    >>> _event_order(np.array([0, 0, 1, 1]), np.array([239, 16, 239, 16]), np.array([5, 9]),
    ...              np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.int64)).tolist()
    [1, 3, 0, 2]
    """
    n = len(t_ns)
    if _in_time_order(t_ns, subj_codes):
        by_rank = np.arange(n)  # what the lexsort gives, without sorting
    else:
        by_rank = np.lexsort((np.arange(n), t_ns, subj_codes))
    pk = prof_of_rec.astype(np.int32)[rec]
    pk *= 65536
    pk += iid
    present = np.bincount(pk) > 0  # IO keys are < 65536 per profile: a lookup, not a sort
    dense = (np.cumsum(present) - 1).astype(np.int32)
    n_keys = int(present.sum())
    kept_order = subj_codes[by_rank[1:]] == subj_codes[by_rank[:-1]]
    if bool(np.all(by_rank[1:][kept_order] > by_rank[:-1][kept_order])):
        groups = (int(subj_codes.max()) + 1 if n else 1) * n_keys
        small = subj_codes[rec].astype(np.int16 if groups < 32_768 else np.int64)
        small *= n_keys
        small += dense[pk]
        del pk
        return np.argsort(small, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_rank] = np.arange(n, dtype=np.int64)
    key = subj_codes[rec].astype(np.int64)  # built in place: one int64 array of IO length
    key *= n_keys
    key += dense[pk]
    del pk
    key *= n
    key += rank[rec]
    return np.argsort(key, kind="stable")


def _io_key(iid: np.ndarray, prof_of_rec: np.ndarray, rec: np.ndarray, fmb: np.ndarray) -> np.ndarray:
    """IO key of each row: ``profile * 65536 + id`` (int32); the ids themselves, not a
    copy, when every row is of the main profile (``fmb``).

    >>> _io_key(np.array([239, 16], dtype=np.int32), np.array([0, 1]), np.array([0, 1]),
    ...         np.array([True, False])).tolist()
    [239, 65552]
    """
    if fmb.all():
        return iid
    pk: np.ndarray = prof_of_rec.astype(np.int32)[rec]
    pk *= 65536
    pk += iid
    return pk


def _in_subjects(s: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Rows whose subject code (``s``) is one of ``chosen``: a lookup table over the codes
    (linear), ``np.isin`` if a code is missing (-1).

    >>> _in_subjects(np.array([0, 1, 2, 1]), np.array([1, 1])).tolist()
    [False, True, False, True]
    """
    if len(s) and int(s.min()) >= 0:
        hit = np.zeros(int(s.max()) + 1, dtype=bool)
        hit[chosen] = True
        out: np.ndarray = hit[s]
        return out
    return np.isin(s, np.unique(chosen))


def _value_changed(same: np.ndarray, raw: np.ndarray, val: np.ndarray, u: np.ndarray,
                   step_u: np.ndarray) -> np.ndarray:
    """Rows (in event order) that give a value event: a series' first row (``~same``), or
    its value differs from the row before; for entries with a ``step``, when
    ``floor(value / step)`` differs (the value moved into another multiple of the step).

    Other rows compare their raw integers as float64, as the events always have: where
    every raw value is within +-2**53 that is the integer comparison (no float copy of
    the column). Only the stepped rows are divided.

    >>> same = np.array([False, True, True, False, True])
    >>> raw = np.array([1, 1, 2, 1500, 1900])
    >>> _value_changed(same, raw, raw.astype(float), np.array([0, 0, 0, 1, 1]),
    ...                np.array([np.nan, 1000.0])).tolist()
    [True, False, True, True, False]
    """
    changed = ~same
    if len(raw) and max(-int(raw.min()), int(raw.max())) <= 2**53:
        changed[1:] |= raw[1:] != raw[:-1]
    else:
        changed[1:] |= raw[1:].astype(np.float64) != raw[:-1].astype(np.float64)
    stepped = np.flatnonzero(~np.isnan(step_u)[u])
    if len(stepped):
        with np.errstate(invalid="ignore"):
            q = np.floor(val[stepped] / step_u[u[stepped]])
        # a stepped row with `same` follows a row of its series (one entry: stepped too),
        # which is the stepped row just before it
        k = np.flatnonzero(same[stepped[1:]]) + 1
        changed[stepped[k]] = q[k] != q[k - 1]
    return changed


#: The events columns built dictionary-encoded (:data:`routetrace.schema.DICTIONARY`): 1e6
#: event rows hold a byte each, not a text each, and ``LoadContext.finish`` encodes nothing.
DICTIONARY_COLUMNS = ("subject_id", "kind", "unit", "flags")


def dictionary(values: Any, n: int) -> pd.Categorical:
    """An events text column in the dictionary form of :data:`routetrace.schema.DICTIONARY`.

    Parameters
    ----------
    values
        One text for every row, or a column of texts (array or categorical; None missing).
    n
        Number of rows (used when ``values`` is one text).

    Returns
    -------
    pandas.Categorical
        The texts, ``string`` categories in lexical order (what ``schema.coerce`` makes).

    Example
    -------
    >>> dictionary("refuel", 2).tolist(), dictionary(np.array(["b", "a", "b"], dtype=object), 3).categories.tolist()
    (['refuel', 'refuel'], ['a', 'b'])
    """
    if isinstance(values, str):
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                         dtype=pd.CategoricalDtype(pd.Index([values], dtype="string")))
    out: pd.Categorical = schema.as_dictionary(pd.Series(values)).array
    return out


def dictionary_take(labels: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """``labels[codes]`` in the dictionary form of :func:`dictionary`, encoded from the
    labels alone: no text is built per row.

    Parameters
    ----------
    labels
        A few texts (object array; None missing), e.g. the event kind of each IO map entry.
    codes
        Integer index into ``labels`` of each row; a code < 0 is missing (as in
        :func:`str_take`).

    Returns
    -------
    pandas.Categorical
        One entry per code (categories: the labels present, lexical order; unused labels
        stay categories until :func:`concat_events` drops them).

    Example
    -------
    >>> dictionary_take(np.array(["odometer", None, "ignition"], dtype=object), np.array([2, 0, 1, -1])).tolist()
    ['ignition', 'odometer', <NA>, <NA>]
    """
    return dictionary(labels, len(labels)).take(codes, allow_fill=True)


def _with_flag(flags: pd.Categorical, flag: str) -> pd.Categorical:
    """``flag`` added to every row of a dictionary-encoded flags column: to each category
    once (:func:`routetrace.schema.add_flag`), not to each row.

    >>> _with_flag(dictionary_take(np.array(["", "no_fix"], dtype=object), np.array([0, 1, 0])), "derived").tolist()
    ['derived', 'derived|no_fix', 'derived']
    """
    cats = pd.Series(flags.categories, dtype="string")
    labels = schema.add_flag(cats, np.ones(len(cats), dtype=bool), flag).to_numpy(dtype=object)
    return dictionary_take(labels, flags.codes)


def concat_events(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Event frames as one table, in one copy of the rows.

    Parameters
    ----------
    frames
        Event frames with ``t_utc`` as int64 ns (:func:`io_event_frames`, the alarm,
        identifier and cell events); at least one.

    Returns
    -------
    pandas.DataFrame
        Their rows in order: the dictionary columns (:data:`DICTIONARY_COLUMNS`) keep that
        form over the union of the frames' categories (those no row uses dropped), and
        ``t_utc`` is UTC time.

    Example
    -------
    >>> a = _event_rows(RecInfo(t_ns=np.array([0]), subj=np.array(["x"], dtype=object),
    ...                         record=np.array(["r0"], dtype=object), event_io=np.array([0]),
    ...                         lat=np.array([51.0]), lon=np.array([4.0]),
    ...                         flag=np.array([""], dtype=object)), np.array([0]), "alarm", 1.0, ["t"], [{}])
    >>> t = concat_events([a, a.assign(kind="panic")])
    >>> t["kind"].tolist(), str(t["t_utc"].dtype)
    (['alarm', 'panic'], 'datetime64[ns, UTC]')
    """
    out = pd.concat(schema.union_dictionaries(frames, DICTIONARY_COLUMNS), ignore_index=True)
    for c in DICTIONARY_COLUMNS:
        out[c] = out[c].cat.remove_unused_categories()
    out["t_utc"] = pd.to_datetime(out["t_utc"].astype("int64"), unit="ns", utc=True)
    return out


def io_events(**columns: Any) -> pd.DataFrame:
    """The events of :func:`io_event_frames` as one table.

    Parameters
    ----------
    **columns
        The keywords of :func:`io_event_frames` (the long IO table, the map entries, the
        per-record columns).

    Returns
    -------
    pandas.DataFrame
        :func:`concat_events` of its frames; an empty events table when there are none.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> ev = io_events(io_rec=io.rec, io_id=io.iid, io_raw=io.raw, io_value=io.value,
    ...                io_ent=io.ent, kind_u=mp.kind, units_u=mp.units, names_u=mp.names,
    ...                step_u=mp.step, io_bytes=io.is_bytes, t_ns=rc.t_ns, subj=rc.subj,
    ...                record=rc.record.to_numpy(), event_io=rc.event_io.astype(np.int64),
    ...                prof_of_rec=np.zeros(rc.n, dtype=np.int64), profs=[load_io_map()],
    ...                rec_lat=rc.lat, rec_lon=rc.lon, rec_flag=tt.record_flags(rc))
    >>> ev[["record", "kind", "value", "flags"]]
             record         kind  value    flags
    0  line 1/rec 0     ignition    0.0
    1  line 1/rec 1     ignition    1.0
    2  line 1/rec 1  ignition_on    1.0  derived
    """
    frames = io_event_frames(**columns)
    return concat_events(frames) if frames else schema.empty("events")


def io_event_frames(*, io_rec: np.ndarray, io_id: np.ndarray, io_raw: np.ndarray,
                    io_value: np.ndarray, io_ent: np.ndarray, kind_u: np.ndarray,
                    units_u: np.ndarray, names_u: np.ndarray, step_u: np.ndarray,
                    io_bytes: np.ndarray, t_ns: np.ndarray, subj: np.ndarray, record: np.ndarray,
                    event_io: np.ndarray, prof_of_rec: np.ndarray, profs: list[dict[str, Any]],
                    rec_lat: np.ndarray, rec_lon: np.ndarray,
                    rec_flag: np.ndarray) -> list[pd.DataFrame]:
    """Value events and derived events, per subject in time order (vectorised).

    Value events: a mapped value when first seen for the subject and whenever it changes
    (entries with a ``step``: when it moves into another multiple of the step). Derived
    events (flag ``derived``): ignition and door edges, refuel / fuel drop, odometer
    jumps, never on a subject's first reading (the state before it is unknown). See the
    module doc of :mod:`routetrace.loaders.teltonika` for the rules and thresholds.

    Parameters
    ----------
    io_rec, io_id, io_raw, io_value, io_ent, io_bytes
        The long IO table (:class:`~routetrace.loaders.teltonika_tables.IoCols`): record,
        IO id, raw and scaled value, map entry code, byte-string mask.
    kind_u, units_u, names_u, step_u
        Per map entry (:class:`~routetrace.loaders.teltonika_tables.MapCols`): event kind,
        unit, name and step (in the value's unit; NaN: every change).
    t_ns, subj, record, event_io
        Per record: time (ns since 1970, UTC), subject, locator, the IO that triggered it.
    prof_of_rec, profs
        Each record's profile index, and the profiles (door input, derived thresholds).
    rec_lat, rec_lon, rec_flag
        Per record: position (degrees, NaN without a fix) and flags for its events.

    Returns
    -------
    list of pandas.DataFrame
        Event rows (``record, subject_id, t_utc, kind, value, unit, text, lat, lon,
        flags, extra``), ``t_utc`` as int64 ns, the dictionary columns
        (:data:`DICTIONARY_COLUMNS`) dictionary-encoded; in event order, to be joined by
        :func:`concat_events` (with other events' frames: one copy of the rows, not two).

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> frames = io_event_frames(
    ...     io_rec=io.rec, io_id=io.iid, io_raw=io.raw, io_value=io.value, io_ent=io.ent,
    ...     kind_u=mp.kind, units_u=mp.units, names_u=mp.names, step_u=mp.step,
    ...     io_bytes=io.is_bytes, t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...     event_io=rc.event_io.astype(np.int64), prof_of_rec=np.zeros(rc.n, dtype=np.int64),
    ...     profs=[load_io_map()], rec_lat=rc.lat, rec_lon=rc.lon, rec_flag=tt.record_flags(rc))
    >>> [(f["kind"].tolist(), str(f["kind"].dtype)) for f in frames]
    [(['ignition', 'ignition'], 'category'), (['ignition_on'], 'category')]
    """
    sel = pd.notna(kind_u)[io_ent] & ~io_bytes
    if not sel.any():
        return []
    subj_codes, subj_u = pd.factorize(pd.Series(subj, dtype="object"))
    subj_codes = subj_codes.astype(np.int32)
    # subjects with a fuel level (%) series of the main profile: their litres series gives
    # no refuel / fuel drop (the % series does)
    main_prof = prof_of_rec == 0
    level_subjects = subj_codes[io_rec[sel & np.asarray(kind_u == "fuel_level", dtype=bool)[io_ent]
                                       & main_prof[io_rec]]]
    # the selected IO rows in event order (subject, IO id within profile, time, record), in
    # groups of whole series: one group of reordered copies, or, when the rows are a matrix
    # (one subject sending one IO layout in time order: the usual capture), one group per
    # selected column of it, copied when its turn comes (the ~10 rows of a record are never
    # all reordered at once: memory, and the page faults of fresh memory)
    arrays = (io_rec, io_id, io_raw, io_value, io_ent)
    mc = _matrix_columns(sel, io_rec, io_id, t_ns, subj_codes, prof_of_rec)

    def groups() -> Iterator[tuple[np.ndarray, ...]]:
        if mc is not None:
            k, cols = mc
            for c in cols.tolist():
                yield tuple(np.ascontiguousarray(a.reshape(-1, k)[:, c]) for a in arrays)
        else:
            order = _selected_order(sel, io_rec, io_id, t_ns, subj_codes, prof_of_rec)
            yield tuple(a[order] for a in arrays)

    subj_s = dictionary(np.asarray(subj_u, dtype=object), len(subj_u))  # entry i: subject i
    flag_codes, flag_u = pd.factorize(pd.Series(rec_flag, dtype="object"))
    flag_s = dictionary_take(np.asarray(flag_u, dtype=object), flag_codes)  # a byte per record
    stages: dict[str, list[pd.DataFrame]] = {}
    for g in groups():
        _series_events(*g, out=stages, level_subjects=level_subjects, kind_u=kind_u,
                       units_u=units_u, names_u=names_u, step_u=step_u, t_ns=t_ns,
                       subj_codes=subj_codes, subj_s=subj_s, flag_s=flag_s, record=record,
                       event_io=event_io, prof_of_rec=prof_of_rec, profs=profs,
                       rec_lat=rec_lat, rec_lon=rec_lon)
    # each stage's rows in event order (groups are in event order), stages in rule order
    return [f for fs in stages.values() for f in fs]


#: the order of :func:`_series_events`' stages in the events table (the rule order)
_STAGES = ("value", "edge", "fuel_level refuel", "fuel_level fuel_drop", "fuel_volume refuel",
           "fuel_volume fuel_drop", "odometer_jump")


def _series_events(rec: np.ndarray, iid: np.ndarray, raw: np.ndarray, val: np.ndarray,
                   u: np.ndarray, *, out: dict[str, list[pd.DataFrame]],
                   level_subjects: np.ndarray, kind_u: np.ndarray, units_u: np.ndarray,
                   names_u: np.ndarray, step_u: np.ndarray, t_ns: np.ndarray,
                   subj_codes: np.ndarray, subj_s: pd.Categorical,
                   flag_s: pd.Categorical, record: np.ndarray,
                   event_io: np.ndarray, prof_of_rec: np.ndarray, profs: list[dict[str, Any]],
                   rec_lat: np.ndarray, rec_lon: np.ndarray) -> None:
    """The events of IO rows in event order (whole series: a series is never split between
    two calls), appended to ``out[stage]`` (stages in :data:`_STAGES` order). Rows ``rec``
    (record), ``iid``, ``raw``, ``val``, ``u`` (map entry); see :func:`io_events` for the
    per-record and per-entry arguments. ``level_subjects``: subject codes that have a fuel
    level (%) series of the main profile, over all calls."""
    for st in _STAGES:
        out.setdefault(st, [])
    s = subj_codes[rec]
    fmb = (prof_of_rec == 0)[rec]  # rows of the main profile (derived thresholds apply)
    pk = _io_key(iid, prof_of_rec, rec, fmb)

    def is_kind(k: str) -> np.ndarray:
        hit: np.ndarray = np.asarray(kind_u == k, dtype=bool)[u]
        return hit

    def before(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``a`` at the row before each row of ``mask`` (rows of one subject and IO: ``same``)."""
        return a[np.flatnonzero(mask) - 1]
    same = np.zeros(len(rec), dtype=bool)
    same[1:] = (s[1:] == s[:-1]) & (pk[1:] == pk[:-1])
    changed = _value_changed(same, raw, val, u, step_u)

    def frame(stage: str, mask: np.ndarray, kinds: np.ndarray | str, value: np.ndarray,
              units: np.ndarray | str, text: pd.Series, extra: pd.Series, derived: bool,
              more_flag: str | None = None) -> None:
        if not mask.any():
            return
        r = rec[mask]
        fl = flag_s.take(r)
        if derived:
            fl = _with_flag(fl, "derived")
        if more_flag:
            fl = _with_flag(fl, more_flag)
        out[stage].append(pd.DataFrame({
            "record": record[r], "subject_id": subj_s.take(subj_codes[r]), "t_utc": t_ns[r],
            "kind": dictionary(kinds, len(r)), "value": value, "unit": dictionary(units, len(r)),
            "text": text.array, "lat": rec_lat[r], "lon": rec_lon[r],
            "flags": dictionary(fl, len(r)), "extra": extra.array}, copy=False))

    def sx(a: Any) -> pd.Series:
        """A string Series with a fresh index (so concatenations align by position)."""
        if isinstance(a, pd.api.extensions.ExtensionArray):
            return pd.Series(a).astype("string")
        return pd.Series(np.asarray(a)).astype("string").reset_index(drop=True)

    def trig(m: np.ndarray) -> pa.Array:
        """Text ``true`` where the record was triggered by the row's IO id (rows ``m``)."""
        return _TRUE_FALSE.take(pa.array((event_io[rec[m]] == iid[m]).view(np.int8)))
    # value events
    m = changed
    iid_m, raw_m = _decimal(iid[m]), _decimal(raw[m])  # written once, used twice
    frame("value", m, dictionary_take(kind_u, u[m]), val[m], dictionary_take(units_u, u[m]),
          join_text("IO ", iid_m, " ", str_take(names_u, u[m]), " = ", raw_m),
          join_text('{"io_id":', iid_m, ',"raw":', raw_m, ',"triggered":', trig(m), "}"),
          derived=False)
    del iid_m, raw_m
    # edges
    edge_names: list[str] = []
    edge_code = _edge_codes(profs, pk, raw, edge_names)
    m = same & (edge_code >= 0)
    m[1:] &= raw[1:] != raw[:-1]
    ek = np.asarray([*edge_names, ""], dtype=object)[edge_code[m]]
    del edge_code
    iid_m = _decimal(iid[m])
    frame("edge", m, ek, val[m], "", join_text(ek, ": IO ", iid_m, " ", before(raw, m), " -> ", raw[m]),
          join_text('{"from_record":"', record[before(rec, m)], '","io_id":', iid_m,
                    ',"triggered":', trig(m), "}"), derived=True)
    # fuel: refuel / drop, per subject from the % series if present, else litres
    th = profs[0]["derived"]

    def delta_at(idx: np.ndarray) -> np.ndarray:
        """Change of the value from the row before, at rows ``idx`` (rows with ``same``)."""
        out: np.ndarray = val[idx] - val[idx - 1]
        return out

    def rows_mask(idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rec), dtype=bool)
        out[idx] = True
        return out
    for fkind, up_k, down_k, funit in (("fuel_level", "refuel_pct", "fuel_drop_pct", "%"),
                                   ("fuel_volume", "refuel_l", "fuel_drop_l", "l")):
        is_f = is_kind(fkind) & fmb
        if fkind == "fuel_volume":
            is_f &= ~_in_subjects(s, level_subjects)  # % series first
        if not is_f.any() or up_k not in th:
            continue
        fi = np.flatnonzero(is_f & same)
        d_f = delta_at(fi)
        with np.errstate(invalid="ignore"):
            mu, md = rows_mask(fi[d_f >= th[up_k]]), rows_mask(fi[d_f <= -th[down_k]])
        for mm, k, thr in ((mu, "refuel", th[up_k]), (md, "fuel_drop", th[down_k])):
            if mm.any():
                frame(f"{fkind} {k}", mm, k, delta_at(np.flatnonzero(mm)), funit,
                      (f"{k}: fuel " + sx(np.round(before(val, mm), 3)) + f" {funit} -> "
                       + sx(np.round(val[mm], 3)) + f" {funit} (threshold {thr:g} {funit})"),
                      ('{"from_record":"' + sx(record[before(rec, mm)]) + '","threshold":'
                       + f"{thr:g}" + "}"), derived=True)
    # odometer jumps
    if "odometer_max_speed_kmh" in th:
        io_o = np.flatnonzero(is_kind("odometer") & same & fmb)  # the odometer readings only
        dt_s = (t_ns[rec[io_o]] - t_ns[rec[io_o - 1]]) / 1e9
        limit = th["odometer_max_speed_kmh"] / 3.6 * np.maximum(dt_s, 0) + th["odometer_slack_m"]
        d_o = delta_at(io_o)
        with np.errstate(invalid="ignore"):
            bad = (d_o > limit) | (d_o < -th["odometer_rollback_m"])
        mo = rows_mask(io_o[bad])
        if mo.any():
            frame("odometer_jump", mo, "odometer_jump", d_o[bad], "m",
                  ("odometer changed by " + sx(d_o[bad]) + " m in " + sx(dt_s[bad]) + " s"),
                  ('{"from_record":"' + sx(record[before(rec, mo)]) + '","limit_m":'
                   + sx(np.round(limit[bad], 1)) + "}"),
                  derived=True, more_flag="inconsistent_value")


# --- alarms, identifiers, serving cell, HDOP (issue #19) --------------------------------------


@dataclass
class RecInfo:
    """Per-record columns an event row takes from its record."""

    t_ns: np.ndarray
    subj: np.ndarray
    record: np.ndarray
    event_io: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    flag: np.ndarray

    @property
    def subj_codes(self) -> np.ndarray:
        """Subject as integer codes (for sorting and grouping)."""
        codes: np.ndarray = pd.factorize(pd.Series(self.subj, dtype="object"))[0]
        return codes


def _event_rows(ri: RecInfo, rec: np.ndarray, kind: Any, value: Any, text: list[str],
                extra: list[dict[str, Any]]) -> pd.DataFrame:
    """Event rows of records ``rec`` (position and flags of the record, as value events)."""
    return pd.DataFrame({
        "record": ri.record[rec], "subject_id": ri.subj[rec], "t_utc": ri.t_ns[rec],
        "kind": kind, "value": value, "unit": "", "text": np.array(text, dtype=object),
        "lat": ri.lat[rec], "lon": ri.lon[rec], "flags": ri.flag[rec],
        "extra": np.array([compact_json(x) for x in extra], dtype=object)})


def _entry_attr(ents: list[dict[str, Any] | None], key: str) -> np.ndarray:
    """``ents[i][key]`` (None where the id is unmapped or the key absent), as object array."""
    return np.array([e.get(key) if e else None for e in ents], dtype=object)


def alarm_events(io: IoCols, ents: list[dict[str, Any] | None], ri: RecInfo) -> pd.DataFrame | None:
    """An event for every record carrying an alarm element with an alarm value.

    Parameters
    ----------
    io
        The long IO table of the produced records (with ``ent`` set).
    ents
        The IO map entry of each ``io.ent`` code; an entry's ``alarms`` maps a raw value
        (or ``*``: any) to the event kind, ``meanings`` a raw value to Teltonika's wording.
    ri
        Per-record time, subject, locator, position and flags.

    Returns
    -------
    pandas.DataFrame or None
        Event rows (value = the raw code, text = ``IO <id> <name> = <code>: <meaning>``),
        None when no record carries an alarm.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> ri = RecInfo(t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...              event_io=rc.event_io.astype(np.int64), lat=rc.lat, lon=rc.lon,
    ...              flag=tt.record_flags(rc))
    >>> alarm_events(io, mp.ents, ri) is None  # no alarm element in these records
    True
    >>> from routetrace.loaders.teltonika_codec import (IoValue, Record, decode_messages,
    ...                                                 encode_tcp_frame)
    >>> crash = [Record(t_ms=1761512400000, lat=51.0, lon=3.87, io=(IoValue(247, 1, 1),))]
    >>> frame = encode_tcp_frame(crash)
    >>> d = decode_messages(frame, [("tcp", 0, len(frame), "line 9")])
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> ri = RecInfo(t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...              event_io=rc.event_io.astype(np.int64), lat=rc.lat, lon=rc.lon,
    ...              flag=tt.record_flags(rc))
    >>> ev = alarm_events(io, mp.ents, ri)
    >>> ev[["record", "kind", "value"]].values.tolist(), ev["text"].iloc[0]
    ([['line 9/rec 0', 'crash', 1.0]],
     'IO 247 crash_detection = 1: crash detected (device is calibrated)')
    """
    assert io.ent is not None
    has = np.array([bool(e and e.get("alarms")) for e in ents], dtype=bool)
    rows = np.flatnonzero(has[io.ent] & ~io.is_bytes)
    if not len(rows):
        return None
    pairs, inv = np.unique(np.stack([io.ent[rows], io.raw[rows]]), axis=1, return_inverse=True)
    kinds, meanings = [], []
    for ei, raw in pairs.T.tolist():
        e = ents[ei] or {}
        kinds.append(e["alarms"].get(str(raw), e["alarms"].get("*")))
        meanings.append((e.get("meanings") or {}).get(str(raw), "value not in Teltonika's list"))
    kind_of = np.array(kinds, dtype=object)[inv.ravel()]
    keep = pd.notna(kind_of)
    rows, kind_of = rows[keep], kind_of[keep]
    mean_of = np.array(meanings, dtype=object)[inv.ravel()][keep]
    rec, iid, raw = io.rec[rows], io.iid[rows], io.raw[rows]
    names = _entry_attr(ents, "name")[io.ent[rows]]
    text = [f"IO {i} {nm} = {r}: {m}" for i, nm, r, m in zip(iid.tolist(), names, raw.tolist(),
                                                                mean_of, strict=True)]
    extra = [{"io_id": i, "raw": r, "triggered": bool(ev == i)}
             for i, r, ev in zip(iid.tolist(), raw.tolist(), ri.event_io[rec].tolist(), strict=True)]
    return _event_rows(ri, rec, kind_of, raw.astype(np.float64), text, extra)


def _uint(raw: int, width: int) -> int:
    return raw & ((1 << (8 * width)) - 1)


def _ble_385(b: bytes) -> list[str]:
    """Beacon ids of IO 385 (Teltonika 'Beacon' list; layout as Traccar parses it): a data
    byte, then per beacon a flags byte, iBeacon UUID:major:minor (flags >> 4 > 0) or
    Eddystone namespace:instance, signed RSSI, optional battery and temperature words."""
    ids, p = [], 1
    while p < len(b):
        flags = b[p]
        p += 1
        if flags >> 4:
            ids.append(f"{b[p:p + 16].hex()}:{int.from_bytes(b[p + 16:p + 18], 'big')}:"
                       f"{int.from_bytes(b[p + 18:p + 20], 'big')}")
            p += 20
        else:
            ids.append(f"{b[p:p + 10].hex()}:{b[p + 10:p + 16].hex()}")
            p += 16
        p += 1 + 2 * bool(flags & 2) + 2 * bool(flags & 4)
        if p > len(b):
            raise ValueError("beacon list runs past its element")
    return ids


def _ble_548(b: bytes) -> list[str]:
    """Tag ids (parameter 1) of IO 548 (Teltonika advanced BLE tag data, as Traccar parses
    it): a header byte, then per tag a length byte and (id, length, value) parameters."""
    ids, p = [], 1
    while p < len(b):
        end = p + 1 + b[p]
        q = p + 1
        if end > len(b):
            raise ValueError("tag runs past its element")
        while q + 2 <= end:
            pid, ln = b[q], b[q + 1]
            if pid == 1:
                ids.append(b[q + 2:q + 2 + ln].hex())
            q += 2 + ln
        p = end
    return ids


def decode_identifier(how: str, raw: int, width: int, data: bytes | None) -> str | None:
    """The text of an identifier element (None: the element says 'none' or is unreadable).

    Parameters
    ----------
    how
        The map's ``decode``: ``hex``, ``le_hex`` (also byte-reversed, as Traccar shows
        an iButton), ``decimal``, ``ascii``, ``ble_385`` or ``ble_548``.
    raw
        The element's integer value (fixed-width elements).
    width
        Its width in bytes.
    data
        The bytes of a variable-length element (``None`` for fixed-width ones).

    Returns
    -------
    str or None
        The identifier as text; ``None`` for 0, empty or undecodable values.

    Example
    -------
    >>> decode_identifier("le_hex", 0x0100000012345678, 8, None)
    '0100000012345678 (byte-reversed, as Traccar shows it: 7856341200000001)'
    >>> decode_identifier("ascii", 0, 0, b"ABCDEFGH123456789")
    'ABCDEFGH123456789'
    """
    if data is None:
        value = _uint(raw, width)
        if value == 0:
            return None
        if how == "decimal":
            return str(value)
        data = value.to_bytes(width, "big")
    if not data:
        return None
    if how in ("hex", "decimal"):
        return data.hex().upper()
    if how == "le_hex":
        return f"{data.hex().upper()} (byte-reversed, as Traccar shows it: {data[::-1].hex().upper()})"
    if how == "ascii":
        s = data.decode("latin-1").strip("\x00 ")
        return s if s and s.isprintable() else None
    try:
        ids = _ble_385(data) if how == "ble_385" else _ble_548(data)
    except (ValueError, IndexError):
        return None
    return ", ".join(ids) or None


def _changed(ri: RecInfo, rec: np.ndarray, group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Indices (into ``rec``) of rows whose ``key`` is the first of its (subject, group) or
    differs from the row before in time order."""
    df = pd.DataFrame({"s": ri.subj_codes[rec], "g": group, "t": ri.t_ns[rec], "r": rec,
                       "k": key, "i": np.arange(len(rec))})
    df = df.sort_values(["s", "g", "t", "r"], kind="stable")
    first = (df["s"] != df["s"].shift()) | (df["g"] != df["g"].shift())
    out: np.ndarray = df.loc[first | (df["k"] != df["k"].shift()), "i"].to_numpy()
    return np.sort(out)


def identifier_events(io: IoCols, ents: list[dict[str, Any] | None], ri: RecInfo) -> pd.DataFrame | None:
    """An identifier event (driver iButton, VIN, SIM ICCID, BLE tags) when the identifier
    is first seen for the subject and whenever it changes (map keys ``identifier``,
    ``decode``, optional ``width``); text = the decoded id. A value meaning 'none' (0,
    empty) gives no event but counts as a change.

    Parameters
    ----------
    io
        The long IO table with map codes (``ent``).
    ents
        The IO map entry of each code (keys ``identifier``, ``decode``, ``width``).
    ri
        Per-record time, subject, locator, position and flags.

    Returns
    -------
    pandas.DataFrame or None
        Event rows (kind = the identifier, e.g. ``driver_id``; text = the decoded id),
        None when no identifier is present.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> ri = RecInfo(t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...              event_io=rc.event_io.astype(np.int64), lat=rc.lat, lon=rc.lon,
    ...              flag=tt.record_flags(rc))
    >>> ev = identifier_events(io, mp.ents, ri)  # rec 0 has none; rec 2 changes it
    >>> ev[["record", "kind"]].values.tolist()
    [['line 1/rec 1', 'driver_id'], ['line 1/rec 2', 'driver_id']]
    >>> ev["text"].iloc[0]
    '0100000012345678 (byte-reversed, as Traccar shows it: 7856341200000001)'
    """
    assert io.ent is not None
    ident = _entry_attr(ents, "identifier")
    want_w = np.array([float(e.get("width") or np.nan) if e else np.nan for e in ents])
    rows = np.flatnonzero(np.asarray(pd.notna(ident), dtype=bool)[io.ent])
    ww = want_w[io.ent[rows]]  # the width check on the identifier rows only (not every IO row)
    rows = rows[np.isnan(ww) | (np.abs(io.w[rows]) == ww)]
    if not len(rows):
        return None
    hexv = io.hexv[rows] if io.hexv is not None else np.full(len(rows), None, dtype=object)
    key = np.where(io.is_bytes[rows], hexv, io.raw[rows].astype(str)).astype(object)
    rows = rows[_changed(ri, io.rec[rows], ident[io.ent[rows]], key)]
    how = _entry_attr(ents, "decode")[io.ent[rows]]
    texts, keep = [], []
    for j, r in enumerate(rows.tolist()):
        h = io.hexv[r] if io.hexv is not None and io.w[r] < 0 else None
        t = decode_identifier(str(how[j]), int(io.raw[r]), int(io.w[r]),
                              None if h is None else bytes.fromhex(h))
        if t is not None:
            texts.append(t)
            keep.append(j)
    if not keep:
        return None
    rows = rows[keep]
    names = _entry_attr(ents, "name")[io.ent[rows]]
    extra = [{"io_id": i, "name": nm} for i, nm in zip(io.iid[rows].tolist(), names, strict=True)]
    return _event_rows(ri, io.rec[rows], ident[io.ent[rows]], np.nan, texts, extra)


def cell_events(io: IoCols, ents: list[dict[str, Any] | None], ri: RecInfo,
                header: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame | None:
    """A ``cell_tower`` event when a record's serving cell (LAC + cell id, map key ``cell``;
    for codec 7 the location block's LAC, cell id and operator given in ``header``, per
    record, 0 = none) is first seen for the subject and whenever it changes. A cell
    reference for an examiner (e.g. when GPS is jammed); no coordinates are derived from
    it. 0 = unknown.

    Parameters
    ----------
    io
        The long IO table with map codes (``ent``).
    ents
        The IO map entry of each code (key ``cell``: ``lac``, ``cell_id``,
        ``cell_id_lte``, ``operator``).
    ri
        Per-record time, subject, locator, position and flags.
    header
        Codec 7 only: ``lac``, ``cell_id``, ``operator`` per record from the location
        block (0 = none).

    Returns
    -------
    pandas.DataFrame or None
        ``cell_tower`` event rows (text ``LAC <lac> cell <id>``, ``extra`` with lac,
        cell id, radio, operator), None when no record names a cell.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> ri = RecInfo(t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...              event_io=rc.event_io.astype(np.int64), lat=rc.lat, lon=rc.lon,
    ...              flag=tt.record_flags(rc))
    >>> cell_events(io, mp.ents, ri)[["record", "text"]]
             record                text
    0  line 1/rec 0  LAC 3001 cell 1234
    1  line 1/rec 2  LAC 3001 cell 1235
    """
    assert io.ent is not None
    role = _entry_attr(ents, "cell")  # per map entry (few), then taken per element
    n = len(ri.t_ns)
    cols = {}
    rows = np.flatnonzero(np.asarray(pd.notna(role), dtype=bool)[io.ent] & ~io.is_bytes)
    role_r = role[io.ent[rows]]  # the cell rows only (not every IO row, per name)
    for name in ("cell_id", "cell_id_lte", "lac", "operator"):
        a = np.zeros(n, dtype=np.int64)
        m = rows[np.asarray(role_r == name, dtype=bool)]
        a[io.rec[m]] = io.raw[m]
        if header is not None and name in header:
            a = np.where(a == 0, header[name], a)
        cols[name] = a
    lte = (cols["cell_id"] == 0) & (cols["cell_id_lte"] > 0)
    cid = np.where(lte, cols["cell_id_lte"], cols["cell_id"])
    rec = np.flatnonzero((cols["lac"] > 0) & (cid > 0))
    if not len(rec):
        return None
    key = (cols["lac"][rec] << 32) | (cid[rec] & 0xFFFFFFFF)  # (LAC, cell id) as one integer
    rec = rec[_changed(ri, rec, np.zeros(len(rec), dtype=np.int64), key)]
    text = [f"LAC {la} cell {c}{' (LTE)' if e else ''}" for la, c, e in
            zip(cols["lac"][rec].tolist(), cid[rec].tolist(), lte[rec].tolist(), strict=True)]
    extra = [{"lac": la, "cell_id": c, "radio": "lte" if e else "gsm",
              **({"operator": op} if op else {})}
             for la, c, e, op in zip(cols["lac"][rec].tolist(), cid[rec].tolist(),
                                     lte[rec].tolist(), cols["operator"][rec].tolist(), strict=True)]
    return _event_rows(ri, rec, "cell_tower", np.nan, text, extra)


def hdop_h_acc(io: IoCols, ents: list[dict[str, Any] | None], n: int, *,
               uere_m: float) -> np.ndarray:
    """Horizontal accuracy per record from its HDOP element.

    Parameters
    ----------
    io
        The long IO table with scaled values (``value``) and map codes (``ent``).
    ents
        IO map entries; those with ``accuracy: hdop`` hold HDOP (IO 182; GH3000 IO 20).
    n
        Number of records.
    uere_m
        Assumed user equivalent range error in metres (the loader's option, default 5).

    Returns
    -------
    numpy.ndarray
        ``HDOP x uere_m`` in metres where the record carries an HDOP above 0 (0 is the
        device's "no value"); NaN elsewhere.

    Example
    -------
    >>> from routetrace.loaders.teltonika import load_io_map
    >>> from routetrace.testing import example_teltonika  # 3 records of a lorry
    >>> d, ctx = example_teltonika()
    >>> from routetrace.loaders import teltonika_tables as tt
    >>> rc = tt.record_columns(d, ctx)
    >>> io = tt.io_columns(d, rc.n)
    >>> mp = tt.map_columns([load_io_map()], np.zeros(rc.n, dtype=np.int64), io)
    >>> tt.io_values(io, mp)
    >>> ri = RecInfo(t_ns=rc.t_ns, subj=rc.subj, record=rc.record.to_numpy(),
    ...              event_io=rc.event_io.astype(np.int64), lat=rc.lat, lon=rc.lon,
    ...              flag=tt.record_flags(rc))
    >>> hdop_h_acc(io, mp.ents, rc.n, uere_m=5.0).round(3).tolist()  # HDOP 1.2 x 5 m
    [6.0, 6.0, 6.0]
    """
    assert io.ent is not None and io.value is not None
    is_hdop = np.array([bool(e and e.get("accuracy") == "hdop") for e in ents], dtype=bool)
    with np.errstate(invalid="ignore"):
        m = is_hdop[io.ent] & ~io.is_bytes & (io.value > 0)
    out = np.full(n, np.nan)
    out[io.rec[m]] = io.value[m] * uere_m
    return out
