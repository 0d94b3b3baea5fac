"""Fleet-portal exports: Traccar presets (CSV, XLSX), generic mapping file, sniffer exclusivity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from routetrace import schema
from routetrace.errors import AmbiguousTime, ParameterError
from routetrace.loaders import detect_format, load
from routetrace.loaders.portal import portal_kind
from routetrace.testing import assert_count_rule, hash_tree

KT = 1852 / 3600

STOPS = (
    "Device,Start Time,Odometer,Address,End Time,Duration,Engine Hours,Spent Fuel,Latitude,Longitude\n"
    'lorry 1-ABC-123,2024-03-24 23:10:00,12345.6 km,"E40 Jabbeke",2024-03-25 01:40:00,2 h 30 min,0 h,0 l,51.176,3.073\n'
    'lorry 1-ABC-123,2024-03-25 03:00:00,12400.1 km,"51.18, 2.99",2024-03-25 03:20:00,0:20:00,0 h,0 l,,\n'
    "lorry 1-ABC-123,2024-03-25 04:00:00,12400.1 km,Somewhere,2024-03-25 04:20:00,1200000,0 h,0 l,,\n"
    # 2024-10-27 02:30 happens twice in Brussels: ambiguous, rejected
    "lorry 1-ABC-123,2024-10-27 02:30:00,1 km,x,2024-10-27 04:00:00,1:30:00,0 h,0 l,51.0,4.0\n"
)
ROUTE = (
    "Device;Valid;Fix Time;Latitude;Longitude;Altitude;Speed;Course;Address\n"
    "lorry 1-ABC-123;true;2024-03-24 22:00:00;51,1000;2,9000;5,0;10,0;90;\n"
    "lorry 1-ABC-123;true;2024-03-24 22:00:10;51,1001;2,9001;5,0;36 km/h;91;\n"
    "lorry 1-ABC-123;false;2024-03-24 22:00:20;51,1002;2,9002;5,0;0;0;\n"
)
EVENTS = (
    "Device,Fix Time,Type,Geofence,Alarm\n"
    "lorry 1-ABC-123,2024-03-24 23:09:00,Ignition off,,\n"
    "lorry 1-ABC-123,2024-03-25 01:41:00,ignitionOn,,\n"
    "lorry 1-ABC-123,2024-03-25 01:42:00,deviceStopped,,\n"
    "lorry 1-ABC-123,2024-03-25 01:43:00,alarm,,door\n"
    "lorry 1-ABC-123,2024-03-25 01:44:00,Geofence entered,Car park,\n"
)
TRIPS = (
    "Device,Start Time,Odometer Start,Start Address,End Time,Odometer End,End Address,Distance,"
    "Average Speed,Max Speed,Duration,Spent Fuel,Driver\n"
    'lorry 1-ABC-123,2024-03-24 20:00:00,12200 km,"50.966, 1.883",2024-03-24 23:10:00,12345.6 km,'
    '"51.176, 3.073",145.6 km,60 km/h,90 km/h,3 h 10 min,40 l,\n'
)


def _w(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_traccar_stops_become_portal_stop_places_with_duration(tmp_path: Path) -> None:
    p = _w(tmp_path, "stops.csv", STOPS)
    before = hash_tree(tmp_path)
    res = load(p, tz="Europe/Brussels")
    assert hash_tree(tmp_path) == before
    assert_count_rule(res)
    assert res.source["format"].iloc[0] == "portal"
    pl = res.places
    assert len(pl) == 2 and set(res.rejects["record"]) == {"row 3", "row 4"}
    reasons = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert "no position" in reasons["row 3"] and "ambiguous" in reasons["row 4"]
    assert (pl["kind"] == "portal_stop").all()
    assert schema.has_flag(pl["flags"], "portal_stop").all()
    assert (pl["subject_id"] == "lorry 1-ABC-123").all()
    assert pl["t_start"].iloc[0] == pd.Timestamp("2024-03-24T22:10:00Z")  # CET = UTC+1
    assert pl["t_end"].iloc[0] == pd.Timestamp("2024-03-25T00:40:00Z")
    assert '"duration_s":9000.0' in pl["extra"].iloc[0]
    assert '"duration":"2 h 30 min"' in pl["extra"].iloc[0]
    # no lat/lon columns filled: the 'lat, lon' address gives the position
    assert (pl["lat"].iloc[1], pl["lon"].iloc[1]) == (51.18, 2.99)
    assert '"duration_s":1200.0' in pl["extra"].iloc[1]


def test_local_portal_times_need_tz(tmp_path: Path) -> None:
    p = _w(tmp_path, "stops.csv", STOPS)
    with pytest.raises(AmbiguousTime, match="--tz") as info:
        load(p)
    assert str(p) in str(info.value) and "row 1" in str(info.value)
    with pytest.raises(AmbiguousTime, match="--tz"):
        load(_w(tmp_path, "route.csv", ROUTE))
    with pytest.raises(AmbiguousTime, match="--tz"):
        load(_w(tmp_path, "events.csv", EVENTS))
    # a mapping that states the portal's zone needs no --tz; one with an offset column loads
    ok = load(p, format="portal", options={"mapping": {"tz": "Europe/Brussels"}})
    assert_count_rule(ok)
    assert ok.places["t_start"].iloc[0] == pd.Timestamp("2024-03-24T22:10:00Z")
    utc = load(p, options={"time_basis": "utc"})
    assert utc.places["t_start"].iloc[0] == pd.Timestamp("2024-03-24T23:10:00Z")
    zoned = _w(tmp_path, "route_z.csv", ROUTE.replace(":00;51", ":00+01:00;51"))
    z = load(zoned)
    assert_count_rule(z)
    assert z.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-03-24T21:00:00Z")


def test_traccar_route_knots_default_kmh_values_and_decimal_comma(tmp_path: Path) -> None:
    res = load(_w(tmp_path, "route.csv", ROUTE), tz="Europe/Brussels")
    assert_count_rule(res)
    fx = res.fixes
    assert len(fx) == 2 and res.rejects["record"].tolist() == ["row 3"]  # Valid=false
    assert fx["speed_mps"].iloc[0] == pytest.approx(10 * KT)  # Traccar default unit: knots
    assert fx["speed_mps"].iloc[1] == pytest.approx(10.0)  # '36 km/h'
    assert fx["lat"].iloc[0] == pytest.approx(51.1)
    assert fx["t_utc"].iloc[0] == pd.Timestamp("2024-03-24T21:00:00Z")
    assert (fx["fix_kind"] == "gps").all() and (fx["subject_id"] == "lorry 1-ABC-123").all()
    kmh = load(_w(tmp_path, "route_kmh.csv", ROUTE.replace("Speed;", "Speed (km/h);")),
               tz="Europe/Brussels")
    assert kmh.fixes["speed_mps"].iloc[0] == pytest.approx(10 / 3.6)


def test_user_subject_overrides_the_export_device(tmp_path: Path) -> None:
    res = load(_w(tmp_path, "route.csv", ROUTE), tz="Europe/Brussels", subject_id="lorry-1")
    assert (res.fixes["subject_id"] == "lorry-1").all()
    st = load(_w(tmp_path, "stops.csv", STOPS), tz="Europe/Brussels", subject_id="lorry-1")
    assert (st.places["subject_id"] == "lorry-1").all()
    assert st.places["extra"].str.contains('"device":"lorry 1-ABC-123"', regex=False).all()
    ev = load(_w(tmp_path, "events.csv", EVENTS), tz="Europe/Brussels", subject_id="lorry-1")
    assert (ev.events["subject_id"] == "lorry-1").all()
    assert ev.events["extra"].str.contains('"device":"lorry 1-ABC-123"', regex=False).all()


def test_traccar_events_and_trips(tmp_path: Path) -> None:
    ev = load(_w(tmp_path, "events.csv", EVENTS), tz="Europe/Brussels")
    assert_count_rule(ev)
    assert ev.events["kind"].tolist() == ["ignition_off", "ignition_on", "device_stopped", "alarm",
                                          "geofence_enter"]
    assert ev.events["text"].iloc[3] == "door"
    assert ev.events["t_utc"].iloc[0] == pd.Timestamp("2024-03-24T22:09:00Z")
    tr = load(_w(tmp_path, "trips.csv", TRIPS), tz="Europe/Brussels")
    assert_count_rule(tr)
    assert tr.records_read == 1 and tr.events["kind"].tolist() == ["trip_start", "trip_end"]
    assert tr.events["lat"].tolist() == [50.966, 51.176]
    assert '"distance":"145.6 km"' in tr.events["extra"].iloc[0]


def test_xlsx_stops_with_preamble_device(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stops"
    ws.append(["Device", "lorry 1-ABC-123"])
    ws.append(["Period", "2024-03-24 - 2024-03-25"])
    ws.append([])
    ws.append(["Start Time", "Odometer", "Address", "End Time", "Duration", "Engine Hours",
               "Spent Fuel"])
    ws.append([dt.datetime(2024, 7, 1, 23, 10), "12345.6 km", "51.176, 3.073",
               dt.datetime(2024, 7, 2, 1, 40), "2 h 30 min", "0 h", "0 l"])
    ws.append([dt.datetime(2024, 7, 2, 3, 0), "12400 km", "51.18, 2.99",
               dt.datetime(2024, 7, 2, 3, 20), dt.timedelta(minutes=20), "0 h", "0 l"])
    p = tmp_path / "stops.xlsx"
    wb.save(p)
    assert detect_format(p).name == "portal"
    res = load(p, tz="Europe/Brussels")
    assert_count_rule(res)
    pl = res.places
    assert pl["record"].tolist() == ["Stops!row 5", "Stops!row 6"]
    assert (pl["subject_id"] == "lorry 1-ABC-123").all()
    assert pl["t_start"].iloc[0] == pd.Timestamp("2024-07-01T21:10:00Z")  # CEST = UTC+2
    assert '"duration_s":1200.0' in pl["extra"].iloc[1]


def test_generic_mapping_file_mph_custom_events_and_tz_rule(tmp_path: Path) -> None:
    mapping = tmp_path / "acme.yaml"
    mapping.write_text(
        "kind: positions\n"
        "columns: {datetime: Tijdstip, lat: Breedte, lon: Lengte, speed: Snelheid, subject: Kenteken}\n"
        "time_format: '%d-%m-%Y %H:%M'\n"
        "tz: Europe/Brussels\n"
        "speed_unit: mph\n", encoding="utf-8")
    p = _w(tmp_path, "acme.csv", "Kenteken;Tijdstip;Breedte;Lengte;Snelheid\n"
                                  "1-ABC-123;24-03-2024 23:10;51,176;3,073;10\n"
                                  "1-ABC-123;31-03-2024 02:30;51,176;3,073;10\n")
    res = load(p, format="portal", options={"mapping": str(mapping)})
    assert_count_rule(res)
    assert len(res.fixes) == 1 and "does not exist" in res.rejects["reason"].iloc[0]
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-03-24T22:10:00Z")
    assert res.fixes["speed_mps"].iloc[0] == pytest.approx(10 * 1609.344 / 3600)
    assert res.fixes["subject_id"].iloc[0] == "1-ABC-123"

    ev_map = {"kind": "events", "columns": {"datetime": "Wanneer", "type": "Gebeurtenis"},
              "tz": "utc", "events": {"Contact aan": "ignition_on", "Deur open": "door_open"}}
    q = _w(tmp_path, "ev.csv", "Wanneer,Gebeurtenis\n2024-03-24 23:10:00,Contact aan\n"
                                "2024-03-24 23:20:00,Deur open\n")
    ev = load(q, format="portal", options={"mapping": ev_map})
    assert ev.events["kind"].tolist() == ["ignition_on", "door_open"]
    assert ev.events["t_utc"].iloc[0] == pd.Timestamp("2024-03-24T23:10:00Z")
    with pytest.raises(ParameterError, match="speed unit"):
        load(p, format="portal", options={"mapping": {**ev_map, "kind": "positions",
                                                      "columns": {}, "speed_unit": "furlong"}})


def test_sniffers_claim_exactly_one_loader_each(tmp_path: Path) -> None:
    files = {
        "stops.csv": (STOPS, "portal"), "route.csv": (ROUTE, "portal"),
        "events.csv": (EVENTS, "portal"), "trips.csv": (TRIPS, "portal"),
        "plain.csv": ("time,lat,lon\n2024-01-01T00:00:00Z,50,4\n", "csv"),
        "plain2.csv": ("Datum;Tijd;Breedtegraad;Lengtegraad\n01/02/2024;10:00;51,1;3,2\n", "csv"),
    }
    for name, (text, want) in files.items():
        assert detect_format(_w(tmp_path, name, text)).name == want, name
    assert portal_kind(["Fix Time", "Latitude", "Longitude", "Speed"]) == "positions"
    assert portal_kind(["time", "lat", "lon"]) is None


def test_sample_case_portal_exports_match_the_truth(tmp_path: Path) -> None:
    from routetrace.samples import write_portal
    from routetrace.samples.scenario import build_scenario

    sc = build_scenario(7)
    files = write_portal.write(sc, tmp_path)
    again = write_portal.write(build_scenario(7), tmp_path / "again")
    for a, b in zip(files, again, strict=True):
        assert (tmp_path / a.path).read_bytes() == (tmp_path / "again" / b.path).read_bytes()
    res = {Path(f.path).stem: load(tmp_path / f.path, tz=f.tz) for f in files}
    for r in res.values():
        assert_count_rule(r)
        assert r.source["format"].iloc[0] == "portal" and len(r.rejects) == 0
    truth = sc.truth_stops[sc.truth_stops["subject_id"] == "lorry-1"].reset_index(drop=True)
    stops = res["lorry-1_portal_stops"].places
    assert (stops["subject_id"] == "lorry 1-ABC-123").all()  # the plate from the export
    assert (stops["t_start"] - truth["t_arrival"]).abs().max() < pd.Timedelta("1s")
    assert (stops["t_end"] - truth["t_departure"]).abs().max() < pd.Timedelta("1s")
    route = res["lorry-1_portal_route"].fixes
    track = sc.tracks["lorry-1"].sort_values("t_utc").reset_index(drop=True)
    assert len(route) == len(track)
    assert (route["t_utc"] - track["t_utc"]).abs().max() < pd.Timedelta("1s")
    moving = track["speed_mps"].notna()
    assert (route["speed_mps"][moving] - track["speed_mps"][moving]).abs().max() < 0.06  # 0.1 kn
    ev = res["lorry-1_portal_events"].events
    want = sc.events[(sc.events["subject_id"] == "lorry-1")
                     & sc.events["kind"].isin(["ignition_on", "ignition_off"])]
    assert ev["kind"].tolist() == want.sort_values("t_utc")["kind"].tolist()


def test_traccar_web_xlsx_export_default_stop_columns_sheet_per_device(tmp_path: Path) -> None:
    # traccar-web exportExcel: sheet named after the device, a title row, the header, the values
    # as printed (browser-locale times to the minute, 'lat°, lon°' address without a geocoder)
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "lorry 1-ABC-123"
    ws.append(["Stops"])
    ws.append(["Start Time", "End Time", "Odometer", "Address"])
    ws.append(["03/24/2024, 11:10 PM", "03/25/2024, 01:40 AM", "12345.60 km", "51.17600°, 3.07300°"])
    ws.append(["03/25/2024, 03:00 AM", "03/25/2024, 03:20 AM", "12400.10 km",
               "51° 10' 48\" N, 2° 59' 24\" E"])
    ws2 = wb.create_sheet("lorry 2-XYZ-789")
    ws2.append(["Stops"])
    ws2.append(["Start Time", "End Time", "Odometer", "Address", "Duration"])
    ws2.append(["03/24/2024, 10:00 PM", "03/24/2024, 10:45 PM", "1.00 km", "50.96600°, 1.88300°",
                "0 h 45 m"])
    p = tmp_path / "stops.xlsx"
    wb.save(p)
    assert detect_format(p).name == "portal"
    res = load(p, tz="Europe/Brussels")
    assert_count_rule(res)
    pl = res.places
    assert res.records_read == 3  # every sheet with a portal header is read
    assert pl["record"].tolist() == ["lorry 1-ABC-123!row 3", "lorry 1-ABC-123!row 4",
                                     "lorry 2-XYZ-789!row 3"]
    assert pl["subject_id"].tolist() == ["lorry 1-ABC-123"] * 2 + ["lorry 2-XYZ-789"]
    assert pl["t_start"].iloc[2] == pd.Timestamp("2024-03-24T21:00:00Z")
    assert load(p, tz="Europe/Brussels", subject_id="lorry-1").places["subject_id"].eq("lorry-1").all()
    assert pl["t_start"].iloc[0] == pd.Timestamp("2024-03-24T22:10:00Z")
    assert pl["t_end"].iloc[0] == pd.Timestamp("2024-03-25T00:40:00Z")
    assert (pl["lat"].iloc[0], pl["lon"].iloc[0]) == (pytest.approx(51.176), pytest.approx(3.073))
    assert pl["lat"].iloc[1] == pytest.approx(51.18) and pl["lon"].iloc[1] == pytest.approx(2.99)
    two = load(p, tz="Europe/Brussels", options={"sheet": "lorry 2-XYZ-789"})
    assert two.places["subject_id"].tolist() == ["lorry 2-XYZ-789"]
    assert '"duration_s":2700.0' in two.places["extra"].iloc[0]
    assert portal_kind(["Start Time", "End Time", "Odometer", "Address"]) == "stops"
    assert portal_kind(["Start Time", "End Time", "Distance", "Average Speed"]) == "trips"
    assert portal_kind(["statement_id", "Start Time", "End Time", "Address"]) is None


def test_xlsx_route_sheets_per_device_in_kmh(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    for i, name in enumerate(("lorry 1-ABC-123", "lorry 2-XYZ-789")):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = name
        ws.append(["Route"])
        ws.append(["Fix Time", "Latitude", "Longitude", "Speed", "Address"])
        ws.append([f"2024-07-01 10:0{i}:00", 51.1 + i, 3.1, f"{36 * (i + 1)} km/h", ""])
    p = tmp_path / "route.xlsx"
    wb.save(p)
    res = load(p, tz="Europe/Brussels")
    assert_count_rule(res)
    fx = res.fixes
    assert fx["subject_id"].tolist() == ["lorry 1-ABC-123", "lorry 2-XYZ-789"]
    assert fx["speed_mps"].tolist() == [pytest.approx(10.0), pytest.approx(20.0)]
    assert fx["t_utc"].tolist() == [pd.Timestamp("2024-07-01T08:00:00Z"),
                                    pd.Timestamp("2024-07-01T08:01:00Z")]


def test_a_row_wider_than_the_header_is_a_reject_naming_its_row_and_the_rest_loads(tmp_path: Path) -> None:
    head = ROUTE.splitlines()[0]
    good = [f"lorry 1-ABC-123;true;2024-03-24 22:{m:02d}:00;51,1000;2,9000;5,0;10,0;90;" for m in range(30)]
    wide = "lorry 1-ABC-123;true;2024-03-24 22:00:05;" + ";".join(["1"] * 30)
    text = "\n".join([head, *good[:10], wide, *good[10:], wide]) + "\n"
    res = load(_w(tmp_path, "route.csv", text), tz="Europe/Brussels")
    assert_count_rule(res)
    assert res.records_read == 32 and len(res.fixes) == 30
    assert res.rejects["record"].tolist() == ["row 11", "row 32"]  # data rows
    assert res.rejects["reason"].str.contains("beyond the header's 9 columns").all()
