"""phone-A (the smuggler's iPhone) as a small full-file-system extraction zip.

Members (rooted as acquisition tools do, under ``filesystem1/``)::

    private/var/mobile/Library/Caches/com.apple.routined/Cache.sqlite   fixes, visits, hints
    private/var/mobile/Library/Caches/com.apple.routined/Local.sqlite   learned places, parked car
    private/var/mobile/Media/PhotoData/Photos.sqlite (+ -wal)           photo assets; the
                                                                         safehouse photo is only
                                                                         in the committed WAL
    private/var/mobile/Media/DCIM/100APPLE/IMG_*.JPG                     geotagged JPEGs

Everything is derived from the fictional scenario. ``Z_PK`` order is deliberately not time
order; speed/course NaN are written as routined's -1; each visit is written as routined
does (arrival-only rows, then arrival+departure rows, each with confidence 0.0 and 1.0).
The photo with a wrong camera clock (``camera_clock_offset``) has GPS time, so the loader
reports the offset; the safehouse photo carries ``OffsetTimeOriginal``. Deterministic:
fixed SQLite salts, fixed zip timestamps, sorted members.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .generate import SampleFile
from .ios_db import cocoa, write_photos, write_routined
from .scenario import Scenario

__all__ = ["write"]

SUBJECT = "phone-A"
ROOT = "filesystem1/private/var/mobile/"
ROUTINED = ROOT + "Library/Caches/com.apple.routined/"
_ZTYPE = {"gps": 1, "wifi": 4, "cell": 6}  # fictional mapping, kept in `extra` by the loader


def _cache(sc: Scenario, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    tr = sc.tracks[SUBJECT].sort_values("t_utc").reset_index(drop=True)
    n = len(tr)
    pk = 1000 + rng.permutation(n)  # Z_PK order is not time order
    cl = pd.DataFrame({
        "Z_PK": pk, "ZSIGNALENVIRONMENTTYPE": 2,
        "ZTYPE": tr["fix_kind"].astype(str).map(_ZTYPE).fillna(9).astype(int),
        "ZALTITUDE": tr["alt_m"].fillna(0.0), "ZCOURSE": tr["course_deg"].fillna(-1.0),
        "ZHORIZONTALACCURACY": tr["h_acc_m"], "ZLATITUDE": tr["lat"], "ZLONGITUDE": tr["lon"],
        "ZSPEED": tr["speed_mps"].fillna(-1.0), "ZTIMESTAMP": cocoa(tr["t_utc"]),
        "ZVERTICALACCURACY": 10.0,
    }).sort_values("Z_PK").reset_index(drop=True)
    stops = sc.truth_stops[sc.truth_stops["subject_id"] == SUBJECT].reset_index(drop=True)
    vrows = []
    pkv = 3000
    for i, s in stops.iterrows():
        last = i == len(stops) - 1
        versions = [(1, None)] if last else [(1, None), (3, s["t_departure"])]
        for typ, exit_t in versions:
            for conf in (0.0, 1.0):
                pkv += 1
                vrows.append({
                    "Z_PK": pkv, "ZTYPE": typ, "ZSOURCE": 1, "ZCONFIDENCE": conf,
                    "ZDETECTIONDATE": cocoa([(exit_t or s["t_arrival"]) + pd.Timedelta("4min")])[0],
                    "ZENTRYDATE": cocoa([s["t_arrival"]])[0],
                    "ZEXITDATE": np.nan if exit_t is None else cocoa([exit_t])[0],
                    "ZLOCATIONLATITUDE": float(s["lat"]) + 0.0002 * (i % 3),
                    "ZLOCATIONLONGITUDE": float(s["lon"]) - 0.0002 * (i % 2),
                    "ZLOCATIONUNCERTAINTY": 35.0 + 5 * i,
                })
    # hints while travelling (between stops), near the track: low-grade, never inside a stop
    times = stops["t_departure"].iloc[:4] + pd.Timedelta("6min")
    idx = np.searchsorted(tr["t_utc"].to_numpy(), times.to_numpy())
    idx = np.clip(idx, 0, n - 1)
    h = pd.DataFrame({
        "Z_PK": np.arange(500, 500 + len(times)), "ZSOURCE": [2, 5, 7, 8][: len(times)],
        "ZDATE": cocoa(times), "ZHORIZONTALUNCERTAINTY": [500.0, 1200.0, 300.0, 800.0][: len(times)],
        "ZLATITUDE": tr["lat"].to_numpy()[idx] + 0.0005, "ZLONGITUDE": tr["lon"].to_numpy()[idx] - 0.0005,
    })
    return {"ZRTCLLOCATIONMO": cl, "ZRTVISITMO": pd.DataFrame(vrows), "ZRTHINTMO": h}


def _local(sc: Scenario) -> dict[str, pd.DataFrame]:
    hotel = sc.places["brussels_hotel"]
    wett = sc.places["wetteren_carpark"]
    stays = sc.truth_stops[(sc.truth_stops["subject_id"] == SUBJECT)
                           & (sc.truth_stops["place"] == "brussels_hotel")]
    ident = bytes.fromhex("5AFE0001" * 4)
    return {
        "ZRTADDRESSMO": pd.DataFrame({"Z_PK": [1], "ZSUBTHOROUGHFARE": ["1"],
                                      "ZTHOROUGHFARE": ["Rue Fictive"], "ZLOCALITY": ["Bruxelles"],
                                      "ZCOUNTRY": ["Belgique"], "ZCOUNTRYCODE": ["BE"]}),
        "ZRTMAPITEMMO": pd.DataFrame({"Z_PK": [1], "ZIDENTIFIER": [ident], "ZNAME": ["Hotel Fictif"],
                                      "ZADDRESS": [1], "ZLATITUDE": [hotel[0]], "ZLONGITUDE": [hotel[1]],
                                      "ZUNCERTAINTY": [30.0]}),
        "ZRTLEARNEDLOCATIONOFINTERESTMO": pd.DataFrame({
            "Z_PK": [1], "ZLOCATIONLATITUDE": [hotel[0]], "ZLOCATIONLONGITUDE": [hotel[1]],
            "ZLOCATIONHORIZONTALUNCERTAINTY": [40.0], "ZPLACETYPE": [0], "ZCONFIDENCE": [0.9],
            "ZPLACECREATIONDATE": cocoa([stays["t_arrival"].min()]), "ZPLACEMAPITEMIDENTIFIER": [ident]}),
        "ZRTLEARNEDLOCATIONOFINTERESTVISITMO": pd.DataFrame({
            "Z_PK": np.arange(1, len(stays) + 1), "ZLOCATIONOFINTEREST": 1,
            "ZENTRYDATE": cocoa(stays["t_arrival"]), "ZEXITDATE": cocoa(stays["t_departure"]),
            "ZLOCATIONLATITUDE": hotel[0], "ZLOCATIONLONGITUDE": hotel[1],
            "ZLOCATIONHORIZONTALUNCERTAINTY": 30.0, "ZCONFIDENCE": 1.0}),
        "ZRTVEHICLEEVENTMO": pd.DataFrame({
            "Z_PK": [1], "ZDATE": cocoa([pd.Timestamp("2025-10-26T20:24:00Z")]),
            "ZLOCDATE": cocoa([pd.Timestamp("2025-10-26T20:24:00Z")]),
            "ZLOCLATITUDE": [wett[0] + 0.0003], "ZLOCLONGITUDE": [wett[1] - 0.0004],
            "ZLOCUNCERTAINTY": [25.0], "ZUSERSETLOCATION": [0], "ZIDENTIFIER": ["C0FFEE-0001"]}),
    }


def _photos(sc: Scenario, folder: Path) -> list[Path]:
    ph = sc.photos[sc.photos["subject_id"] == SUBJECT].sort_values("t_utc").reset_index(drop=True)
    tz = sc.tz
    local = ph["t_utc"].dt.tz_convert(tz)
    off_s = [int(t.utcoffset().total_seconds()) for t in local]
    assets = pd.DataFrame({
        "Z_PK": np.arange(1, len(ph) + 1), "ZKIND": 0, "ZTRASHEDSTATE": 0,
        "ZDATECREATED": cocoa(ph["t_utc"]), "ZLATITUDE": ph["lat"], "ZLONGITUDE": ph["lon"],
        "ZDIRECTORY": "DCIM/100APPLE", "ZFILENAME": ph["file_name"],
        "ZUUID": [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, len(ph) + 1)]})
    attrs = pd.DataFrame({
        "Z_PK": assets["Z_PK"], "ZASSET": assets["Z_PK"], "ZTIMEZONEOFFSET": off_s,
        "ZINFERREDTIMEZONEOFFSET": off_s, "ZTIMEZONENAME": tz, "ZGPSHORIZONTALACCURACY": 8.0,
        "ZORIGINALFILENAME": ph["file_name"],
        "ZEXIFTIMESTAMPSTRING": [t.strftime("%Y:%m:%d %H:%M:%S") for t in local]})
    # a screen recording without location, and the safehouse photo only in the WAL
    video = pd.DataFrame({"Z_PK": [len(ph) + 1], "ZKIND": [1], "ZTRASHEDSTATE": [1],
                          "ZDATECREATED": cocoa([pd.Timestamp("2025-10-26T21:05:00Z")]),
                          "ZLATITUDE": [-180.0], "ZLONGITUDE": [-180.0], "ZDIRECTORY": ["DCIM/100APPLE"],
                          "ZFILENAME": ["RPReplay_0001.MP4"], "ZUUID": ["00000000-0000-4000-8000-0000000000ff"]})
    safe = ph["place"] == "brussels_hotel"
    base = pd.concat([assets[~safe], video], ignore_index=True)
    base_attrs = attrs[~safe].reset_index(drop=True)
    return write_photos(folder / "Photos.sqlite", base, base_attrs, assets[safe], attrs[safe])


def _rational(x: float, den: int = 10000) -> tuple[int, int]:
    return (round(x * den), den)


def _jpeg(row: pd.Series, tz: str) -> bytes:
    true_local = row["t_utc"].tz_convert(tz)
    offset = pd.Timedelta(row["camera_clock_offset"])
    cam = (true_local + offset).tz_localize(None)
    ex = Image.Exif()
    ex[0x010F] = "Apple"
    ex[0x0110] = "iPhone 12"
    exif_ifd = {0x9003: cam.strftime("%Y:%m:%d %H:%M:%S")}
    if offset == pd.Timedelta(0):
        off = true_local.utcoffset()
        mins = int(off.total_seconds() // 60) if off is not None else 0
        exif_ifd[0x9011] = f"{'+' if mins >= 0 else '-'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    ex.get_ifd(0x8769).update(exif_ifd)
    lat, lon, t = float(row["lat"]), float(row["lon"]), row["t_utc"]

    def dms(v: float) -> tuple[float, float, float]:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        return (float(d), float(m), round((v - d - m / 60) * 3600, 4))

    ex.get_ifd(0x8825).update({
        1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon),
        7: (float(t.hour), float(t.minute), float(t.second)), 29: t.strftime("%Y:%m:%d"),
        31: 8.0})
    img = Image.new("RGB", (64, 48), (90, 110, 130))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, exif=ex.tobytes())
    return buf.getvalue()


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/phone-A-extraction/iphone_extraction.zip`` (subject phone-A).

    Parameters
    ----------
    sc : Scenario
        The sample scenario (:func:`routetrace.samples.scenario.build_scenario`).
    out : pathlib.Path
        The sample case's output folder.

    Returns
    -------
    list of SampleFile
        The one zip, with its subject.

    Example
    -------
    >>> from routetrace.samples.scenario import build_scenario
    >>> tmp = tempfile.TemporaryDirectory()
    >>> [f.path for f in write(build_scenario(7), Path(tmp.name))]
    ['evidence/phone-A-extraction/iphone_extraction.zip']
    >>> with zipfile.ZipFile(Path(tmp.name) / "evidence/phone-A-extraction/iphone_extraction.zip") as z:
    ...     sorted(n.rsplit("/", 1)[1] for n in z.namelist())
    ['Cache.sqlite', 'IMG_0398.JPG', 'IMG_0412.JPG', 'Local.sqlite', 'Photos.sqlite', 'Photos.sqlite-wal']
    >>> tmp.cleanup()
    """
    rng = np.random.default_rng(sc.seed + 404)
    # its own folder: the phone's other exports (GPX, chat) stay in evidence/phone-A
    dest = out / "evidence" / f"{SUBJECT}-extraction"
    dest.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="routetrace-ios-sample-") as tmp:
        t = Path(tmp)
        members[ROUTINED + "Cache.sqlite"] = write_routined(t / "Cache.sqlite", _cache(sc, rng)).read_bytes()
        members[ROUTINED + "Local.sqlite"] = write_routined(t / "Local.sqlite", _local(sc)).read_bytes()
        for f in _photos(sc, t):
            members[ROOT + "Media/PhotoData/" + f.name] = f.read_bytes()
    ph = sc.photos[sc.photos["subject_id"] == SUBJECT]
    for _, row in ph.iterrows():
        members[ROOT + "Media/DCIM/100APPLE/" + str(row["file_name"])] = _jpeg(row, sc.tz)
    path = dest / "iphone_extraction.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return [SampleFile(path=path.relative_to(out).as_posix(), subject_id=SUBJECT, tz=None,
                       format=None,
                       description="phone-A full-file-system extraction (zip): routined Cache/Local.sqlite, "
                                   "Photos.sqlite with -wal, geotagged JPEGs (one with a wrong camera clock)")]
