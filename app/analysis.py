"""Case-level runs of the analysis stages: read the case's tables, run a stage, store the
result tables, figures and parameters back in the case. The CLI and the demo call these;
a notebook may call the stages in :mod:`routetrace.routes` directly instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from .. import schema
from ..case import open_case, writes_case
from ..csvout import write_csv
from ..errors import CaseError
from ..extras import require
from ..loaders.geofences import geofences_from_osm, load_geofences
from ..maps.patterns import plot_hour_of_week, plot_visits_timeline
from ..routes.carparks import (
    count_hour_of_week,
    find_carpark_visits,
    find_dwell_outliers,
    find_recurring_visitors,
    make_geofences_from_stops,
)
from ..routes.copresence import detect_copresence, find_copresence_pairs, group_meetings

__all__ = ["run_carparks", "run_chronology", "run_copresence"]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_timedelta64_dtype(out[c].dtype):
            out[c] = out[c].dt.total_seconds()
    return list(json.loads(out.to_json(orient="records", date_format="iso")))


@writes_case
def run_chronology(root: str | Path, *, radius_m: float = 100.0,
                   min_dwell: pd.Timedelta = pd.Timedelta("5min"),
                   max_gap: pd.Timedelta = pd.Timedelta("30min"), max_h_acc_m: float = 500.0,
                   place_eps_m: float = 150.0) -> pd.DataFrame:
    """clean → merge → stops (+ gaps) → trips → places → chronology on the case's tables.

    Stores ``stops``, ``trips``, ``gaps``, ``fix_stop_links`` (fix id → stop id and role),
    ``recurring_places``, ``places_merged`` (the places with copies in several sources kept
    once), ``portal_comparison`` (when the case holds portal stops) and
    ``chronology`` in the case, writes ``CASE/chronology.csv`` and records the parameters.
    Returns the chronology table.

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder (made by :func:`routetrace.app.ingest.ingest`).
    radius_m, min_dwell, max_gap, max_h_acc_m
        Passed to :func:`routetrace.routes.stops.detect_stops` (defaults 100 m, 5 min, 30 min,
        500 m, for the reasons given there); ``max_h_acc_m`` also to the trips.
    place_eps_m : float, default 150.0
        Passed as ``eps_m`` to :func:`routetrace.routes.places.cluster_places`.

    Returns
    -------
    pandas.DataFrame
        The chronology (see :func:`routetrace.routes.chronology.order_chronology`).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> ch = run_chronology(d / "case")
    >>> ch[["subject_id", "kind", "local_start"]].values.tolist()
    [['lorry', 'stop', '2025-10-26 22:00:00 CET (UTC+01:00)'],
     ['lorry', 'trip', '2025-10-26 22:09:00 CET (UTC+01:00)'],
     ['phone', 'stop', '2025-10-26 22:00:00 CET (UTC+01:00)']]
    >>> tmp.cleanup()
    """
    from ..routes import (
        build_trips,
        clean_fixes,
        cluster_places,
        compare_portal_stops,
        detect_stops,
        merge_places,
        merge_sources,
        order_chronology,
    )

    case = open_case(root)
    fixes, events, places = case.table("fixes"), case.table("events"), case.table("places")
    if fixes.empty:
        raise CaseError("the case has no fixes; ingest evidence first", path=str(case.root))
    fused = merge_sources(clean_fixes(fixes))
    linked, stops = detect_stops(fused, radius_m=radius_m, min_dwell=min_dwell, max_gap=max_gap,
                                 max_h_acc_m=max_h_acc_m, events=events)
    gaps = stops.attrs["gaps"]
    trips = build_trips(fused, stops, gaps=gaps, max_h_acc_m=max_h_acc_m)
    _, recurring = cluster_places(stops, eps_m=place_eps_m)
    chrono = order_chronology(stops, trips, gaps)
    case.write_table("stops", stops)
    case.write_table("trips", trips)
    case.write_table("gaps", gaps)
    in_stop = linked[linked["stop_id"].notna()]
    links = pd.DataFrame({"fix_id": schema.fix_ids(in_stop), "stop_id": in_stop["stop_id"],
                          "stop_role": in_stop["stop_role"]})
    case.write_table("fix_stop_links", links.reset_index(drop=True))
    case.write_table("recurring_places", recurring)
    case.write_table("places_merged", merge_places(places))
    if len(places) and (places["kind"].astype(str) == "portal_stop").any():
        case.write_table("portal_comparison", compare_portal_stops(stops, places))
    case.write_table("chronology", chrono)
    write_csv(chrono, case.stage_output("chronology.csv"))
    case.set_parameters("stops", {**stops.attrs["params"], "place_eps_m": place_eps_m,
                                  "cleaning": fused.attrs.get("params", {})})
    case.record_outputs()
    return chrono


@writes_case
def run_copresence(root: str | Path, *, radius_m: float = 100.0,
                   max_dt: pd.Timedelta = pd.Timedelta("10min"), dask: bool = False,
                   scheduler: str | None = None) -> dict[str, Any]:
    """Run co-presence on the case's fixes; store ``copresence_pairs`` and ``meetings``.

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder (made by :func:`routetrace.app.ingest.ingest`).
    radius_m : float, default 100.0
        Co-presence distance in metres (see :func:`routetrace.routes.copresence.find_copresence_pairs`).
    max_dt : pandas.Timedelta, default 10 min
        Largest time difference of a co-present pair, and longest pause inside a meeting.
    dask : bool, default False
        Compute the pairs on a local Dask cluster (needs the ``fleet`` extra); the result is the
        same.
    scheduler : str, optional
        Address of a running Dask scheduler (implies ``dask``); default None.

    Returns
    -------
    dict
        ``meetings`` (one dict per meeting, as stored) and ``n_pairs`` (number of co-present
        fix pairs).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> summary = run_copresence(d / "case")
    >>> summary["n_pairs"], [(m["subject_a"], m["subject_b"]) for m in summary["meetings"]]
    (100, [('lorry', 'phone')])
    >>> tmp.cleanup()
    """
    case = open_case(root)
    if dask or scheduler:
        require("dask.distributed", extra="fleet", purpose="--dask co-presence")
        from ..routes.distributed import STAGE_COLUMNS, dask_client, dask_copresence_by_period

        # one task per UTC day, reading only the parts that overlap the day and the max_dt
        # before it (no shuffle); the client reads the parts' footers, never the fixes
        days = case.time_slices("fixes", reach_back=max_dt, columns=STAGE_COLUMNS)
        if days:
            with dask_client(scheduler):
                pairs = dask_copresence_by_period(days, radius_m=radius_m, max_dt=max_dt)
        else:
            pairs = find_copresence_pairs(schema.empty("fixes"), radius_m=radius_m, max_dt=max_dt)
        meetings = group_meetings(pairs, max_dt=max_dt)
    else:
        pairs, meetings = detect_copresence(case.table("fixes"), radius_m=radius_m, max_dt=max_dt)
    case.write_table("copresence_pairs", pairs)
    case.write_table("meetings", meetings)
    case.set_parameters("copresence", {**pairs.attrs.get("params", {}), "dask": bool(dask or scheduler)})
    case.record_outputs()
    return {"meetings": _records(meetings), "n_pairs": len(pairs)}


@writes_case
def run_carparks(root: str | Path, *, geofences: str | Path | None = None,
                 osm: str | Path | None = None, dask: bool = False,
                 scheduler: str | None = None) -> dict[str, Any]:
    """Run car-park visits and patterns on the case; store tables and figures.

    The tables are written only after every figure was drawn: a stage that fails leaves
    the case as it was (``routetrace verify`` still matches).

    Geofences come from ``geofences`` (a file), ``osm`` (an extract), or — when neither is
    given — from clusters of the case's stops (run the chronology first).

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder (made by :func:`routetrace.app.ingest.ingest`).
    geofences : str or pathlib.Path, optional
        A geofence file (GeoJSON, KML, GeoPackage) drawn by the investigator.
    osm : str or pathlib.Path, optional
        An OpenStreetMap extract the user supplies (its car parks and rest areas); nothing is
        downloaded.
    dask : bool, default False
        Compute the visits on a local Dask cluster (needs the ``fleet`` extra).
    scheduler : str, optional
        Address of a running Dask scheduler (implies ``dask``); default None.

    Returns
    -------
    dict
        ``n_visits``, ``n_geofences``, ``geofence_source`` (where the geofences came from),
        ``n_night_door`` and ``night_door_visits`` (visits with a door opened at night), and
        ``figures`` (paths of the figures drawn).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> _ = run_chronology(d / "case")  # the stops propose the geofences
    >>> summary = run_carparks(d / "case")
    >>> summary["n_geofences"], summary["n_visits"], summary["geofence_source"]
    (1, 2, 'proposed from clusters of stops')
    >>> tmp.cleanup()
    """
    case = open_case(root)
    if geofences:
        fences = load_geofences(geofences)
        source = f"file {Path(geofences).name}"
    elif osm:
        fences = geofences_from_osm(osm)
        source = f"OSM extract {Path(osm).name}"
    else:
        stops = case.table("stops")
        if stops.empty:
            raise CaseError("no geofences given and the case has no stops to propose car parks "
                            "from: pass --geofences FILE or --osm FILE, or run `routetrace "
                            "chronology` first", path=str(case.root))
        fences = make_geofences_from_stops(stops)
        source = "proposed from clusters of stops"
    if dask or scheduler:
        require("dask.distributed", extra="fleet", purpose="--dask car-park visits")
        from ..routes.distributed import STAGE_COLUMNS, dask_carpark_visits, dask_client

        with dask_client(scheduler):  # the workers read their subjects' fixes and events from the store
            t = case.dask_tables_by_subject(["fixes", "events"], columns={"fixes": STAGE_COLUMNS})
            visits = dask_carpark_visits(t["fixes"], fences, events=t["events"], shuffle=False)
    else:
        visits = find_carpark_visits(case.table("fixes"), fences, events=case.table("events"))
    case.write_table("geofences", pd.DataFrame({
        "name": fences["name"].astype(str), "source": fences["source"].astype(str),
        "wkt": gpd.GeoSeries(fences.geometry).to_wkt()}))
    case.write_table("carpark_visits", visits)
    how = count_hour_of_week(visits)
    case.write_table("carpark_hour_of_week", how)
    case.write_table("carpark_recurring", find_recurring_visitors(visits))
    case.write_table("carpark_unusual_dwell", find_dwell_outliers(visits))
    figs = [case.root / "figures" / n for n in ("carparks_hour_of_week.png", "carparks_hour_of_week.svg",
                                                 "carparks_visits_timeline.png")]
    plot_hour_of_week(how, case.stage_output("figures/carparks_hour_of_week.png"))
    plot_hour_of_week(how, case.stage_output("figures/carparks_hour_of_week.svg"))
    plot_visits_timeline(visits, case.stage_output("figures/carparks_visits_timeline.png"))
    case.set_parameters("carparks", {**visits.attrs.get("params", {}), "geofences": source})
    case.record_outputs()
    night_door = visits[visits["night"] & (visits["door_open"] > 0)]
    return {"n_visits": len(visits), "n_geofences": len(fences), "geofence_source": source,
            "n_night_door": len(night_door), "night_door_visits": _records(night_door),
            "figures": [str(p) for p in figs]}
