"""Car-park visits, geofences, patterns, figures and the Dask path, on the sample scenario."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from routetrace import schema
from routetrace.loaders.geofences import geofences_from_osm, load_geofences
from routetrace.maps.patterns import plot_hour_of_week, plot_visits_timeline
from routetrace.routes.carparks import (
    count_hour_of_week,
    find_carpark_visits,
    find_dwell_outliers,
    find_recurring_visitors,
    make_geofences_from_stops,
)
from routetrace.routes.copresence import detect_copresence
from routetrace.samples.scenario import PLACES, build_scenario
from routetrace.testing import make_fixes

CARPARKS = [n for n in PLACES if n.endswith("carpark")]


def _fences() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": CARPARKS}, crs="EPSG:4326", geometry=[
        shapely.Point(PLACES[n][1], PLACES[n][0]).buffer(0.0025) for n in CARPARKS])


@pytest.fixture(scope="module")
def scenario_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    sc = build_scenario(7)
    frames = [make_fixes(subject_id=s, t_utc=tr["t_utc"], lat=tr["lat"], lon=tr["lon"],
                         h_acc_m=tr["h_acc_m"], fix_kind=tr["fix_kind"].tolist(),
                         source_id=f"{i:016d}" * 4)
              for i, (s, tr) in enumerate(sorted(sc.tracks.items()))]
    fixes = pd.concat(frames, ignore_index=True)
    ev = schema.coerce(sc.events.assign(source_id="e" * 64, record=[f"ev{i}" for i in range(len(sc.events))]),
                       "events")
    return fixes, ev


def test_night_visit_with_door_and_phone_is_found_and_innocent_lorry_is_not_linked(
        scenario_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fixes, ev = scenario_tables
    v = find_carpark_visits(fixes, _fences(), events=ev)
    wet = v[(v["geofence"] == "wetteren_carpark") & ~v["pass_through"]]
    l1 = wet[wet["subject_id"] == "lorry-1"].iloc[0]
    assert l1["door_open"] == 1 and l1["door_close"] == 1 and l1["ignition_off"] == 1
    assert bool(l1["night"]) and "phone-A" in l1["others_present"].split("|")
    assert l1["event_ids"].count("|") == 3  # four events behind the row
    l2 = wet[wet["subject_id"] == "lorry-2"].iloc[0]
    assert l2["others_present"] == "" and l2["door_open"] == 0 and not bool(l2["night"])
    # the local entry hour is DST-correct (26 Oct 2025 is CET, UTC+1)
    assert l1["t_entry"].tz_convert(l1["local_tz"]).utcoffset() == pd.Timedelta(hours=1)
    # co-presence of the lorry and phone-A at the car park, and none with lorry-2
    _, meetings = detect_copresence(fixes)
    pairs = {(m.subject_a, m.subject_b) for m in meetings.itertuples()}
    assert ("lorry-1", "phone-A") in pairs
    assert not {p for p in pairs if "lorry-2" in p}


def test_accuracy_aware_membership() -> None:
    fence = gpd.GeoDataFrame({"name": ["P"]}, crs="EPSG:4326",
                             geometry=[shapely.Point(3.87, 51.0).buffer(0.0004)])  # ~28 m radius
    f = make_fixes(subject_id=["gps", "wifi", "cell", "near"],
                   t_utc=["2025-10-26T21:00Z"] * 4, lat=[51.0, 51.0, 51.0, 51.0006], lon=3.87,
                   h_acc_m=[5.0, 300.0, 1500.0, 60.0])
    v = find_carpark_visits(f, fence).set_index("subject_id")
    assert v.loc["gps", "n_inside"] == 1 and not v.loc["gps", "uncertain"]
    assert v.loc["wifi", "uncertain"] and v.loc["wifi", "n_inside"] == 0  # 300 m circle > car park
    assert "cell" not in v.index  # 1500 m: evidence of an area, not used
    assert v.loc["near", "uncertain"]  # outside, but its circle reaches in


def test_unobserved_time_inside_a_visit_is_not_dwell() -> None:
    fence = gpd.GeoDataFrame({"name": ["P"]}, crs="EPSG:4326", geometry=[shapely.box(3.86, 50.99, 3.88, 51.01)])
    f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T18:00Z", "2025-10-26T18:01Z", "2025-10-26T20:00Z"],
                   lat=51.0, lon=3.87, h_acc_m=5.0)
    v = find_carpark_visits(f, fence).iloc[0]
    assert v["dwell"] == pd.Timedelta("2h") and v["unobserved"] == pd.Timedelta("119min")
    assert v["dwell_observed"] == pd.Timedelta("1min")


def test_geofence_files(tmp_path: Path) -> None:
    g = _fences()
    g.to_file(tmp_path / "f.geojson", driver="GeoJSON")
    g.to_file(tmp_path / "f.gpkg", driver="GPKG")
    g.to_file(tmp_path / "f.kml", driver="KML")
    for name in ("f.geojson", "f.gpkg", "f.kml"):
        loaded = load_geofences(tmp_path / name)
        assert sorted(loaded["name"]) == sorted(CARPARKS)
    gpd.GeoDataFrame({"name": ["pt"]}, geometry=[shapely.Point(3, 51)], crs="EPSG:4326").to_file(
        tmp_path / "p.geojson", driver="GeoJSON")
    with pytest.raises(Exception, match="no polygon"):
        load_geofences(tmp_path / "p.geojson")


def test_osm_extract(tmp_path: Path) -> None:
    osmium = pytest.importorskip("osmium")
    path = tmp_path / "e40.osm.pbf"
    ring = [(3.869, 50.999), (3.871, 50.999), (3.871, 51.001), (3.869, 51.001)]
    with osmium.SimpleWriter(str(path)) as w:
        for i, (x, y) in enumerate(ring, start=1):
            w.add_node(osmium.osm.mutable.Node(id=i, location=(x, y), version=1))
            w.add_node(osmium.osm.mutable.Node(id=10 + i, location=(x + 0.01, y), version=1))
        w.add_way(osmium.osm.mutable.Way(id=100, nodes=[1, 2, 3, 4, 1], version=1,
                                         tags={"amenity": "parking", "name": "Parking Wetteren"}))
        w.add_way(osmium.osm.mutable.Way(id=101, nodes=[11, 12, 13, 14, 11], version=1,
                                         tags={"landuse": "farmland"}))
    fences = geofences_from_osm(path)
    assert fences["name"].tolist() == ["Parking Wetteren"]
    assert fences.attrs["skipped"] == []  # every tagged area was assembled
    assert fences.geometry.iloc[0].contains(shapely.Point(3.870, 51.0))


def test_auto_geofences_from_stops() -> None:
    rows = []
    for i, (lat, lon) in enumerate([(51.0, 3.87), (51.0003, 3.8702), (50.9998, 3.8699), (51.33, 3.2)]):
        rows.append({"subject_id": f"l{i}", "stop_id": f"s{i}", "t_arrival": pd.Timestamp("2025-10-26T20:00Z"),
                     "t_departure": pd.Timestamp("2025-10-26T21:00Z"), "dwell": pd.Timedelta("1h"),
                     "lat": lat, "lon": lon, "radius_m": 20.0, "n_fixes": 5, "sources": "x",
                     "observed_fraction": 1.0, "flags": ""})
    stops = schema.coerce(pd.DataFrame(rows), "stops")
    fences = make_geofences_from_stops(stops, eps_m=100, min_stops=2)
    assert fences["name"].tolist() == ["auto-1"]
    assert fences.geometry.iloc[0].contains(shapely.Point(3.87, 51.0))


def test_patterns_and_deterministic_figures(scenario_tables: tuple[pd.DataFrame, pd.DataFrame],
                                           tmp_path: Path) -> None:
    fixes, ev = scenario_tables
    v = find_carpark_visits(fixes, _fences(), events=ev)
    how = count_hour_of_week(v)
    wet = how[how["geofence"] == "wetteren_carpark"]
    assert wet["visits"].sum() == (v["geofence"] == "wetteren_carpark").sum()
    rec = find_recurring_visitors(v)
    assert set(zip(rec["geofence"], rec["subject_id"], strict=True)) >= {("wetteren_carpark", "phone-A")}
    many = pd.concat([v.assign(dwell_observed=pd.Timedelta(minutes=10 + i % 3)) for i in range(6)])
    many.iloc[0, many.columns.get_loc("dwell_observed")] = pd.Timedelta("6h")
    assert len(find_dwell_outliers(many)) >= 1
    for suffix in (".png", ".svg"):
        a = plot_hour_of_week(how, tmp_path / f"a{suffix}")
        b = plot_hour_of_week(how, tmp_path / f"b{suffix}")
        assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 1000
    t1 = plot_visits_timeline(v, tmp_path / "t1.png")
    t2 = plot_visits_timeline(v, tmp_path / "t2.png")
    assert t1.read_bytes() == t2.read_bytes()


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_dask_equals_in_memory(scenario_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from routetrace.routes.copresence import find_copresence_pairs
    from routetrace.routes.distributed import (
        dask_carpark_visits,
        dask_client,
        dask_copresence_pairs,
    )

    fixes, ev = scenario_tables
    mem_v = find_carpark_visits(fixes, _fences(), events=ev)
    mem_p = find_copresence_pairs(fixes)
    with dask_client(n_workers=2):
        dv = dask_carpark_visits(fixes, _fences(), events=ev, npartitions=3)
        dp = dask_copresence_pairs(fixes, npartitions=3, bucket=pd.Timedelta("6h"))
    pd.testing.assert_frame_equal(dv.reset_index(drop=True), mem_v.reset_index(drop=True), check_dtype=False)
    assert dp[["fix_a", "fix_b"]].values.tolist() == mem_p[["fix_a", "fix_b"]].values.tolist()
    assert np.allclose(dp["distance_m"], mem_p["distance_m"])


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_dask_dataframe_input_and_no_client_equal_in_memory(
        scenario_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """The shuffle path (Dask DataFrame input) and the no-cluster path give the same rows."""
    import dask.dataframe as dd

    from routetrace.routes.copresence import find_copresence_pairs
    from routetrace.routes.distributed import (
        dask_carpark_visits,
        dask_client,
        dask_copresence_pairs,
    )

    fixes, ev = scenario_tables
    mem_v = find_carpark_visits(fixes, _fences(), events=ev).reset_index(drop=True)
    mem_p = find_copresence_pairs(fixes)[["fix_a", "fix_b"]].values.tolist()
    with dask_client(n_workers=2):
        ddf = dd.from_pandas(fixes, npartitions=3, sort=False)
        dv = dask_carpark_visits(ddf, _fences(), events=ev, npartitions=2)
        dp = dask_copresence_pairs(ddf, npartitions=2, bucket=pd.Timedelta("6h"))
    pd.testing.assert_frame_equal(dv.reset_index(drop=True), mem_v, check_dtype=False)
    assert dp[["fix_a", "fix_b"]].values.tolist() == mem_p
    # no distributed client running: Dask's default scheduler, same result
    lv = dask_carpark_visits(fixes, _fences(), events=ev, npartitions=5)
    lp = dask_copresence_pairs(fixes, npartitions=7)
    pd.testing.assert_frame_equal(lv.reset_index(drop=True), mem_v, check_dtype=False)
    assert lp[["fix_a", "fix_b"]].values.tolist() == mem_p


def test_split_by_time_keeps_every_close_pair_together_and_split_by_subject_keeps_subjects_whole() -> None:
    from routetrace.routes.distributed import split_by_subject, split_by_time

    rng = np.random.default_rng(3)
    n = 400
    t = pd.Timestamp("2025-10-26T00:00Z") + pd.to_timedelta(np.sort(rng.integers(0, 6 * 3600, n)), unit="s")
    f = make_fixes(subject_id=[f"s{i}" for i in rng.integers(0, 7, n)], t_utc=t, lat=51.0, lon=3.9)
    max_dt = pd.Timedelta("10min")
    parts = split_by_time(f, 6, overlap=max_dt)
    assert len(parts) > 1 and set().union(*(set(p.index) for p in parts)) == set(f.index)
    where: dict[int, set[int]] = {}
    for k, p in enumerate(parts):
        for i in p.index:
            where.setdefault(i, set()).add(k)
    ts = f["t_utc"].to_numpy()
    close = np.argwhere(np.abs(ts[:, None] - ts[None, :]) <= max_dt.to_timedelta64())
    assert len(close) > n  # the check has pairs to look at
    for i, j in close:
        assert where[int(i)] & where[int(j)], (i, j)
    groups = split_by_subject(f, 3)
    assert sum(len(g) for g in groups) == n
    seen = [set(g["subject_id"]) for g in groups]
    assert all(not (a & b) for k, a in enumerate(seen) for b in seen[k + 1:])


def test_others_present_equals_all_pairs_reference() -> None:
    """The sweep that fills others_present equals an all-pairs merge on random visits."""
    from routetrace.routes.carparks import _attach_others

    rng = np.random.default_rng(5)
    n = 600
    t0 = pd.Timestamp("2025-10-26T00:00Z")
    entry = t0 + pd.to_timedelta(rng.integers(0, 48 * 60, n), unit="min")
    dur = pd.to_timedelta(np.where(rng.random(n) < 0.05, rng.integers(600, 3000, n), rng.integers(0, 90, n)),
                          unit="min")
    v = pd.DataFrame({"geofence": rng.choice(["P1", "P2", "P3"], n),
                      "subject_id": rng.choice([f"lorry-{i}" for i in range(25)], n),
                      "t_entry": entry, "t_exit": entry + dur})
    got = _attach_others(v.copy())["others_present"].tolist()
    base = v.reset_index(names="visit")
    m = base.merge(base, on="geofence", suffixes=("", "_o"))
    m = m[(m["subject_id"] != m["subject_id_o"]) & (m["t_entry_o"] <= m["t_exit"]) & (m["t_exit_o"] >= m["t_entry"])]
    ref = m.groupby("visit")["subject_id_o"].agg(lambda x: "|".join(sorted(set(x))))
    want = [ref.get(i, "") for i in range(n)]
    assert sum(bool(w) for w in want) > n // 2  # plenty of overlaps to compare
    assert got == want


def test_packing_for_the_workers_round_trips() -> None:
    from routetrace.routes.distributed import _SENT, _pack, _unpack

    n = 5000
    f = make_fixes(subject_id=[f"lorry-{i % 3}" for i in range(n)],
                   t_utc=pd.date_range("2025-10-26T00:00Z", periods=n, freq="10s"), lat=51.0, lon=3.9,
                   h_acc_m=5.0, flags=["" if i % 7 else "hint" for i in range(n)])
    # the canonical table is already dictionary-encoded (schema.DICTIONARY): sent as it is
    packed, restore = _pack(f)
    assert restore == {}
    pd.testing.assert_frame_equal(_unpack(packed.iloc[100:900], restore),
                                  f[list(_SENT)].iloc[100:900].reset_index(drop=True))
    # the same columns as plain text (as a stage may return them): packed, then restored
    f = f.astype({c: "string" for c in ("subject_id", "source_id", "fix_kind", "flags")})
    packed, restore = _pack(f)
    assert {"subject_id", "source_id", "fix_kind", "flags"} <= set(restore)  # repetitive: packed
    assert "record" not in restore  # unique per row: sent as is
    assert packed.memory_usage(deep=True).sum() < f[list(_SENT)].memory_usage(deep=True).sum() / 2
    pd.testing.assert_frame_equal(_unpack(packed.iloc[100:900], restore),
                                  f[list(_SENT)].iloc[100:900].reset_index(drop=True))


def _dask_dataframe_imported() -> bool:
    import sys

    return "dask.dataframe.backends" in sys.modules


class _Pickles:
    """Counts how often it is pickled (in this process: the client and the LocalCluster's
    scheduler); unpickles as a plain 0, so a worker needs no import of this module."""

    n = 0

    def __reduce__(self) -> tuple[type, tuple[()]]:
        _Pickles.n += 1
        return (int, ())


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_the_events_are_sent_once_whatever_the_number_of_tasks(
        scenario_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """The car-park stage hands the events table to every task. Closed over by the task
    function, it was serialized with every task (a fleet's events, once per partition);
    scattered, it is serialized the same few times for 4 tasks as for 24. A marker in the
    table's ``attrs`` counts the serializations; a closure over the same table is counted
    too, so the probe is shown to see per-task copies."""
    import dask.dataframe as dd

    from routetrace.routes.distributed import dask_carpark_visits, dask_client

    fixes, ev = scenario_tables
    ev = ev.copy()
    ev.attrs["probe"] = _Pickles()
    def pickles(run: Any) -> int:
        _Pickles.n = 0
        assert len(run())
        return _Pickles.n

    def closure(ddf: Any) -> pd.DataFrame:
        return ddf.map_partitions(lambda df: pd.DataFrame({"n": [len(ev)]}), meta={"n": "int64"}).compute()

    counts: dict[tuple[str, int], int] = {}
    with dask_client(n_workers=2):
        for k in (4, 24):
            ddf = dd.from_pandas(fixes, npartitions=k, sort=False)
            counts["dask", k] = pickles(partial(dask_carpark_visits, ddf, _fences(), events=ev, npartitions=k))
            counts["pandas", k] = pickles(partial(dask_carpark_visits, fixes, _fences(), events=ev,
                                                  npartitions=k))
            counts["closure", k] = pickles(partial(closure, ddf))
    assert counts["closure", 24] >= counts["closure", 4] + 20, counts  # the probe sees each task
    # a few (scattering, tokenizing), the same for 4 tasks as for 24
    assert counts["dask", 24] == counts["dask", 4] <= 16, counts
    assert counts["pandas", 24] == counts["pandas", 4] <= 16, counts


@pytest.mark.allow_loopback
@pytest.mark.slow
def test_every_worker_of_dask_client_can_unpack_a_shuffle() -> None:
    """A worker process spawned under pytest (or any ``__main__`` that does not import
    ``dask.dataframe``) has no pandas implementation of Dask's dispatches until something
    imports ``dask.dataframe`` there; a P2P shuffle output unpacked on such a worker failed
    with ``No dispatch for <class 'pandas.DataFrame'>`` (a CI failure, now and then).
    ``dask_client`` registers a plugin that imports it on every worker."""
    from routetrace.routes.distributed import dask_client

    with dask_client(n_workers=2) as client:
        imported = client.run(_dask_dataframe_imported)
    assert len(imported) == 2 and all(imported.values()), imported


@pytest.mark.allow_loopback
def test_a_shuffle_joins_partitions_whose_dictionaries_together_outgrow_int8() -> None:
    """Store parts carry their own dictionaries (a few sources and subjects each: int8 codes);
    a P2P shuffle joins shards of 200 sources, more texts than int8 codes can index (Arrow:
    "The unified dictionary requires a larger index type", the fleet benchmark at 1e7)."""
    import dask.dataframe as dd

    from routetrace.routes.copresence import find_copresence_pairs
    from routetrace.routes.distributed import (
        dask_carpark_visits,
        dask_client,
        dask_copresence_pairs,
    )

    t = pd.date_range("2025-10-26T21:00Z", periods=3, freq="2min")
    # 100 pairs of lorries, each pair together, the pairs about 1.1 km apart
    parts = [make_fixes(subject_id=f"lorry-{i:03d}", t_utc=t, lat=51.0 + (i // 2) * 0.01,
                        lon=3.87 + (i % 2) * 0.0002, h_acc_m=5.0, source_id=f"{i:016x}" * 4)
             for i in range(200)]
    assert all(isinstance(p["source_id"].dtype, pd.CategoricalDtype) for p in parts)
    whole = schema.concat(parts, "fixes")
    # 50 partitions of 4 sources each: 200 texts in all, int8 codes in each
    ddf = dd.from_map(lambda k: schema.concat(parts[4 * k:4 * k + 4], "fixes"), range(50),
                      meta=parts[0].head(0))
    fence = gpd.GeoDataFrame({"name": ["yard"]}, crs="EPSG:4326",
                             geometry=[shapely.Point(3.871, 51.0001).buffer(0.01)])
    with dask_client(n_workers=2):
        pairs = dask_copresence_pairs(ddf, npartitions=3)
        visits = dask_carpark_visits(ddf, fence, npartitions=3)
    want = find_copresence_pairs(whole)
    assert len(want) >= 100
    assert pairs[["fix_a", "fix_b"]].values.tolist() == want[["fix_a", "fix_b"]].values.tolist()
    pd.testing.assert_frame_equal(visits.reset_index(drop=True),
                                  find_carpark_visits(whole, fence).reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.parametrize("seed", range(5))
def test_the_box_prefilter_keeps_every_fix_the_fence_query_would_find(seed: int) -> None:
    """Only fixes near a fence's box become points for the fence query: each usable fix the
    query would find among all fixes must be among them (large accuracies, high latitudes)."""
    from routetrace.routes.carparks import _near_boxes

    rng = np.random.default_rng(seed)
    n = 20_000
    lat, lon = rng.uniform(40.0, 80.0, n), rng.uniform(-5.0, 25.0, n)
    acc = rng.choice([0.0, 20.0, 500.0, 5000.0], n)
    usable = rng.random(n) < 0.9
    centres = rng.uniform([-5.0, 40.0], [25.0, 80.0], (30, 2))
    fences = shapely.buffer(shapely.points(centres[:, 0], centres[:, 1]), rng.uniform(0.001, 0.3, 30))
    reach = (acc + 1.0) / 111_320.0 / np.maximum(np.cos(np.radians(lat)), 0.05)
    hit, _ = shapely.STRtree(fences).query(shapely.points(lon, lat), predicate="dwithin", distance=reach)
    want = np.unique(hit[usable[hit]])
    got = _near_boxes(lat, lon, usable, shapely.bounds(fences), float(reach[usable].max()))
    assert len(want) > 20 and np.isin(want, got).all() and usable[got].all()
    assert np.all(np.diff(got) > 0) and len(got) < n


def test_visits_of_a_table_concatenated_from_parts_cite_the_derived_fix_ids() -> None:
    """A table concatenated from parts holds its text columns in several Arrow chunks: the
    visits' ``fix_ids`` are still each visit's fixes' derived ids, in time order."""
    import pyarrow as pa

    parts = [make_fixes(t_utc=pd.date_range(f"2025-03-01T10:0{k}:20Z", periods=20, freq="1min"),
                        lat=50.0, lon=4.0, subject_id=s, source_id=str(k) * 64, h_acc_m=5.0)
             for k, s in enumerate("ab")]
    fixes = pd.concat(parts, ignore_index=True)
    assert isinstance(pa.array(schema.fix_ids(fixes).array), pa.ChunkedArray)
    fence = gpd.GeoDataFrame({"name": ["P1"]}, geometry=[shapely.Point(4.0, 50.0).buffer(0.001)],
                             crs="EPSG:4326")
    v = find_carpark_visits(fixes, fence)
    assert list(v["subject_id"]) == ["a", "b"] and list(v["others_present"]) == ["b", "a"]
    for part, ids in zip(parts, v["fix_ids"], strict=True):
        assert ids.split("|") == list(schema.fix_ids(part))


@pytest.mark.parametrize("slack_min", [0, 2, 90])
def test_visit_events_equal_an_all_pairs_reference(slack_min: int) -> None:
    """Each visit's event counts and ``event_ids`` (found by bisection in each subject's
    sorted events) equal a merge of every visit with every event of its subject, filtered to
    the slack and ordered by time then id; events at equal times, of two sources, given in
    shuffled order, and an event of a subject with no visit included."""
    from routetrace.routes.carparks import _attach_events

    rng = np.random.default_rng(slack_min)
    n_v, n_e = 400, 3000
    t0 = pd.Timestamp("2025-10-26T00:00Z")
    subjects = [f"lorry-{i}" for i in range(12)]
    entry = t0 + pd.to_timedelta(rng.integers(0, 14 * 24 * 60, n_v), unit="min")
    v = pd.DataFrame({"subject_id": rng.choice(subjects, n_v), "t_entry": entry,
                      "t_exit": entry + pd.to_timedelta(rng.integers(0, 600, n_v), unit="min")})
    kinds = ["ignition_on", "ignition_off", "door_open", "door_close", "fuel_drop"]
    t_ev = t0 + pd.to_timedelta(rng.integers(0, 14 * 24 * 60, n_e), unit="min")  # whole minutes: ties
    events = pd.DataFrame({"subject_id": rng.choice([*subjects, "no-visit"], n_e), "t_utc": t_ev,
                           "kind": rng.choice(kinds, n_e), "source_id": rng.choice(["a" * 64, "b" * 64], n_e),
                           "record": [f"line {i}" for i in range(n_e)]}).sample(frac=1, random_state=1)
    slack = pd.Timedelta(minutes=slack_min)
    got, doors = _attach_events(v.copy(), events, slack)

    ev = events[events["kind"] != "fuel_drop"]
    ev = ev.assign(event_id=schema.event_ids(ev))
    m = v.reset_index(names="visit").merge(ev, on="subject_id")
    m = m[(m["t_utc"] >= m["t_entry"] - slack) & (m["t_utc"] <= m["t_exit"] + slack)]
    m = m.sort_values(["visit", "t_utc", "event_id"], kind="mergesort")
    ids = m.groupby("visit")["event_id"].agg("|".join)
    assert list(got["event_ids"]) == [ids.get(i, "") for i in range(n_v)]
    for k in kinds[:4]:
        want = m[m["kind"] == k].groupby("visit").size()
        assert list(got[k]) == [int(want.get(i, 0)) for i in range(n_v)], k
    want_doors = m.loc[m["kind"] == "door_open", ["visit", "t_utc"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(doors.reset_index(drop=True), want_doors, check_dtype=False)
    assert (got["event_ids"] != "").sum() > n_v // 4 and m.duplicated(["visit", "t_utc"]).any()
