"""EXIF/HEIC photo loader: GPS time vs camera clock, stated basis, unusable GPS IFDs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from routetrace.fuzzing import mutate
from routetrace.loaders import load
from routetrace.testing import assert_count_rule, hash_tree


def _exif(realdata_dir: Path) -> Path:
    return realdata_dir / "exif"


def test_every_real_photo_count_rule_and_read_only(realdata_dir: Path) -> None:
    folder = _exif(realdata_dir)
    before = hash_tree(folder)
    results = {f.name: load(f) for f in sorted(folder.iterdir())}
    assert hash_tree(folder) == before
    for res in results.values():
        assert_count_rule(res)
        assert res.source["format"].iloc[0] == "exif"


@pytest.mark.parametrize("name", ["exifsamples_DSCN0010.jpg", "exifsamples_DSCN0021.jpg",
                                  "exifsamples_DSCN0042.jpg"])
def test_nikon_camera_clock_offset(realdata_dir: Path, name: str) -> None:
    res = load(_exif(realdata_dir) / name)
    fx = res.fixes.iloc[0]
    assert "clock_offset" in fx["flags"] and "time_from_gps" in fx["flags"]
    x = json.loads(fx["extra"])
    assert -23 * 3600 < x["camera_minus_gps_s"] < -21.5 * 3600  # ~22 h behind GPS UTC
    assert fx["t_utc"].strftime("%Y-%m-%d %H") in {"2008-10-23 14"}
    assert res.source["time_basis"].iloc[0].startswith("GPSDateStamp")
    assert 43 < fx["lat"] < 44 and 11 < fx["lon"] < 12
    assert x["map_datum"] == "WGS-84"  # space padding stripped
    ev = res.events.iloc[0]
    assert ev["kind"] == "photo" and ev["text"] == name


def test_iphone6_offset_is_the_zone_not_a_wrong_clock(realdata_dir: Path) -> None:
    res = load(_exif(realdata_dir) / "exifsamples_iphone6_hdr_YES.jpg")
    fx = res.fixes.iloc[0]
    x = json.loads(fx["extra"])
    assert round(x["camera_minus_gps_s"]) == 7200 and abs(x["camera_minus_local_s"]) < 1
    assert "clock_offset" not in fx["flags"]
    assert fx["lon"] < 0  # western hemisphere


def test_canon_camera_clock_off_local_time(realdata_dir: Path) -> None:
    res = load(_exif(realdata_dir) / "gpsbabel_IMG_2065.JPG")
    x = json.loads(res.fixes["extra"].iloc[0])
    assert "clock_offset" in res.fixes["flags"].iloc[0]
    assert round(x["camera_minus_gps_s"]) == -28801


def test_heic_with_offset(realdata_dir: Path) -> None:
    res = load(_exif(realdata_dir) / "exifsamples_IMG_5195_iphone11promax.HEIC")
    fx = res.fixes.iloc[0]
    assert fx["t_utc"] == pd.Timestamp("2021-04-11T20:47:53Z")  # 15:47:53 at -05:00
    assert json.loads(fx["extra"])["utc_offset"] == "-05:00"
    assert 39 < fx["lat"] < 39.1 and -94.4 < fx["lon"] < -94.2
    assert fx["h_acc_m"] > 0 and fx["alt_m"] > 0 and fx["speed_mps"] >= 0
    assert "OffsetTimeOriginal" in res.source["time_basis"].iloc[0]


def test_samsung_without_capture_time_needs_tz(realdata_dir: Path) -> None:
    p = _exif(realdata_dir) / "exifsamples_67-0_length_string.jpg"
    res = load(p)
    assert len(res.fixes) == 0 and len(res.rejects) == 1
    assert "--tz" in res.rejects["reason"].iloc[0]
    stated = load(p, tz="Europe/Berlin")
    assert stated.fixes["t_utc"].iloc[0] == pd.Timestamp("2016-09-12T08:05:31Z")
    assert "Europe/Berlin" in stated.source["time_basis"].iloc[0]


def test_empty_gps_ifd_is_a_reject(realdata_dir: Path) -> None:
    res = load(_exif(realdata_dir) / "exifsamples_45-gps_ifd.jpg")
    assert len(res.fixes) == 0 and len(res.events) == 0
    assert "GPS IFD" in res.rejects["reason"].iloc[0]


def _jpeg(tmp_path: Path, name: str, gps: dict[int, object] | None,
          exif_ifd: dict[int, object] | None = None) -> Path:
    img = Image.new("RGB", (8, 8), (120, 130, 140))
    ex = Image.Exif()
    if exif_ifd:
        ex.get_ifd(0x8769).update(exif_ifd)
    if gps is not None:
        ex.get_ifd(0x8825).update(gps)
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=ex.tobytes())
    p = tmp_path / name
    p.write_bytes(buf.getvalue())
    return p


def test_generated_zero_gps_and_southern_hemisphere(tmp_path: Path) -> None:
    dto = {0x9003: "2025:10:24 12:00:00", 0x9011: "+02:00"}
    zero = _jpeg(tmp_path, "zero.jpg", {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}, dto)
    res = load(zero)
    assert res.rejects["reason"].iloc[0].endswith("0,0 (placeholder)")
    south = _jpeg(tmp_path, "s.jpg", {1: "S", 2: (33.0, 30.0, 0.0), 3: "W", 4: (70.0, 36.0, 0.0)}, dto)
    r2 = load(south)
    fx = r2.fixes.iloc[0]
    assert (fx["lat"], fx["lon"]) == (-33.5, -70.6)
    assert fx["t_utc"] == pd.Timestamp("2025-10-24T10:00:00Z")
    nogps = _jpeg(tmp_path, "n.jpg", None, dto)
    r3 = load(nogps)
    assert len(r3.fixes) == 0 and len(r3.events) == 1 and pd.isna(r3.events["lat"].iloc[0])
    assert_count_rule(r3)


def test_gps_time_out_of_range_is_no_time_not_a_failure() -> None:
    # EXIF rationals are uint32/uint32: an hour of 4,294,967,295 overflows pandas' Timedelta
    from types import SimpleNamespace

    from routetrace.loaders.exif import _gps_time
    date = SimpleNamespace(values="2024:05:01")
    for hours in (4_294_967_295, float("inf")):
        stamp = SimpleNamespace(values=[hours, 0, 0])
        assert _gps_time({"GPS GPSDate": date, "GPS GPSTimeStamp": stamp}) is None
    ok = SimpleNamespace(values=[10, 30, 0])
    assert _gps_time({"GPS GPSDate": date, "GPS GPSTimeStamp": ok}) == pd.Timestamp("2024-05-01T10:30:00Z")


@pytest.mark.parametrize(("seed", "ops", "error"), [
    ("exifsamples_DSCN0042.jpg", [("flip", 993920906, 419223427)], "IndexError"),  # fuzz exif:67173
    ("exifsamples_IMG_5195_iphone11promax.HEIC",
     [("truncate", 233743887, 162985062), ("insert", 582273714, 936797298)], "EOFError"),  # exif:65029
    ("exifsamples_IMG_5195_iphone11promax.HEIC",
     [("repeat", 774586551, 302599746), ("delete", 976610958, 958991439)], "AssertionError"),  # exif:60658
])
def test_metadata_the_parser_cannot_read_is_a_reject(realdata_dir: Path, tmp_path: Path, seed: str,
                                                     ops: list[tuple[str, int, int]], error: str) -> None:
    """A damaged photo on which exifread raises: the photo (one record) is a reject naming
    the parser's error (was: a file error out of the loader boundary)."""
    p = tmp_path / seed
    p.write_bytes(mutate((realdata_dir / "exif" / seed).read_bytes(), ops))
    res = load(p, format="exif")
    assert_count_rule(res)
    assert res.records_read == 1 and res.rejects["record"].tolist() == ["image"]
    assert res.rejects["reason"].iloc[0].startswith(f"metadata unreadable: exifread could not parse "
                                                    f"this file's EXIF/HEIF structure ({error}")


