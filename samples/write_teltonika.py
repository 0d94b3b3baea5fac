"""The lorries' Teltonika FMB125 trackers as raw codec-8E binary captures (TCP stream).

Each capture is the IMEI login packet followed by TCP frames of up to 20 records, as a
server would store the device's byte stream. Records: every observed track fix (30 s
moving, hourly parked) plus an event-triggered record at each ignition and door change
of the scenario. IO elements: 239 ignition, 240 movement, 1 DIN1, 2 DIN2 (the rear door
sensor: 1 = open), 21 GSM signal, 24 speed, 66 external voltage (mV), 89 fuel level (%),
16 total odometer (m). Ingest with ``options={"door_input": 2}`` (the FMB profile's
default) to get door_open/door_close events; lorry-1's door opens at the Wetteren car
park at night.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..loaders import teltonika_codec as tc
from .generate import SampleFile
from .scenario import Scenario


def _capture(sc: Scenario, subject: str) -> bytes:
    tr = sc.tracks[subject]
    ev = sc.events[sc.events["subject_id"] == subject]
    t_tr = tr["t_utc"].astype("int64").to_numpy() // 1_000_000
    t_ev = ev["t_utc"].astype("int64").to_numpy() // 1_000_000
    times = np.unique(np.concatenate([t_tr, t_ev]))
    # state of each input at each record time: the last event at or before it
    states = {}
    for on, off in (("ignition_on", "ignition_off"), ("door_open", "door_close")):
        e = ev[ev["kind"].isin([on, off])].sort_values("t_utc")
        et = e["t_utc"].astype("int64").to_numpy() // 1_000_000
        val = (e["kind"] == on).to_numpy().astype(int)
        idx = np.searchsorted(et, times, side="right") - 1
        states[on] = np.where(idx >= 0, val[np.clip(idx, 0, None)], 0) if len(val) else \
            np.zeros(len(times), dtype=int)
    trig = {int(t) for t in t_ev}
    # position, speed, fuel and odometer from the last track fix at or before the time
    j = np.clip(np.searchsorted(t_tr, times, side="right") - 1, 0, len(tr) - 1)
    lat, lon = tr["lat"].to_numpy()[j], tr["lon"].to_numpy()[j]
    alt = tr["alt_m"].to_numpy()[j]
    spd = np.where(np.isin(times, t_tr), tr["speed_mps"].to_numpy()[j] * 3.6, 0.0)
    course = np.nan_to_num(tr["course_deg"].to_numpy()[j])
    fuel = tr["fuel_pct"].to_numpy()[j]
    odo = tr["odometer_m"].to_numpy()[j]
    records = []
    for k, t in enumerate(times):
        ign, door = int(states["ignition_on"][k]), int(states["door_open"][k])
        event_io = 0
        if int(t) in trig:
            event_io = 2 if k and door != int(states["door_open"][k - 1]) else 239
        records.append(tc.Record(
            t_ms=int(t), lat=float(lat[k]), lon=float(lon[k]), alt_m=round(float(alt[k])),
            angle=round(float(course[k])) % 360, sats=11, speed_kmh=round(float(spd[k])),
            priority=1 if event_io else 0, event_io=event_io,
            io=[tc.IoValue(239, ign, 1), tc.IoValue(240, int(spd[k] > 0), 1),
                tc.IoValue(1, ign, 1), tc.IoValue(2, door, 1), tc.IoValue(21, 4, 1),
                tc.IoValue(24, round(float(spd[k])), 2),
                tc.IoValue(66, 27_800 if ign else 25_100, 2),
                tc.IoValue(89, round(float(fuel[k])), 1), tc.IoValue(16, int(odo[k]), 4)]))
    imei = str(sc.subjects[subject]["imei"])
    frames = [tc.encode_tcp_frame(records[a: a + 20], tc.CODEC_8E) for a in range(0, len(records), 20)]
    return tc.encode_login(imei) + b"".join(frames)


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/<lorry>/<lorry>_fmb125.bin`` for each lorry with a Teltonika tracker."""
    files = []
    for subject, info in sorted(sc.subjects.items()):
        if "Teltonika" not in str(info.get("tracker", "")) or subject not in sc.tracks:
            continue
        folder = out / "evidence" / subject
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{subject}_fmb125.bin"
        path.write_bytes(_capture(sc, subject))
        files.append(SampleFile(
            path=path.relative_to(out).as_posix(), subject_id=subject, format=None,
            description=f"{subject} Teltonika FMB125 tracker, raw codec-8E TCP capture (IMEI "
                        f"{info['imei']}); door sensor on DIN2"))
    return files


__all__ = ["write"]

