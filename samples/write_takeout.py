"""phone-B's Google account as a Takeout zip: Records.json and one Semantic Location History month.

Folder names are the Dutch ones a Belgian account gets (``Locatiegeschiedenis (Tijdlijn)``),
so ingest must recognise the files by content. Records.json carries every observed fix of
phone-B in the newer ISO ``timestamp`` style with the phone's ``deviceTag``; the Semantic
month ``2025_OCTOBER.json`` carries one ``placeVisit`` per true stop of phone-B (name and
an invented address) and one ``activitySegment`` between consecutive stops, with
``waypointPath`` points (no times, as Google writes them) and a ``simplifiedRawPath`` of a
few timed fixes. Deterministic: members sorted, zip timestamps 1980-01-01, no wall clock.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from .generate import SampleFile
from .scenario import Scenario

SUBJECT = "phone-B"
FOLDER = "Takeout/Locatiegeschiedenis (Tijdlijn)"
_ADDRESS = {
    "groot_bijgaarden_carpark": "Parking E40, 1702 Groot-Bijgaarden, België",
    "wetteren_carpark": "Parking E40 Wetteren, 9230 Wetteren, België",
    "zeebrugge_port": "Kustweg, 8380 Zeebrugge, België",
}


def _iso(t: pd.Timestamp) -> str:
    text: str = t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


def _int(x: float) -> int:
    return math.floor(float(x) + 0.5)


def _e7(x: float) -> int:
    return _int(x * 1e7)


def _records(tr: pd.DataFrame, tag: int) -> dict[str, Any]:
    locs = []
    for r in tr.itertuples():
        loc: dict[str, Any] = {"latitudeE7": _e7(r.lat), "longitudeE7": _e7(r.lon),
                               "accuracy": _int(r.h_acc_m),
                               "source": "GPS" if r.fix_kind == "gps" else "WIFI",
                               "deviceTag": tag, "timestamp": _iso(r.t_utc)}
        if pd.notna(r.alt_m):
            loc["altitude"] = _int(r.alt_m)
        if pd.notna(r.speed_mps) and r.moving:
            loc["velocity"] = _int(r.speed_mps)
        if pd.notna(r.course_deg):
            loc["heading"] = _int(r.course_deg) % 360
        locs.append(loc)
    return {"locations": locs}


def _semantic(sc: Scenario, tr: pd.DataFrame) -> dict[str, Any]:
    stops = sc.truth_stops[sc.truth_stops["subject_id"] == SUBJECT].sort_values("t_arrival")
    objs: list[dict[str, Any]] = []
    prev = None
    for s in stops.itertuples():
        if prev is not None:
            seg = tr[(tr["t_utc"] > prev.t_departure) & (tr["t_utc"] < s.t_arrival)]
            way = seg.iloc[:: max(1, len(seg) // 6)]
            raw = seg.iloc[:: max(1, len(seg) // 3)]
            objs.append({"activitySegment": {
                "startLocation": {"latitudeE7": _e7(prev.lat), "longitudeE7": _e7(prev.lon)},
                "endLocation": {"latitudeE7": _e7(s.lat), "longitudeE7": _e7(s.lon)},
                "duration": {"startTimestamp": _iso(prev.t_departure),
                             "endTimestamp": _iso(s.t_arrival)},
                "distance": _int(float(seg["speed_mps"].fillna(0).mean() or 0)
                                 * (s.t_arrival - prev.t_departure).total_seconds()),
                "activityType": "IN_PASSENGER_VEHICLE", "confidence": "HIGH",
                "activities": [{"activityType": "IN_PASSENGER_VEHICLE", "probability": 91.5},
                               {"activityType": "WALKING", "probability": 4.2}],
                "waypointPath": {"waypoints": [{"latE7": _e7(r.lat), "lngE7": _e7(r.lon)}
                                               for r in way.itertuples()],
                                 "source": "INFERRED", "travelMode": "DRIVE"},
                "simplifiedRawPath": {"points": [
                    {"latE7": _e7(r.lat), "lngE7": _e7(r.lon), "accuracyMeters": int(r.h_acc_m),
                     "timestamp": _iso(r.t_utc)} for r in raw.itertuples()]},
                "editConfirmationStatus": "NOT_CONFIRMED"}})
        objs.append({"placeVisit": {
            "location": {"latitudeE7": _e7(s.lat), "longitudeE7": _e7(s.lon),
                         "placeId": f"sample-{s.place}", "address": _ADDRESS.get(s.place, ""),
                         "name": s.place.replace("_", " ").title(),
                         "locationConfidence": 87.5},
            "duration": {"startTimestamp": _iso(s.t_arrival), "endTimestamp": _iso(s.t_departure)},
            "placeConfidence": "HIGH_CONFIDENCE", "visitConfidence": 88,
            "otherCandidateLocations": [], "editConfirmationStatus": "NOT_CONFIRMED"}})
        prev = s
    return {"timelineObjects": objs}


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/phone-B/takeout-phone-B.zip``."""
    tr = sc.tracks[SUBJECT].sort_values("t_utc")
    tag = int(sc.subjects[SUBJECT]["device_tag"])
    members = {
        f"{FOLDER}/Records.json": _records(tr, tag),
        f"{FOLDER}/Semantic Location History/2025/2025_OCTOBER.json": _semantic(sc, tr),
    }
    folder = out / "evidence" / SUBJECT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "takeout-phone-B.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = json.dumps(members[name], indent=2, ensure_ascii=False) + "\n"
            zf.writestr(info, data.encode("utf-8"))
    return [SampleFile(path=path.relative_to(out).as_posix(), subject_id=SUBJECT,
                       description="phone-B's Google Takeout (Records.json + Semantic month "
                                   "2025_OCTOBER, Dutch folder names)")]