def _tiff(order: str, entries: dict[str, list[tuple[int, int, object]]]) -> bytes:
    """A TIFF written byte by byte: IFD0 with an EXIF (0x8769) and a GPS (0x8825) sub-IFD.

    ``entries`` maps "ifd0", "exif", "gps" to (tag, type, value) with type 1 BYTE, 2 ASCII,
    3 SHORT, 4 LONG, 5 RATIONAL (value: a tuple of floats, written as n/1000000).
    ``order`` is "<" (``II*\\0``) or ">" (``MM\\0*``).
    """
    import struct

    def payload(typ: int, value: object) -> tuple[int, bytes]:
        if typ == 2:
            raw = str(value).encode() + b"\0"
            return len(raw), raw
        vals = value if isinstance(value, tuple) else (value,)
        if typ == 5:
            return len(vals), b"".join(struct.pack(order + "II", round(v * 1e6), 1_000_000)
                                       for v in vals)
        fmt = {1: "B", 3: "H", 4: "I"}[typ]
        return len(vals), struct.pack(order + fmt * len(vals), *vals)

    names = ["ifd0", "exif", "gps"]
    ifds = {k: list(entries.get(k, [])) for k in names}
    ifds["ifd0"] += [(0x8769, 4, 0), (0x8825, 4, 0)]  # pointers, filled in below

    def size(k: str) -> int:
        extra = sum(len(b) + len(b) % 2 for _, b in (payload(t, v) for _, t, v in ifds[k])
                    if len(b) > 4)
        return 2 + 12 * len(ifds[k]) + 4 + extra

    offsets, at = {}, 8
    for k in names:
        offsets[k], at = at, at + size(k)
    ifds["ifd0"] = [(tag, t, offsets["exif"] if tag == 0x8769 else offsets["gps"] if tag == 0x8825
                     else v) for tag, t, v in ifds["ifd0"]]
    out = bytearray((b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8))
    for k in names:
        rows = sorted(ifds[k])
        data_at = offsets[k] + 2 + 12 * len(rows) + 4
        head, data = bytearray(struct.pack(order + "H", len(rows))), bytearray()
        for tag, typ, value in rows:
            count, raw = payload(typ, value)
            if len(raw) <= 4:
                field_ = raw.ljust(4, b"\0")
            else:
                field_ = struct.pack(order + "I", data_at + len(data))
                data += raw + b"\0" * (len(raw) % 2)
            head += struct.pack(order + "HHI", tag, typ, count) + field_
        out += head + struct.pack(order + "I", 0) + data
    return bytes(out)


