"""The fictional sample case: a smuggling journey from Calais to Zeebrugge, with ground truth.

Everything here is invented; no real person's data. The journey (local times are
Europe/Brussels; Calais keeps the same offsets) crosses the end of summer time on
2025-10-26 at 03:00 CEST -> 02:00 CET, so every loader and exhibit must get DST right.

Subjects
--------
``phone-A``
    The smuggler's iPhone. Calais migrant camp -> Westkerke E40 car park -> Brussels hotel
    (the safehouse, two nights; the phone is switched off from Saturday 15:00 to Sunday
    19:00) -> Wetteren E40 car park at night (loading) -> back to the hotel.
``phone-B``
    The smuggler's second phone (Android), riding in lorry-1 from Groot-Bijgaarden via the
    Wetteren car park to Zeebrugge port (co-travel with the lorry).
``lorry-1``
    A tracked lorry (Teltonika tracker, plate 1-ABC-123): waits at Groot-Bijgaarden, stops
    at the Wetteren car park at night with the rear door opened while phone-A is there,
    then drives to Zeebrugge port.
``lorry-2``
    An innocent lorry that stops at the same Wetteren car park by day, with no phone near.

Usage
-----
>>> sc = build_scenario(seed=7)
>>> sorted(sc.tracks)
['lorry-1', 'lorry-2', 'phone-A', 'phone-B']
>>> sc.truth_stops.groupby("subject_id").size().to_dict()["phone-A"]
7

What a writer gets
------------------
``sc.tracks[subject]``: observed fixes as the device would record them (sampling, noise,
silences already applied): ``t_utc, lat, lon, alt_m, h_acc_m, speed_mps, course_deg,
fix_kind, moving`` plus the true position ``true_lat, true_lon``.
``sc.events``: ``subject_id, t_utc, kind, value`` (ignition_on/off, door_open/close,
fuel_level in %, odometer in m).
``sc.truth_stops``: ``subject_id, place, lat, lon, t_arrival, t_departure, observed``
(``yes``, ``partial``: the device was off for part of the stop, ``no``).
``sc.off_intervals``: ``subject_id, t_start, t_end`` (device switched off).
``sc.photos``: ``subject_id, t_utc, lat, lon, file_name, camera_clock_offset``.
``sc.places``: name -> (lat, lon). ``sc.roads``: name -> list of (lat, lon) (road lines).
``sc.subjects``: subject -> description dict (kind, model, imei, plate, device_tag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..geodesy import haversine_m

__all__ = ["PLACES", "TZ", "Scenario", "build_scenario"]

TZ = "Europe/Brussels"

#: Named places of the case (WGS84 degrees).
PLACES: dict[str, tuple[float, float]] = {
    "calais_camp": (50.9660, 1.8830),
    "westkerke_carpark": (51.1800, 2.9900),
    "jabbeke_carpark": (51.1760, 3.0730),
    "wetteren_carpark": (51.0000, 3.8700),
    "erpe_mere_carpark": (50.9300, 3.9600),
    "groot_bijgaarden_carpark": (50.8750, 4.2600),
    "brussels_hotel": (50.8600, 4.3600),
    "zeebrugge_port": (51.3300, 3.2000),
}

# The E40/A16 corridor west -> east, and the branch to Zeebrugge from Brugge.
_MAIN = [
    ("calais_camp", PLACES["calais_camp"]),
    ("a16_dunkirk", (51.0200, 2.3000)),
    ("adinkerke_border", (51.0700, 2.6000)),
    ("westkerke_carpark", PLACES["westkerke_carpark"]),
    ("jabbeke_carpark", PLACES["jabbeke_carpark"]),
    ("brugge_south", (51.1800, 3.2200)),
    ("aalter", (51.0800, 3.4500)),
    ("gent_zwijnaarde", (51.0300, 3.7000)),
    ("wetteren_carpark", PLACES["wetteren_carpark"]),
    ("erpe_mere_carpark", PLACES["erpe_mere_carpark"]),
    ("groot_bijgaarden_carpark", PLACES["groot_bijgaarden_carpark"]),
    ("brussels_hotel", PLACES["brussels_hotel"]),
]
_BRANCH = [("brugge_south", (51.1800, 3.2200)), ("n31_dudzele", (51.2700, 3.2100)),
           ("zeebrugge_port", PLACES["zeebrugge_port"])]

# Itineraries: (place, arrival local or None = derived from travel, departure local).
_ITINERARY: dict[str, list[tuple[str, str | None, str]]] = {
    "phone-A": [
        ("calais_camp", "2025-10-24 14:00", "2025-10-24 19:00"),
        ("westkerke_carpark", None, "2025-10-24 21:00"),
        ("brussels_hotel", None, "2025-10-25 11:30"),
        ("groot_bijgaarden_carpark", None, "2025-10-25 12:40"),
        ("brussels_hotel", None, "2025-10-26 21:00"),
        ("wetteren_carpark", None, "2025-10-26 23:10"),
        ("brussels_hotel", None, "2025-10-27 12:00"),
    ],
    "phone-B": [
        ("groot_bijgaarden_carpark", "2025-10-26 18:40", "2025-10-26 21:20"),
        ("wetteren_carpark", None, "2025-10-26 22:50"),
        ("zeebrugge_port", None, "2025-10-27 01:30"),
    ],
    "lorry-1": [
        ("groot_bijgaarden_carpark", "2025-10-26 18:30", "2025-10-26 21:20"),
        ("wetteren_carpark", None, "2025-10-26 22:50"),
        ("zeebrugge_port", None, "2025-10-27 03:00"),
    ],
    "lorry-2": [
        ("groot_bijgaarden_carpark", "2025-10-27 09:30", "2025-10-27 10:30"),
        ("wetteren_carpark", None, "2025-10-27 11:45"),
        ("zeebrugge_port", None, "2025-10-27 14:00"),
    ],
}

# Phone-A is switched off on the second day at the hotel (local times).
_OFF = [("phone-A", "2025-10-25 15:00", "2025-10-26 19:00")]

# Door openings of lorry-1 (local): loading at the Wetteren car park at night.
_DOORS = [("lorry-1", "2025-10-26 22:20", "2025-10-26 22:35")]

_SPEED_MPS = {"phone-A": 30.0, "phone-B": 23.0, "lorry-1": 23.0, "lorry-2": 22.0}

SUBJECTS: dict[str, dict[str, Any]] = {
    "phone-A": {"kind": "phone", "model": "iPhone 12", "os": "iOS 17.6",
                "description": "smuggler's iPhone (seized)"},
    "phone-B": {"kind": "phone", "model": "Pixel 6", "os": "Android 14", "device_tag": 1234567890,
                "description": "smuggler's second phone, Android (Google account)"},
    "lorry-1": {"kind": "vehicle", "imei": "356307042441013", "plate": "1-ABC-123",
                "tracker": "Teltonika FMB125", "door_input": 2,
                "description": "tracked lorry used for the transport"},
    "lorry-2": {"kind": "vehicle", "imei": "356307042441029", "plate": "1-XYZ-987",
                "tracker": "Teltonika FMB125", "door_input": 2,
                "description": "unrelated lorry, same car park by day"},
}


@dataclass
class Scenario:
    """The simulated case: observed tracks, events and the ground truth (see module doc)."""

    seed: int
    tz: str
    subjects: dict[str, dict[str, Any]]
    places: dict[str, tuple[float, float]]
    roads: dict[str, list[tuple[float, float]]]
    tracks: dict[str, pd.DataFrame]
    events: pd.DataFrame
    truth_stops: pd.DataFrame
    off_intervals: pd.DataFrame
    photos: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, Any]:
        """The ground truth as plain JSON-able data (written to ``truth.json``)."""
        def iso(t: pd.Timestamp) -> str:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")

        stops = [
            {"subject_id": r.subject_id, "place": r.place, "lat": r.lat, "lon": r.lon,
             "t_arrival": iso(r.t_arrival), "t_departure": iso(r.t_departure),
             "observed": r.observed, "local_arrival": r.t_arrival.tz_convert(self.tz).isoformat(),
             "local_departure": r.t_departure.tz_convert(self.tz).isoformat()}
            for r in self.truth_stops.itertuples()
        ]
        events = [{"subject_id": r.subject_id, "t_utc": iso(r.t_utc), "kind": r.kind}
                  for r in self.events.itertuples() if r.kind in ("door_open", "door_close",
                                                                  "ignition_on", "ignition_off")]
        off = [{"subject_id": r.subject_id, "t_start": iso(r.t_start), "t_end": iso(r.t_end)}
               for r in self.off_intervals.itertuples()]
        return {"seed": self.seed, "time_zone": self.tz, "subjects": self.subjects,
                "places": {k: list(v) for k, v in self.places.items()},
                "stops": stops, "events": events, "off_intervals": off, **self.extra}


def _local(t: str) -> pd.Timestamp:
    return pd.Timestamp(t).tz_localize(TZ, ambiguous=False).tz_convert("UTC")


def _path(a: str, b: str) -> list[tuple[float, float]]:
    """Waypoints along the corridor from place ``a`` to place ``b``."""
    main = [n for n, _ in _MAIN]
    coords = dict(_MAIN + _BRANCH)

    def to_main(p: str) -> list[str]:
        return [p] if p in main else [n for n, _ in reversed(_BRANCH)]  # zeebrugge -> brugge

    pa, pb = to_main(a), to_main(b)
    ia, ib = main.index(pa[-1]), main.index(pb[-1])
    mid = main[ia: ib + 1] if ia <= ib else main[ib: ia + 1][::-1]
    names = pa[:-1] + mid + list(reversed(pb[:-1]))
    return [coords[n] for n in names]


def _sample_times(t0: float, t1: float, rng: np.random.Generator, *, kind: str, moving: bool) -> np.ndarray:
    """Sample epochs (s) in [t0, t1) as the device would record them."""
    out, t = [], t0
    while t < t1:
        out.append(t)
        if kind == "vehicle":
            # Teltonika defaults: 30 s while moving, 1 h parked; plus a record at each
            # ignition change (added by the caller)
            dt = 30.0 if moving else 3600.0
        elif moving:
            dt = 1.0 if rng.random() < 0.15 else float(rng.lognormal(np.log(20), 0.6))
        else:
            dt = float(rng.uniform(120, 1200))
        t += dt
    return np.asarray(out, dtype=float)


def _simulate(subject: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    kind = SUBJECTS[subject]["kind"]
    speed = _SPEED_MPS[subject]
    rows: list[pd.DataFrame] = []
    stops: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    plan = _ITINERARY[subject]
    t_prev_dep: float | None = None
    prev_place: str | None = None
    for place, arr_s, dep_s in plan:
        lat0, lon0 = PLACES[place]
        if prev_place is not None and t_prev_dep is not None:
            wp = np.asarray(_path(prev_place, place))
            seg = haversine_m(wp[:-1, 0], wp[:-1, 1], wp[1:, 0], wp[1:, 1])
            cum = np.concatenate([[0.0], np.cumsum(seg)])
            t_arr = t_prev_dep + cum[-1] / speed
            ts = _sample_times(t_prev_dep, t_arr, rng, kind=kind, moving=True)
            d = (ts - t_prev_dep) * speed
            lat = np.interp(d, cum, wp[:, 0])
            lon = np.interp(d, cum, wp[:, 1])
            idx = np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(seg) - 1)
            dlat, dlon = wp[idx + 1, 0] - wp[idx, 0], (wp[idx + 1, 1] - wp[idx, 1]) * np.cos(np.radians(lat))
            course = (np.degrees(np.arctan2(dlon, dlat)) + 360) % 360
            rows.append(pd.DataFrame({"t": ts, "true_lat": lat, "true_lon": lon, "moving": True,
                                      "speed_mps": speed, "course_deg": course}))
        else:
            t_arr = _local(arr_s).value / 1e9 if arr_s else 0.0
        t_dep = _local(dep_s).value / 1e9
        if t_dep <= t_arr + 60:
            raise ValueError(f"{subject}: cannot reach {place} before {dep_s}")
        ts = _sample_times(t_arr, t_dep, rng, kind=kind, moving=False)
        if kind == "vehicle":  # event-triggered records at ignition off / on
            trig = [t_arr + 20, t_dep - 60] if prev_place else [t_dep - 60]
            ts = np.unique(np.concatenate([ts, trig]))
        rows.append(pd.DataFrame({"t": ts, "true_lat": lat0, "true_lon": lon0, "moving": False,
                                  "speed_mps": 0.0, "course_deg": np.nan}))
        stops.append({"subject_id": subject, "place": place, "lat": lat0, "lon": lon0,
                      "t_arrival": pd.Timestamp(t_arr, unit="s", tz="UTC").round("s"),
                      "t_departure": pd.Timestamp(t_dep, unit="s", tz="UTC").round("s")})
        if kind == "vehicle":
            if prev_place is not None:
                events.append({"t": t_arr + 20, "kind": "ignition_off", "value": 0.0})
            events.append({"t": t_dep - 60, "kind": "ignition_on", "value": 1.0})
        t_prev_dep, prev_place = t_dep, place
    if kind == "vehicle" and t_prev_dep is not None:
        pass  # record ends when the lorry leaves the port (ferry): last ignition_on stands
    track = pd.concat(rows, ignore_index=True)
    return track, pd.DataFrame(stops), events


def _observe(track: pd.DataFrame, subject: str, rng: np.random.Generator) -> pd.DataFrame:
    """Turn true positions into what the device records: accuracy, noise, fix kind."""
    n = len(track)
    kind = SUBJECTS[subject]["kind"]
    moving = track["moving"].to_numpy()
    if kind == "vehicle":
        acc = rng.uniform(3, 8, n)
        fk = np.full(n, "gps", dtype=object)
        # dense car parks: lorries park up to ~60 m from the car park's centre
        park = np.where(moving, 0.0, 25.0)
    else:
        acc = np.where(moving, rng.uniform(5, 16, n), rng.uniform(25, 70, n))
        fk = np.where(moving, "gps", "wifi").astype(object)
        cell = (~moving) & (rng.random(n) < 0.05)
        acc[cell] = rng.uniform(900, 1800, cell.sum())
        fk[cell] = "cell"
        park = np.where(moving, 0.0, 20.0)
    err = rng.normal(0, 1, (n, 2)) * (acc / 2.0)[:, None]
    err += rng.normal(0, 1, (n, 2)) * park[:, None]
    lat = track["true_lat"].to_numpy() + err[:, 0] / 111_320.0
    lon = track["true_lon"].to_numpy() + err[:, 1] / (111_320.0 * np.cos(np.radians(track["true_lat"].to_numpy())))
    t = pd.to_datetime(np.round(track["t"].to_numpy() * 1000).astype("int64"), unit="ms", utc=True)
    return pd.DataFrame({
        "t_utc": t.astype("datetime64[ns, UTC]"),
        "lat": np.round(lat, 7), "lon": np.round(lon, 7),
        "alt_m": np.round(rng.normal(15, 3, n), 1),
        "h_acc_m": np.round(acc, 1),
        "speed_mps": np.where(moving, np.round(track["speed_mps"].to_numpy() + rng.normal(0, 1, n), 2), 0.0),
        "course_deg": np.round(track["course_deg"].to_numpy(), 1),
        "fix_kind": pd.array(fk, dtype="string"),
        "moving": moving,
        "true_lat": track["true_lat"].to_numpy(), "true_lon": track["true_lon"].to_numpy(),
    })


def build_scenario(seed: int = 7) -> Scenario:
    """Simulate the case deterministically from ``seed`` (same seed -> same tables).

    Parameters
    ----------
    seed : int
        Seed of every random draw (sampling, noise, silences).

    Returns
    -------
    Scenario
        Observed tracks, events and the ground truth (see the module docstring).

    Example
    -------
    >>> sc = build_scenario(seed=7)
    >>> sorted(sc.tracks), sc.tz
    (['lorry-1', 'lorry-2', 'phone-A', 'phone-B'], 'Europe/Brussels')
    >>> build_scenario(seed=7).tracks["lorry-1"].equals(sc.tracks["lorry-1"])
    True
    """
    rng = np.random.default_rng(seed)
    tracks: dict[str, pd.DataFrame] = {}
    stops: list[pd.DataFrame] = []
    ev_rows: list[dict[str, Any]] = []
    off = pd.DataFrame([{"subject_id": s, "t_start": _local(a), "t_end": _local(b)} for s, a, b in _OFF])
    for subject in _ITINERARY:
        track, st, evs = _simulate(subject, rng)
        obs = _observe(track, subject, rng)
        for r in off[off["subject_id"] == subject].itertuples():
            obs = obs[(obs["t_utc"] < r.t_start) | (obs["t_utc"] >= r.t_end)]
        tracks[subject] = obs.reset_index(drop=True)
        # "yes": the device recorded throughout; "partial": switched off for part of the
        # stop; "no": off for the whole stop
        st["observed"] = "yes"
        for r in off[off["subject_id"] == subject].itertuples():
            overlap = (st["t_arrival"] < r.t_end) & (st["t_departure"] > r.t_start)
            covered = (st["t_arrival"] >= r.t_start) & (st["t_departure"] <= r.t_end)
            st.loc[overlap, "observed"] = "partial"
            st.loc[covered, "observed"] = "no"
        stops.append(st)
        for e in evs:
            ev_rows.append({"subject_id": subject, "t_utc": pd.Timestamp(e["t"], unit="s", tz="UTC").round("ms"),
                            "kind": e["kind"], "value": e["value"]})
    for subject, a, b in _DOORS:
        ev_rows.append({"subject_id": subject, "t_utc": _local(a), "kind": "door_open", "value": 1.0})
        ev_rows.append({"subject_id": subject, "t_utc": _local(b), "kind": "door_close", "value": 0.0})
    # fuel level (%) and odometer (m) of the lorries, sampled with the track
    for subject in ("lorry-1", "lorry-2"):
        tr = tracks[subject]
        step = haversine_m(tr["true_lat"].to_numpy()[:-1], tr["true_lon"].to_numpy()[:-1],
                            tr["true_lat"].to_numpy()[1:], tr["true_lon"].to_numpy()[1:])
        dist = np.concatenate([[0.0], np.cumsum(step)])
        odo = 412_345_000.0 + dist
        fuel = np.round(89.0 - dist / 1000 * 0.03, 1)  # about 0.03 % of the tank per km
        tracks[subject] = tr.assign(odometer_m=np.round(odo), fuel_pct=fuel)
    events = pd.DataFrame(ev_rows).sort_values(["subject_id", "t_utc", "kind"]).reset_index(drop=True)
    events["t_utc"] = events["t_utc"].astype("datetime64[ns, UTC]")
    truth = pd.concat(stops, ignore_index=True)
    for c in ("t_arrival", "t_departure"):
        truth[c] = truth[c].astype("datetime64[ns, UTC]")
    photos = pd.DataFrame([
        {"subject_id": "phone-A", "t_utc": _local("2025-10-25 10:12:31"), "place": "brussels_hotel",
         "file_name": "IMG_0412.JPG", "camera_clock_offset": pd.Timedelta(0)},
        {"subject_id": "phone-A", "t_utc": _local("2025-10-24 16:45:02"), "place": "calais_camp",
         "file_name": "IMG_0398.JPG", "camera_clock_offset": pd.Timedelta(hours=-3, minutes=-7)},
    ])
    photos["lat"] = [PLACES[p][0] for p in photos["place"]]
    photos["lon"] = [PLACES[p][1] for p in photos["place"]]
    roads = {"E40/A16": list(dict(_MAIN).values()), "N31 to Zeebrugge": list(dict(_BRANCH).values())}
    return Scenario(seed=seed, tz=TZ, subjects=SUBJECTS, places=dict(PLACES), roads=roads,
                    tracks=tracks, events=events, truth_stops=truth, off_intervals=off,
                    photos=photos)
