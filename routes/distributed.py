"""Fleet scale on Dask: the same stages over partitions, on a local or remote cluster.

The in-memory functions of :mod:`routetrace.routes.carparks` and
:mod:`routetrace.routes.copresence` are mapped over Dask partitions:

* **Car-park visits** are per subject. A pandas table is split on the client into
  ``npartitions`` groups of whole subjects of about equal size; a Dask DataFrame is
  shuffled so each subject lies in one partition. Each partition is processed by
  :func:`find_carpark_visits`, and the small visits table is completed (others present, ids)
  on the client.
* **Co-presence** compares subjects at nearby times. A pandas table is split on the
  client into ``npartitions`` time ranges of about equal size; each range also takes the
  fixes of the ``max_dt`` before it, so the earlier fix of every pair is in the range of
  the later one. A Dask DataFrame is partitioned by time bucket (one day by default) with
  the same ``max_dt`` overlap. Duplicate pairs are dropped.

A pandas table is sent to the workers once (scattered, not embedded in the task graph)
and never shuffled; a Dask DataFrame the user built is shuffled.

For a fleet-year in a case store, nothing is shuffled: car-park visits take a Dask
DataFrame whose partitions hold whole subjects (``Case.dask_table("fixes",
columns=STAGE_COLUMNS, whole_subjects=True)``, ``shuffle=False``), and co-presence runs one
task per UTC day (:func:`dask_copresence_by_period` over ``Case.time_slices``), each task
reading only the parts of its day and the ``max_dt`` before it. This module opens no file:
the store's slices read themselves on the workers. Start a Dask cluster (``dask scheduler``
+ ``dask worker`` on each machine that sees the case folder) and pass
``scheduler="tcp://host:8786"`` (CLI ``--scheduler``; see ``docs/fleet-scale.md``).

The results equal the in-memory results (tested on a LocalCluster with 2 workers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import dask.dataframe as dd
import geopandas as gpd
import numpy as np
import pandas as pd
from dask.base import compute as dask_compute
from dask.delayed import delayed as dask_delayed

from ..errors import ParameterError
from .carparks import _VISIT_COLS, _attach_others, find_carpark_visits
from .copresence import find_copresence_pairs

__all__ = ["STAGE_COLUMNS", "TimeSliceLike", "dask_carpark_visits", "dask_client", "dask_copresence_by_period",
           "dask_copresence_pairs", "split_by_subject", "split_by_time"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int = 2,
                threads_per_worker: int = 1) -> Iterator[Any]:
    """A Dask client: to ``scheduler`` (``tcp://host:8786``) or to a new LocalCluster.

    Every worker imports ``dask.dataframe`` (a worker plugin, also on workers that join
    later), so each can unpack a shuffle. The client (and a LocalCluster it started) is
    closed when the ``with`` block ends.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler; None starts a LocalCluster of processes.
    n_workers : int
        Worker processes of a new LocalCluster.
    threads_per_worker : int
        Threads of each such worker.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields a ``distributed.Client``; the ``dask_*`` stages run on it inside the block.

    Example
    -------
    Nothing starts until the ``with`` block (which starts worker processes):

    >>> cluster = dask_client(n_workers=2)
    >>> hasattr(cluster, "__enter__")
    True
    >>> with cluster as client:  # doctest: +SKIP
    ...     len(client.scheduler_info()["workers"])
    2
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            client.register_plugin(_dataframe_dispatch_plugin())
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
        client.register_plugin(_dataframe_dispatch_plugin())
        yield client


def _dataframe_dispatch_plugin() -> Any:
    """A worker plugin that imports ``dask.dataframe`` on every worker (also on workers that
    join later). Its import registers the pandas implementations of Dask's dispatches; a
    worker that unpacks a P2P shuffle output without having run any DataFrame task itself
    otherwise fails with ``TypeError: No dispatch for <class 'pandas.DataFrame'>`` (seen as
    ``P2P ... failed during unpack phase``, now and then, depending on which worker ran what)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class DataFrameDispatch(WorkerPlugin):
        name = "routetrace-dataframe-dispatch"
        idempotent = True

        def setup(self, worker: Any) -> None:
            import dask.dataframe  # noqa: F401  (the import registers the dispatches)

    return DataFrameDispatch()


def _prepare_workers() -> None:
    """The plugin of :func:`_dataframe_dispatch_plugin` on the running client's workers (a
    client the caller made, not :func:`dask_client`); nothing without a client."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return
    client.register_plugin(_dataframe_dispatch_plugin())