@pytest.mark.parametrize(("order", "name"), [("<", "DSC_0001.NEF"), (">", "IMG_0001.dng"),
                                             ("<", "scan.tif"), (">", "renamed.bin")])
def test_tiff_based_photos_are_recognised_and_read(tmp_path: Path, order: str, name: str) -> None:
    """TIFF, DNG and NEF share the TIFF header (II*\\0 / MM\\0*): recognised by it and read
    (issue 19; was: 'no loader recognises this file')."""
    from routetrace.loaders import detect_format

    p = tmp_path / name
    p.write_bytes(_tiff(order, {
        "ifd0": [(0x010F, 2, "NIKON CORPORATION"), (0x0110, 2, "NIKON D850")],
        "exif": [(0x9003, 2, "2025:10:24 12:00:05"), (0x9011, 2, "+02:00")],
        "gps": [(0, 1, (2, 3, 0, 0)), (1, 2, "S"), (2, 5, (33.0, 30.0, 0.0)), (3, 2, "W"),
                (4, 5, (70.0, 36.0, 0.0)), (7, 5, (10.0, 0.0, 0.0)), (29, 2, "2025:10:24")],
    }))
    assert p.read_bytes()[:4] == (b"II*\x00" if order == "<" else b"MM\x00*")
    assert detect_format(p).name == "exif"
    res = load(p)
    assert_count_rule(res)
    fx = res.fixes.iloc[0]
    assert (fx["lat"], fx["lon"]) == (-33.5, -70.6)
    assert fx["t_utc"] == pd.Timestamp("2025-10-24T10:00:00Z") and "time_from_gps" in fx["flags"]
    x = json.loads(fx["extra"])
    assert x["make"] == "NIKON CORPORATION" and x["camera_minus_local_s"] == 5.0
    assert res.events["text"].iloc[0] == name


def test_tiff_without_gps_values_is_a_reject_and_not_a_tiff_is_unknown(tmp_path: Path) -> None:
    from routetrace.errors import UnknownFormat

    p = tmp_path / "broken.dng"
    p.write_bytes(_tiff("<", {"exif": [(0x9003, 2, "2025:10:24 12:00:05")]}))  # empty GPS IFD
    res = load(p)
    assert_count_rule(res)
    assert res.rejects["reason"].iloc[0].startswith("GPS IFD unusable")
    fake = tmp_path / "fake.tif"
    fake.write_bytes(b"IX*\x00" + bytes(200))
    with pytest.raises(UnknownFormat):
        load(fake)
