"""GPX loader: real files, count rule, rejected times, hostile XML, read-only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import CorruptSource, UnknownFormat
from routetrace.loaders import load
from routetrace.testing import assert_count_rule, hash_tree


def test_every_real_gpx_loads_with_count_rule_and_stays_byte_identical(realdata_dir: Path) -> None:
    folder = realdata_dir / "gpx"
    before = hash_tree(folder)
    results = {f.name: load(f) for f in sorted(folder.glob("*.gpx"))}
    assert hash_tree(folder) == before
    for res in results.values():
        assert_count_rule(res)
    moj = results["gpxpy_Mojstrovka.gpx"]
    assert len(moj.fixes) == 0 and len(moj.rejects) == 184
    assert moj.rejects["reason"].str.contains("implausible time 1901").all()
    cer = results["gpxpy_cerknicko-without-times.gpx"]
    assert (len(cer.fixes), len(cer.places), len(cer.rejects)) == (5, 7, 291)
    assert results["reitti_gpslogger_20250531.gpx"].fixes["fix_kind"].value_counts().to_dict() == {
        "network": 1889, "gps": 678}
    arc = results["dawarich_arc_example.gpx"]
    # +07:00 offsets are converted to UTC
    assert arc.fixes["t_utc"].dt.tz is not None
    less = results["gpxpy_track-with-less-sec-time.gpx"].fixes["t_utc"]
    assert [t.utcoffset() for t in less] == [pd.Timedelta(0)] * 2
    assert len(results["gpxpy_unicode_with_bom.gpx"].places) == 1


def _write(tmp_path: Path, body: str, name: str = "t.gpx") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


GPX = """<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<trk><trkseg>{pts}</trkseg></trk></gpx>"""


def test_offsets_and_naive_times(tmp_path: Path) -> None:
    pts = ('<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00+02:00</time></trkpt>'
           '<trkpt lat="51.0" lon="3.87"><time>2025-10-26T02:30:00</time></trkpt>')
    res = load(_write(tmp_path, GPX.format(pts=pts)))
    assert res.fixes["t_utc"].tolist() == [pd.Timestamp("2025-10-25T23:30:00Z")]
    assert "no UTC offset" in res.rejects["reason"].iloc[0]
    # with a stated zone the naive time is read; 02:30 on 26 Oct 2025 is ambiguous in Brussels
    res2 = load(_write(tmp_path, GPX.format(pts=pts)), tz="Europe/Brussels")
    assert len(res2.fixes) == 1 and "ambiguous" in res2.rejects["reason"].iloc[0]
    assert "Europe/Brussels" in res2.source["time_basis"].iloc[0]


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><gpx version="1.1"><wpt lat="1" lon="1">'
            '<name>&b;</name></wpt></gpx>')
    with pytest.raises(CorruptSource, match="DTDs and entities"):
        load(_write(tmp_path, bomb))


def test_truncated_xml_is_one_clear_error(tmp_path: Path) -> None:
    body = GPX.format(pts='<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00Z</time>')[:-30]
    with pytest.raises(CorruptSource, match="malformed XML") as info:
        load(_write(tmp_path, body))
    assert "t.gpx" in str(info.value)


def test_empty_and_garbage_files_are_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "empty.gpx").write_bytes(b"")
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnknownFormat, match="empty file"):
        load(tmp_path / "empty.gpx")
    with pytest.raises(UnknownFormat, match="no loader recognises"):
        load(tmp_path / "garbage.bin")


def test_projected_metres_are_record_rejects_and_the_rest_is_kept(tmp_path: Path) -> None:
    """A converter that wrote UTM metres into lat/lon (issue 19): each such point is a reject
    naming its trk/seg/pt locator (was: SchemaError 'fixes.lat ... at row 0' for the file)."""
    pts = ('<trkpt lat="51.0" lon="3.87"><time>2025-10-26T01:30:00Z</time></trkpt>'
           '<trkpt lat="5651234.5" lon="412345.2"><time>2025-10-26T01:31:00Z</time></trkpt>'
           '<trkpt lat="nan" lon="3.87"><time>2025-10-26T01:32:00Z</time></trkpt>')
    body = GPX.format(pts=pts).replace(
        "</gpx>", '<rte><rtept lat="51.1" lon="-200.0"/></rte>'
                  '<wpt lat="5651234.5" lon="412345.2"><name>utm</name></wpt>'
                  '<wpt lat="51.2" lon="3.9"><name>ok</name></wpt></gpx>')
    res = load(_write(tmp_path, body))
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["trk[0]/seg[0]/pt[0]"]
    assert res.places["record"].tolist() == ["wpt[1]"]
    rej = res.rejects.set_index("record")["reason"]
    assert sorted(rej.index) == ["rte[0]/pt[0]", "trk[0]/seg[0]/pt[1]", "trk[0]/seg[0]/pt[2]", "wpt[0]"]
    assert "outside WGS84 degrees" in rej["trk[0]/seg[0]/pt[1]"]
    assert "not a number" in rej["trk[0]/seg[0]/pt[2]"]
