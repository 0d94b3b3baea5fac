"""Fleet scale on Dask: the same stages over partitions, on a local or remote cluster.

The in-memory functions of :mod:`routetrace.routes.carparks` and
:mod:`routetrace.routes.copresence` are mapped over Dask partitions:

* **Car-park visits** are per subject: fixes are shuffled so each subject lies in one
  partition, each partition is processed by :func:`carpark_visits`, and the small visits
  table is then completed (others present, ids) on the client.
* **Co-presence** compares subjects: fixes are partitioned by time bucket (one day by
  default); each fix within ``max_dt`` of a bucket's end is also sent to the next bucket,
  so no pair across a boundary is missed; duplicate pairs are dropped.

The results equal the in-memory results (tested on a LocalCluster with 2 workers).

For a fleet-year that does not fit one machine: store the case's fixes as Parquet
partitioned by subject and day, start a Dask cluster (``dask scheduler`` + ``dask worker``
on each machine), pass ``scheduler="tcp://host:8786"`` (CLI ``--scheduler``), and read with
``dask.dataframe.read_parquet`` (see ``docs/fleet-scale.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask.dataframe as dd
import geopandas as gpd
import numpy as np
import pandas as pd

from .carparks import _VISIT_COLS, _attach_others, carpark_visits
from .copresence import copresence_pairs

__all__ = ["dask_carpark_visits", "dask_copresence_pairs", "dask_client"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int = 2,
                threads_per_worker: int = 1) -> Iterator[Any]:
    """A Dask client: to ``scheduler`` (``tcp://host:8786``) or to a new LocalCluster."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _as_ddf(fixes: pd.DataFrame | dd.DataFrame, npartitions: int) -> dd.DataFrame:
    if isinstance(fixes, dd.DataFrame):
        return fixes
    return dd.from_pandas(fixes, npartitions=max(1, npartitions), sort=False)


def dask_carpark_visits(
    fixes: pd.DataFrame | dd.DataFrame,
    geofences: gpd.GeoDataFrame,
    *,
    events: pd.DataFrame | None = None,
    npartitions: int = 4,
    **params: Any,
) -> pd.DataFrame:
    """:func:`carpark_visits` over Dask partitions by subject; same result, same columns."""
    ddf = _as_ddf(fixes, npartitions).shuffle("subject_id", npartitions=npartitions)

    def part(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _VISIT_COLS})
        ev = None if events is None else events[events["subject_id"].isin(df["subject_id"].unique())]
        v = carpark_visits(df.reset_index(drop=True), geofences, events=ev, **params)
        return v.astype(object)

    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in _VISIT_COLS})
    v = ddf.map_partitions(part, meta=meta).compute()
    if v.empty:
        return carpark_visits(fixes.head(0) if isinstance(fixes, pd.DataFrame) else fixes._meta,
                              geofences, events=events, **params)
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
    """:func:`copresence_pairs` over time-bucket partitions with a ``max_dt`` overlap."""
    max_dt = pd.Timedelta(params.get("max_dt", pd.Timedelta("10min")))
    if bucket <= max_dt:
        raise ValueError("bucket must be longer than max_dt")
    ddf = _as_ddf(fixes, npartitions)

    def assign(df: pd.DataFrame) -> pd.DataFrame:
        t = df["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
        b = t // bucket.value
        near_end = (t % bucket.value) >= bucket.value - max_dt.value
        main = df.assign(_bucket=b)
        spill = df[near_end].assign(_bucket=b[near_end] + 1)
        return pd.concat([main, spill], ignore_index=True)

    meta = ddf._meta.assign(_bucket=np.int64(0))
    tagged = ddf.map_partitions(assign, meta=meta).shuffle("_bucket", npartitions=npartitions)

    def part(df: pd.DataFrame) -> pd.DataFrame:
        frames = [copresence_pairs(g.drop(columns="_bucket").reset_index(drop=True), **params)
                  for _, g in df.groupby("_bucket", sort=True)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return copresence_pairs(df.drop(columns="_bucket").head(0), **params).astype(object)
        return pd.concat(frames, ignore_index=True).astype(object)

    pmeta = copresence_pairs(ddf._meta, **params).astype(object)
    pairs = tagged.map_partitions(part, meta=pmeta).compute()
    pairs = pairs.drop_duplicates(["fix_a", "fix_b"]).infer_objects()
    for c in ("t_a", "t_b"):
        pairs[c] = pd.to_datetime(pairs[c], utc=True)
    pairs["dt"] = pd.to_timedelta(pairs["dt"])
    for c in ("distance_m", "h_acc_a", "h_acc_b", "lat_a", "lon_a", "lat_b", "lon_b"):
        pairs[c] = pairs[c].astype(float)
    pairs["firm"] = pairs["firm"].astype(bool)
    pairs = pairs.sort_values(["subject_a", "subject_b", "t_a", "fix_a", "fix_b"], kind="mergesort")
    return pairs.reset_index(drop=True)
