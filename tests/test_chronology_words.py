"""The chronology a jury reads (#17): names not ids, times in words with their bounds, one
duration format, one local-time formatter, parameters in words, GeoNames towns offline."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routetrace.app.analysis import run_chronology
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.localtime import fmt_duration, fmt_local
from routetrace.maps.chronology import build_chronology
from routetrace.maps.footer import ExhibitMeta, flatten_params, render_footer
from routetrace.maps.gazetteer import GEONAMES_ATTRIBUTION, named_places, nearest_place
from routetrace.samples import generate

GROOT_BIJGAARDEN = (50.875, 4.26)


@pytest.fixture(scope="module")
def sample_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("words")
    for f in generate(tmp / "s"):
        ingest(tmp / "case", [tmp / "s" / f.path], subject_id=f.subject_id, tz=f.tz, format=f.format)
    run_chronology(tmp / "case")
    case = open_case(tmp / "case")
    return {n: case.table(n) for n in ("stops", "gaps", "places", "sources", "events")}


def test_near_column_names_places_never_ids(sample_case: dict[str, pd.DataFrame]) -> None:
    d = sample_case
    ch = build_chronology(d["stops"], d["gaps"], d["places"], d["sources"])
    stops = ch[ch["row_kind"] == "stop"]
    ids = set(d["places"]["place_id"].astype(str)) | set(d["places"]["name"].dropna().astype(str))
    keys = {i for i in ids if re.fullmatch(r"\S*[_:/=]\S*", i)}  # ids and snake_case keys
    assert keys, "the sample case has internal ids to keep out"
    for near in stops["near_place"]:
        assert near, "every sample stop is near something named"
        assert not any(k in near for k in keys), near
    # the ids are not lost: they moved to the sources column
    assert stops["sources"].str.contains("places within reach: ", regex=False).all()
    assert stops["sources"].str.contains("groot_bijgaarden_carpark", regex=False).any()
    # every stop at the Groot-Bijgaarden car park names the village, with its municipality
    d_km = np.hypot(stops["lat"] - GROOT_BIJGAARDEN[0], (stops["lon"] - GROOT_BIJGAARDEN[1]) * 0.63) * 111
    at_gb = stops[d_km < 0.5]
    assert len(at_gb) >= 3
    assert at_gb["near_place"].str.startswith("Groot-Bijgaarden (Dilbeek), 0.").all(), at_gb["near_place"].tolist()
    # a place a witness indicated names the stop, and says so
    assert stops["near_place"].str.contains("(indicated in a statement)", regex=False).any()


def test_times_in_words_with_bounds(sample_case: dict[str, pd.DataFrame]) -> None:
    d = sample_case
    ch = build_chronology(d["stops"], d["gaps"], d["places"], d["sources"], events=d["events"])
    stops = ch[ch["row_kind"] == "stop"]
    st = d["stops"].set_index("stop_id")
    for r in stops.itertuples():
        s = st.loc[r.id]
        if pd.isna(s["t_arrival_after"]):
            assert r.arrival.startswith("arrived by ") and "record begins" in r.arrival
        else:
            assert re.fullmatch(r"arrived (between [-\d: ]+ and [-\d: ]+|at [-\d: ]+)", r.arrival), r.arrival
            assert r.arrival_after_utc == s["t_arrival_after"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert r.departure.startswith("left ")
        assert r.dwell_range.startswith(f"at least {fmt_duration(s['dwell'])} observed"
                                        if s["dwell"] >= pd.Timedelta("1min") else "observed only at isolated fixes (")
    # a stop that spans silences spells them out instead of a bare flag
    spans = stops[stops["flags"].str.contains("spans_gap")]
    assert len(spans) and spans["note"].str.contains(r"unobserved .* of .*: no fixes ", regex=True).all()
    assert spans["note"].str.contains("except single reports at", regex=False).any()  # hourly tracker
    gaps = ch[ch["row_kind"] == "unobserved"]
    assert gaps["note"].str.startswith("no fixes ").all()
    # one duration format: no pandas text, no "min 00 s"
    text = ch.to_csv(index=False)
    assert "0 days" not in text and " min 00 s" not in text


def test_one_duration_format() -> None:
    assert [fmt_duration(pd.Timedelta(x)) for x in ("0s", "59s", "59min", "60min", "65min 29s", "2D 3h 4min")] == \
        ["0 s", "59 s", "59 min", "1 h 00 min", "1 h 05 min", "2 d 3 h 04 min"]
    assert fmt_duration(pd.NaT) == "unknown"


def test_one_local_time_formatter() -> None:
    import importlib

    rc = importlib.import_module("routetrace.routes.chronology")
    assert rc.fmt_local is fmt_local  # was a second copy answering "" for a missing time
    assert fmt_local(pd.NaT, "Europe/Brussels") == "unknown"


def test_parameters_in_words_with_units() -> None:
    words = flatten_params({"stops": {"min_dwell": "0 days 00:05:00", "max_gap": "30min", "radius_m": 100.0,
                                      "edge_speed_mps": 5.0, "cleaning": {"max_dt": "0 days 00:00:02"}}})
    assert ("stops", "minimum dwell 5 min") in words and ("stops", "radius 100 m") in words
    assert ("stops.cleaning", "time window 2 s") in words
    assert not any("days" in w for _, w in words)
    html = render_footer(ExhibitMeta(case_id="C", exhibit_no="1", params=words))
    assert "stops: minimum dwell 5 min" in html and "GeoNames" in html  # the towns' attribution


def test_gazetteer_offline_deterministic(tmp_path: Path) -> None:
    p = nearest_place(*GROOT_BIJGAARDEN)
    assert p is not None and p.name == "Groot-Bijgaarden" and p.admin == "Dilbeek"
    assert 500 < p.distance_m < 1000 and p.label() == "Groot-Bijgaarden (Dilbeek), 0.8 km"
    calais = nearest_place(50.966, 1.883)
    assert calais is not None and calais.label().startswith("Calais (France), ")
    assert nearest_place(0.0, -30.0) is None  # mid-Atlantic: nothing within 25 km
    box = (50.7, 3.7, 51.1, 4.5)
    a, b = named_places(box), named_places(box)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["name", "admin", "lat", "lon", "population"]
    assert a["population"].is_monotonic_decreasing and {"Wetteren", "Dilbeek"} <= set(a["name"])
    assert len(named_places(box, limit=5)) == 5
    assert "CC BY 4.0" in GEONAMES_ATTRIBUTION and "not evidence" in GEONAMES_ATTRIBUTION
