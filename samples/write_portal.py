"""lorry-1 as the haulier's Traccar portal exports it: stops, position history, events.

Three CSV reports with Traccar's English column labels, times printed in the account's
zone (Europe/Brussels) **without an offset**, as portals do; ingest them with
``--tz Europe/Brussels`` (the demo does). Speeds are in knots (Traccar's default unit),
stop and trip addresses are ``lat, lon`` (a portal without a reverse geocoder), and the
``Device`` column names the vehicle ``lorry 1-ABC-123``.

* ``lorry-1_portal_stops.csv``: the stops the portal computed (one per true stop of the
  lorry; times rounded to the second, durations as ``H h M min``), so the chronology can
  compare the portal's stops with its own;
* ``lorry-1_portal_route.csv``: the position history (every observed fix);
* ``lorry-1_portal_events.csv``: ignition on/off events (Traccar ``ignitionOn`` /
  ``ignitionOff``, printed as "Ignition on" / "Ignition off").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .generate import SampleFile
from .scenario import Scenario

KNOT_MPS = 1852 / 3600


def _local(t: pd.Series | pd.Timestamp, tz: str) -> pd.Series:
    return pd.Series(pd.to_datetime(t)).dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S")


def _duration(td: pd.Timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min"


def _write(path: Path, lines: list[str]) -> None:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))


def _q(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write lorry-1's portal stops, route and events exports under ``evidence/lorry-1``."""
    subject = "lorry-1"
    device = f"lorry {sc.subjects[subject]['plate']}"
    folder = out / "evidence" / subject
    folder.mkdir(parents=True, exist_ok=True)
    tr = sc.tracks[subject].sort_values("t_utc").reset_index(drop=True)

    stops = sc.truth_stops[sc.truth_stops["subject_id"] == subject].sort_values("t_arrival")
    lines = ["Device,Start Time,Odometer,Address,End Time,Duration,Engine Hours,Spent Fuel"]
    for s in stops.itertuples():
        t0 = pd.Timestamp(s.t_arrival).floor("s")
        t1 = pd.Timestamp(s.t_departure).floor("s")
        before = tr[tr["t_utc"] <= t0]
        odo = before["odometer_m"].iloc[-1] if len(before) else tr["odometer_m"].iloc[0]
        lines.append(",".join([
            device, _local(t0, sc.tz).iloc[0], f"{odo / 1000:.1f} km",
            _q(f"{s.lat:.5f}, {s.lon:.5f}"), _local(t1, sc.tz).iloc[0], _duration(t1 - t0),
            "0 h", "0 l"]))
    stops_path = folder / "lorry-1_portal_stops.csv"
    _write(stops_path, lines)

    local = _local(tr["t_utc"], sc.tz)
    lines = ["Device,Valid,Fix Time,Latitude,Longitude,Altitude,Speed,Course,Address"]
    for t, r in zip(local, tr.itertuples(), strict=True):
        speed = "" if pd.isna(r.speed_mps) else f"{r.speed_mps / KNOT_MPS:.1f}"
        course = "" if pd.isna(r.course_deg) else f"{r.course_deg:.0f}"
        alt = "" if pd.isna(r.alt_m) else f"{r.alt_m:.0f}"
        lines.append(",".join([device, "true", t, f"{r.lat:.6f}", f"{r.lon:.6f}", alt, speed,
                               course, ""]))
    route_path = folder / "lorry-1_portal_route.csv"
    _write(route_path, lines)

    ev = sc.events[(sc.events["subject_id"] == subject)
                   & sc.events["kind"].isin(["ignition_on", "ignition_off"])].sort_values("t_utc")
    label = {"ignition_on": "Ignition on", "ignition_off": "Ignition off"}
    lines = ["Device,Fix Time,Type,Geofence,Maintenance,Alarm"]
    for t, k in zip(_local(ev["t_utc"], sc.tz), ev["kind"], strict=True):
        lines.append(",".join([device, t, label[str(k)], "", "", ""]))
    events_path = folder / "lorry-1_portal_events.csv"
    _write(events_path, lines)

    note = "Traccar portal export, local time: needs --tz Europe/Brussels"
    return [
        SampleFile(path=stops_path.relative_to(out).as_posix(), subject_id=subject, tz=sc.tz,
                   description=f"lorry-1 stops computed by the portal ({note})"),
        SampleFile(path=route_path.relative_to(out).as_posix(), subject_id=subject, tz=sc.tz,
                   description=f"lorry-1 position history from the portal ({note})"),
        SampleFile(path=events_path.relative_to(out).as_posix(), subject_id=subject, tz=sc.tz,
                   description=f"lorry-1 ignition events from the portal ({note})"),
    ]