# what the distributed stages read: the required fixes columns and the accuracy (a fix's
# id is derived from source_id and record where a stage needs it)
_SENT = ("subject_id", "t_utc", "lat", "lon", "h_acc_m", "fix_kind", "source_id", "record", "flags")
#: the fixes columns the distributed stages read (``Case.dask_table("fixes", columns=...)``)
STAGE_COLUMNS = _SENT


def _pack(fixes: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The columns the stages read, repetitive strings (source ids, subjects, kinds, flags)
    as categoricals: several times fewer bytes to send to the workers, restored there by
    :func:`_unpack` to the same values and dtypes."""
    out = fixes[[c for c in _SENT if c in fixes.columns]].copy(deep=False)
    restore: dict[str, Any] = {}
    for c in out.columns:
        if isinstance(out[c].dtype, pd.StringDtype):
            head = out[c].iloc[:4096]
            if head.nunique(dropna=False) * 4 <= len(head):
                codes, uniq = pd.factorize(out[c])
                restore[c] = out[c].dtype
                out[c] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(uniq, dtype=object)))
    return out, restore


def _plain_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its dictionary (categorical) columns as plain text, for a shuffle: the
    shuffle joins shards of many partitions, each with its own dictionary (a store part holds
    one source: int8 codes), and Arrow refuses to unify dictionaries that together need a
    wider index ("The unified dictionary requires a larger index type")."""
    cats = {c: df[c].astype(df[c].cat.categories.dtype) for c in df.columns
            if isinstance(df[c].dtype, pd.CategoricalDtype)}
    return df.assign(**cats) if cats else df


def _unpack(part: pd.DataFrame, restore: dict[str, Any]) -> pd.DataFrame:
    part = part.copy(deep=False)
    for c, dtype in restore.items():
        cat = part[c].array
        values = pd.array(np.asarray(cat.categories, dtype=object), dtype=dtype)
        part[c] = values.take(cat.codes, allow_fill=True)  # code -1 (NA) gives NA
    return part.reset_index(drop=True)


def _shared(obj: Any) -> Any:
    """``obj`` (a table every task reads) as an argument of the tasks of a graph without it
    being serialized into each task: scattered once to every worker of the running client,
    else one Delayed. A function closing over a table is pickled with it for every task:
    100 tasks closing over a table of 3e6 rows took 6.1 s on a 2-worker LocalCluster, 0.6 s
    with the table scattered."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return dask_delayed(obj)
    return client.scatter(obj, broadcast=True, hash=False)


def _run_parts(fn: Callable[[pd.DataFrame, Any], pd.DataFrame], parts: list[pd.DataFrame],
               restore: dict[str, Any], shared: Any = None) -> list[pd.DataFrame]:
    """``fn(part, shared)`` over packed ``parts`` on the current Dask client (parts scattered
    to the workers, unpacked there; ``shared`` sent to each worker once), or on Dask's
    default scheduler when no client is running."""
    def run(part: pd.DataFrame, common: Any) -> pd.DataFrame:
        return fn(_unpack(part, restore), common)

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # no distributed client: threads of this process
        return list(dask_compute(*[dask_delayed(run)(p, shared) for p in parts]))
    futures = client.scatter(parts)
    common = None if shared is None else client.scatter(shared, broadcast=True, hash=False)
    return list(client.gather(client.map(run, futures, common=common, pure=False)))


def split_by_subject(fixes: pd.DataFrame, npartitions: int) -> list[pd.DataFrame]:
    """Whole subjects in ``npartitions`` (or fewer) groups of about equal row counts.

    Subjects are taken in sorted order; each subject's rows go to one group, so per-subject
    stages give the same result on every group as on the whole table.

    Parameters
    ----------
    fixes : pandas.DataFrame
        Rows with a ``subject_id`` column.
    npartitions : int
        The most groups wanted.

    Returns
    -------
    list of pandas.DataFrame
        The groups (views of ``fixes``, original index kept); ``[fixes]`` when it is empty.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> t = list(pd.date_range("2025-10-26T21:00Z", periods=4, freq="10min"))
    >>> f = make_fixes(subject_id=["lorry"] * 4 + ["van"] * 4 + ["phone"] * 4, t_utc=t * 3,
    ...                lat=[51.0] * 4 + [51.0001] * 4 + [51.0002] * 4, lon=3.87)
    >>> [sorted(g["subject_id"].unique()) for g in split_by_subject(f, 2)]
    [['lorry', 'phone'], ['van']]
    """
    if fixes.empty:
        return [fixes]
    codes, _ = pd.factorize(fixes["subject_id"], sort=True)
    counts = np.bincount(codes)
    before = np.cumsum(counts) - counts
    group = np.minimum(before * max(1, npartitions) // len(fixes), max(1, npartitions) - 1)[codes]
    return [fixes[group == g] for g in np.unique(group)]


def split_by_time(fixes: pd.DataFrame, npartitions: int, *, overlap: pd.Timedelta) -> list[pd.DataFrame]:
    """``npartitions`` (or fewer) time ranges of about equal row counts, each with the fixes
    of the ``overlap`` before it.

    Every pair of fixes at most ``overlap`` apart then lies together in the range of the
    later fix: the earlier one is at most ``overlap`` before the range starts.

    Parameters
    ----------
    fixes : pandas.DataFrame
        Rows with a ``t_utc`` column.
    npartitions : int
        The most ranges wanted (1 or less: the whole table).
    overlap : pandas.Timedelta
        How far each range reaches back before its start (the stage's ``max_dt``).

    Returns
    -------
    list of pandas.DataFrame
        The ranges in time order, each with its overlap (views of ``fixes``, original
        index kept); none empty.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(t_utc=pd.date_range("2025-10-26T21:00Z", periods=4, freq="10min"),
    ...                lat=51.0, lon=3.87)
    >>> parts = split_by_time(f, 2, overlap=pd.Timedelta("10min"))
    >>> [[t.strftime("%H:%M") for t in p["t_utc"]] for p in parts]
    [['21:00', '21:10'], ['21:10', '21:20', '21:30']]
    """
    t = fixes["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    if len(t) == 0 or npartitions <= 1:
        return [fixes]
    edges = np.unique(np.quantile(t, np.linspace(0, 1, npartitions + 1)[1:-1]).astype("int64"))
    starts, ends = np.r_[t.min(), edges], np.r_[edges, t.max() + 1]
    ov = pd.Timedelta(overlap).value
    parts = [fixes[(t >= a - ov) & (t < b)] for a, b in zip(starts, ends, strict=True)]
    return [p for p in parts if len(p)]


def dask_carpark_visits(
    fixes: pd.DataFrame | dd.DataFrame,
    geofences: gpd.GeoDataFrame,
    *,
    events: pd.DataFrame | dd.DataFrame | None = None,
    npartitions: int = 4,
    shuffle: bool = True,
    **params: Any,
) -> pd.DataFrame:
    """:func:`find_carpark_visits` over Dask partitions by subject; same result, same columns.

    ``fixes`` as a pandas table is split into ``npartitions`` groups of whole subjects
    (no shuffle); as a Dask DataFrame it is shuffled by subject, unless ``shuffle`` is
    false: then each of its partitions must hold whole subjects already (as
    ``Case.dask_table(..., whole_subjects=True)`` gives).

    The partitions run on the running Dask client (:func:`dask_client`), or on Dask's
    default scheduler (threads of this process) when there is none.

    Parameters
    ----------
    fixes : pandas.DataFrame or dask.dataframe.DataFrame
        The fixes (at least :data:`STAGE_COLUMNS`).
    geofences : geopandas.GeoDataFrame
        The car parks, as for :func:`find_carpark_visits`.
    events : pandas.DataFrame or dask.dataframe.DataFrame, optional
        Ignition and door events, as for :func:`find_carpark_visits`. A pandas table is
        sent once to each worker. With ``fixes`` a Dask DataFrame of whole subjects and
        ``shuffle`` false, it may be a Dask DataFrame whose partition ``k`` holds the
        events of the subjects of partition ``k`` of ``fixes`` (as
        ``Case.dask_tables_by_subject(["fixes", "events"])`` gives): each task then reads
        its own subjects' events, and no worker holds the others'.
    npartitions : int
        Groups of whole subjects (a pandas table) or partitions after the shuffle.
    shuffle : bool
        Shuffle a Dask DataFrame by subject first (see above).
    **params
        The other parameters of :func:`find_carpark_visits` (``max_gap``, ...).

    Returns
    -------
    pandas.DataFrame
        The visits, equal to what :func:`find_carpark_visits` returns for the whole table.

    Example
    -------
    >>> import shapely
    >>> from routetrace.testing import make_fixes
    >>> fence = gpd.GeoDataFrame({"name": ["P"]}, geometry=[shapely.box(3.86, 50.99, 3.88, 51.01)],
    ...                          crs="EPSG:4326")
    >>> t = list(pd.date_range("2025-10-26T21:00Z", periods=4, freq="10min"))
    >>> f = make_fixes(subject_id=["lorry"] * 4 + ["van"] * 4, t_utc=t * 2, lat=51.0, lon=3.87,
    ...                h_acc_m=5.0)
    >>> v = dask_carpark_visits(f, fence, npartitions=2)  # no client: Dask's default scheduler
    >>> v[["visit_id", "subject_id", "geofence", "n_fixes"]].values.tolist()
    [['V00001', 'lorry', 'P', 4], ['V00002', 'van', 'P', 4]]
    """

    def part(df: pd.DataFrame, all_events: pd.DataFrame | None) -> pd.DataFrame:
        # the events come as an argument, not from the enclosing scope: a closure over them
        # would be pickled with every task (:func:`_shared`)
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _VISIT_COLS})
        ev = (None if all_events is None
              else all_events[all_events["subject_id"].isin(df["subject_id"].unique())])
        v = find_carpark_visits(df.reset_index(drop=True), geofences, events=ev, **params)
        return v.astype(object)

    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in _VISIT_COLS})
    if isinstance(events, dd.DataFrame) and (shuffle or isinstance(fixes, pd.DataFrame)
                                             or events.npartitions != fixes.npartitions):
        raise ParameterError(
            "events as a Dask DataFrame need fixes as a Dask DataFrame of whole subjects with as "
            f"many partitions (fixes {fixes.npartitions if isinstance(fixes, dd.DataFrame) else 'pandas'}, "
            f"events {events.npartitions}) and shuffle=False: use "
            "Case.dask_tables_by_subject(['fixes', 'events'])")
    if isinstance(fixes, pd.DataFrame):
        packed, restore = _pack(fixes)
        found = [f for f in _run_parts(part, split_by_subject(packed, npartitions), restore, events)
                 if len(f)]
        v = pd.concat(found, ignore_index=True) if found else meta
    else:
        _prepare_workers()
        parts = (fixes.map_partitions(_plain_text, meta=_plain_text(fixes._meta))
                 .shuffle("subject_id", npartitions=npartitions) if shuffle else fixes)
        if isinstance(events, dd.DataFrame):
            v = dd.map_partitions(part, parts, events, meta=meta, align_dataframes=False).compute()
        else:
            v = parts.map_partitions(part, None if events is None else _shared(events), meta=meta).compute()
    if v.empty:
        return find_carpark_visits(fixes.head(0) if isinstance(fixes, pd.DataFrame) else fixes._meta,
                                   geofences, events=events._meta if isinstance(events, dd.DataFrame)
                                   else events, **params)
    v = v.drop(columns=["visit_id", "others_present"]).infer_objects().reset_index(drop=True)
    for c in ("t_entry", "t_exit", "t_before", "t_after"):
        v[c] = pd.to_datetime(v[c], utc=True).astype("datetime64[ns, UTC]")
    for c in ("dwell", "dwell_observed", "unobserved"):
        v[c] = pd.to_timedelta(v[c])
    for c in ("n_fixes", "n_inside", "n_uncertain", "ignition_on", "ignition_off", "door_open", "door_close"):
        v[c] = v[c].astype("int64")
    for c in ("uncertain", "night", "pass_through"):
        v[c] = v[c].astype(bool)
    v = _attach_others(v)
    v = v.sort_values(["t_entry", "subject_id", "geofence"], kind="mergesort").reset_index(drop=True)
    v.insert(0, "visit_id", [f"V{i + 1:05d}" for i in range(len(v))])
    return v[_VISIT_COLS]


def dask_copresence_pairs(
    fixes: pd.DataFrame | dd.DataFrame,
    *,
    bucket: pd.Timedelta = pd.Timedelta("1D"),
    npartitions: int = 4,
    **params: Any,
) -> pd.DataFrame:
    """:func:`find_copresence_pairs` over time partitions with a ``max_dt`` overlap; same pairs.

    ``fixes`` as a pandas table is split into ``npartitions`` time ranges of about equal
    size (no shuffle); as a Dask DataFrame it is shuffled into ``bucket``-long time buckets.
    The partitions run on the running Dask client (:func:`dask_client`), or on Dask's
    default scheduler (threads of this process) when there is none.

    Parameters
    ----------
    fixes : pandas.DataFrame or dask.dataframe.DataFrame
        The fixes (at least :data:`STAGE_COLUMNS`).
    bucket : pandas.Timedelta
        Length of the time buckets of a Dask DataFrame; longer than ``max_dt``.
    npartitions : int
        Time ranges (a pandas table) or partitions after the shuffle.
    **params
        The parameters of :func:`find_copresence_pairs` (``radius_m``, ``max_dt``, ...).

    Returns
    -------
    pandas.DataFrame
        The pairs, equal to what :func:`find_copresence_pairs` returns for the whole table.

    Raises
    ------
    ParameterError
        When ``bucket`` is not longer than ``max_dt``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["lorry", "phone"] * 2,
    ...                t_utc=["2025-10-26T21:30Z", "2025-10-26T21:32Z", "2025-10-27T09:00Z",
    ...                       "2025-10-27T09:01Z"],
    ...                lat=[51.0, 51.0003, 51.0, 51.2], lon=3.87, h_acc_m=10.0)
    >>> p = dask_copresence_pairs(f, npartitions=2)  # no client: Dask's default scheduler
    >>> p[["subject_a", "subject_b", "firm"]].values.tolist(), round(float(p["distance_m"][0]))
    ([['lorry', 'phone', True]], 33)
    """
    max_dt = pd.Timedelta(params.get("max_dt", pd.Timedelta("10min")))
    if bucket <= max_dt:
        raise ParameterError("bucket must be longer than max_dt")
    pmeta = find_copresence_pairs(fixes.head(0) if isinstance(fixes, pd.DataFrame) else fixes._meta,
                             **params).astype(object)
    if isinstance(fixes, pd.DataFrame):
        def run(df: pd.DataFrame, _: Any) -> pd.DataFrame:
            return find_copresence_pairs(df, **params).astype(object)  # _unpack reset the index

        packed, restore = _pack(fixes)
        found = [f for f in _run_parts(run, split_by_time(packed, npartitions, overlap=max_dt), restore)
                 if len(f)]
        return _finish_pairs(pd.concat(found, ignore_index=True) if found else pmeta)
    ddf = fixes

    def assign(df: pd.DataFrame) -> pd.DataFrame:
        t = df["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
        b = t // bucket.value
        near_end = (t % bucket.value) >= bucket.value - max_dt.value
        df = _plain_text(df)
        main = df.assign(_bucket=b)
        spill = df[near_end].assign(_bucket=b[near_end] + 1)
        return pd.concat([main, spill], ignore_index=True)

    _prepare_workers()
    meta = _plain_text(ddf._meta).assign(_bucket=np.int64(0))
    tagged = ddf.map_partitions(assign, meta=meta).shuffle("_bucket", npartitions=npartitions)

    def part(df: pd.DataFrame) -> pd.DataFrame:
        frames = [find_copresence_pairs(g.drop(columns="_bucket").reset_index(drop=True), **params)
                  for _, g in df.groupby("_bucket", sort=True)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return find_copresence_pairs(df.drop(columns="_bucket").head(0), **params).astype(object)
        return pd.concat(frames, ignore_index=True).astype(object)

    return _finish_pairs(tagged.map_partitions(part, meta=pmeta).compute())


class TimeSliceLike(Protocol):
    """What :func:`dask_copresence_by_period` needs of a period of the fixes (the case
    store's :class:`routetrace.case.TimeSlice`): its period ``t_from`` <= t < ``t_to``,
    how far before it it reaches, and a ``read()`` run on the worker."""

    @property
    def t_from(self) -> pd.Timestamp:
        """Start of the period (UTC)."""

    @property
    def t_to(self) -> pd.Timestamp:
        """End of the period (UTC, not in it)."""

    @property
    def reach_back(self) -> pd.Timedelta:
        """How far before ``t_from`` :meth:`read` reads."""

    def read(self) -> pd.DataFrame:
        """The period's fixes and those of the ``reach_back`` before it."""
        ...


def _pairs_of_period(period: TimeSliceLike, params: dict[str, Any]) -> pd.DataFrame:
    """The pairs whose later fix lies in ``period``'s own period (run on a worker)."""
    pairs = find_copresence_pairs(period.read(), **params)
    ns = [pairs[c].to_numpy(dtype="datetime64[ns]").astype("int64") for c in ("t_a", "t_b")]
    later = np.maximum(*ns)
    own = (later >= pd.Timestamp(period.t_from).value) & (later < pd.Timestamp(period.t_to).value)
    return pairs[own].reset_index(drop=True)


def dask_copresence_by_period(periods: Sequence[TimeSliceLike], **params: Any) -> pd.DataFrame:
    """:func:`find_copresence_pairs` one period (a UTC day) per task, each task reading only
    its period and the ``max_dt`` before it; the same pairs, with no shuffle.

    A pair of fixes at most ``max_dt`` apart is found in the period of its later fix, whose
    task also reads the ``max_dt`` before its period, so holds the earlier fix too; each task
    keeps only the pairs whose later fix lies in its own period. Every pair is therefore
    found by exactly one task: the union is the in-memory result, no pair is dropped as a
    duplicate. The periods come from the case store
    (``Case.time_slices("fixes", reach_back=max_dt, columns=STAGE_COLUMNS)``), which lists
    for each the part files that overlap it (from their footers): a task opens only those.

    The tasks run on the running Dask client (:func:`dask_client`), or on Dask's default
    scheduler (threads of this process) when there is none; only the pairs come back.

    Parameters
    ----------
    periods : sequence of TimeSliceLike
        The periods, each reaching back at least ``max_dt``.
    **params
        The parameters of :func:`find_copresence_pairs` (``radius_m``, ``max_dt``, ...).

    Returns
    -------
    pandas.DataFrame
        The pairs, equal to what :func:`find_copresence_pairs` returns for the whole table.

    Raises
    ------
    ParameterError
        When a period reaches back less than ``max_dt``, or no period is given (the store
        has no fixes: an empty result needs their columns).

    Example
    -------
    >>> from dataclasses import dataclass
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(subject_id=["lorry", "phone"] * 2,
    ...                t_utc=["2025-10-26T23:58Z", "2025-10-27T00:03Z", "2025-10-27T09:00Z",
    ...                       "2025-10-27T09:01Z"],
    ...                lat=[51.0, 51.0003, 51.0, 51.2], lon=3.87, h_acc_m=10.0)
    >>> @dataclass
    ... class Day:  # a period of an in-memory table (the store gives Case.time_slices)
    ...     t_from: pd.Timestamp
    ...     t_to: pd.Timestamp
    ...     reach_back: pd.Timedelta = pd.Timedelta("10min")
    ...     def read(self) -> pd.DataFrame:
    ...         return f[(f["t_utc"] >= self.t_from - self.reach_back) & (f["t_utc"] < self.t_to)]
    >>> days = [Day(pd.Timestamp(d, tz="UTC"), pd.Timestamp(d, tz="UTC") + pd.Timedelta("1D"))
    ...         for d in ("2025-10-26", "2025-10-27")]
    >>> p = dask_copresence_by_period(days)  # no client: Dask's default scheduler
    >>> p[["subject_a", "subject_b", "t_b"]].astype(str).values.tolist()
    [['lorry', 'phone', '2025-10-27 00:03:00+00:00']]
    """
    if not periods:
        raise ParameterError("no periods: the fixes table is empty")
    max_dt = pd.Timedelta(params.get("max_dt", pd.Timedelta("10min")))
    short = [p for p in periods if pd.Timedelta(p.reach_back) < max_dt]
    if short:
        raise ParameterError(f"a period reaches back {short[0].reach_back}, less than max_dt {max_dt}: "
                         "pairs across its start would be missed")
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # no distributed client: threads of this process
        found = list(dask_compute(*[dask_delayed(_pairs_of_period)(p, params) for p in periods]))
    else:
        futures = client.map(_pairs_of_period, list(periods), params=params, pure=False)
        found = []
        while futures:  # in order, each task's result released on the workers once here
            found.append(futures.pop(0).result())
    kept = [f for f in found if len(f)]
    pairs = pd.concat(kept, ignore_index=True) if kept else found[0]
    return _finish_pairs(pairs, unique=True, params=found[0].attrs.get("params"))


def _finish_pairs(pairs: pd.DataFrame, *, unique: bool = False,
                  params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Partition results (object columns, maybe duplicated unless ``unique``) as
    copresence_pairs returns them."""
    pairs = (pairs if unique else pairs.drop_duplicates(["fix_a", "fix_b"])).infer_objects()
    for c in ("t_a", "t_b"):
        pairs[c] = pd.to_datetime(pairs[c], utc=True)
    pairs["dt"] = pd.to_timedelta(pairs["dt"])
    for c in ("distance_m", "h_acc_a", "h_acc_b", "lat_a", "lon_a", "lat_b", "lon_b"):
        pairs[c] = pairs[c].astype(float)
    pairs["firm"] = pairs["firm"].astype(bool)
    pairs = pairs.sort_values(["subject_a", "subject_b", "t_a", "fix_a", "fix_b"], kind="mergesort")
    pairs = pairs.reset_index(drop=True)
    if params is not None:
        pairs.attrs["params"] = params
    return pairs
