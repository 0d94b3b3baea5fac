"""KML/KMZ loader: real files, reduced-precision times, tracks, hostile XML and archives."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import CorruptSource, UnsafeArchive
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree


def test_every_real_kml_loads_and_stays_byte_identical(realdata_dir: Path) -> None:
    folder = realdata_dir / "kml"
    before = hash_tree(folder)
    res = {}
    for f in sorted(folder.iterdir()):
        assert detect_format(f).name == ("kmz" if f.suffix == ".kmz" else "kml")
        res[f.name] = load(f)
        assert_count_rule(res[f.name])
    assert hash_tree(folder) == before
    assert len(res["gpsbabel_google_ext.kml"].fixes) == 451
    assert len(res["gpsbabel_Placemark-Track-1.kml"].fixes) == 7  # KML 2.3 <Track> without gx:
    open_tracks = res["gpsbabel_opentracks.kml"]
    assert len(open_tracks.fixes) == 2 and open_tracks.rejects["reason"].str.contains("empty").sum() == 2
    assert res["gpsbabel_realtime.kml"].rejects["reason"].str.contains("implausible time 1970").any()
    assert len(res["dawarich_invalid_coordinates.kml"].rejects) == 2
    mymaps = res["dawarich_mymaps_streaming_data_descriptor.kmz"]
    assert len(mymaps.fixes) == 0 and len(mymaps.places) == 33  # no time elements: places
    assert len(res["dawarich_points_with_timestamps.kmz"].fixes) == 3


def test_reduced_precision_dates_are_windows_not_instants(realdata_dir: Path) -> None:
    res = load(realdata_dir / "kml" / "gpsbabel_xsddatetime.kml")
    pl = res.places.set_index("t_precision")
    assert set(pl.index) == {"year", "month", "day"}
    assert pl.loc["year", "t_start"] == pd.Timestamp("1997-01-01T00:00Z")
    assert pl.loc["month", "t_end"] > pd.Timestamp("1997-07-31T23:59Z")
    assert (res.places["flags"] == "time_precision_reduced").all()
    assert sorted(res.fixes["t_utc"]) == [pd.Timestamp("1997-07-16T07:30:15Z")] * 2  # Z and +03:00


def test_entity_expansion_and_malformed_xml_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.kml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
                    '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&b;</name></Placemark></kml>')
    with pytest.raises(CorruptSource, match="entity"):
        load(bomb)
    utf16 = tmp_path / "bomb16.kml"  # the same declarations in UTF-16: refused after parsing
    utf16.write_bytes(bomb.read_text().replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"))
    with pytest.raises(CorruptSource, match="entity"):
        load(utf16, format="kml")
    bad = tmp_path / "bad.kml"
    bad.write_text('<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><Point>')
    with pytest.raises(CorruptSource, match="malformed XML"):
        load(bad)


def test_kmz_with_traversal_or_bomb_member_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.kmz"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../doc.kml", "<kml/>")
    with pytest.raises(UnsafeArchive, match="unsafe member path"):
        load(evil)
    bomb = tmp_path / "bomb.kmz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", b"<kml>" + b" " * (30 << 20) + b"</kml>")
    with pytest.raises(UnsafeArchive, match="ratio"):
        load(bomb)


def test_naive_times_need_tz(tmp_path: Path) -> None:
    p = tmp_path / "naive.kml"
    p.write_text('<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><TimeStamp><when>2025-10-26T22:20:00'
                 '</when></TimeStamp><Point><coordinates>3.87,51.0</coordinates></Point></Placemark></kml>')
    assert "no UTC offset" in load(p).rejects["reason"].iloc[0]
    res = load(p, tz="Europe/Brussels")
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2025-10-26T21:20:00Z")


def test_multitrack_pairs_precision_and_surplus_coords(tmp_path: Path) -> None:
    p = tmp_path / "multi.kml"
    p.write_text(
        '<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">'
        "<Placemark><gx:MultiTrack>"
        "<gx:Track><when>2025-10-26T22:00:00Z</when><when>2025-10</when><when>2025-10-26T22:00:10Z</when>"
        "<gx:coord>3.87 51.0 5</gx:coord><gx:coord>3.88 51.0 5</gx:coord><gx:coord/></gx:Track>"
        "<gx:Track><when>2025-10-26T22:05:00Z</when>"
        "<gx:coord>3.89 51.0 5</gx:coord><gx:coord>3.90 51.0 5</gx:coord></gx:Track>"
        "</gx:MultiTrack></Placemark></kml>")
    res = load(p)
    assert_count_rule(res)
    assert res.records_read == 5 and len(res.fixes) == 2
    reasons = res.rejects.set_index("record")["reason"]
    assert "month precision" in reasons["Placemark[0]/Track[0]/when[1]"]  # never a fake instant
    assert "empty" in reasons["Placemark[0]/Track[0]/when[2]"]
    assert "without a matching <when>" in reasons["Placemark[0]/Track[1]/coord[1]"]


def test_lines_multigeometry_and_verbatim_text(tmp_path: Path) -> None:
    desc = "  <b>meet</b> at the\n  back gate &amp; wait  "
    p = tmp_path / "lines.kml"
    p.write_text(
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<Placemark><name>route</name><description><![CDATA[{desc}]]></description>"
        "<TimeStamp><when>2025-10-26T22:00:00Z</when></TimeStamp>"
        "<LineString><coordinates>3.87,51.0 3.88,51.1</coordinates></LineString></Placemark>"
        "<Placemark><name>two pins</name><ExtendedData><SchemaData><SimpleData name=\"who\">A</SimpleData>"
        "</SchemaData></ExtendedData><MultiGeometry><Point><coordinates>3.1,50.1</coordinates></Point>"
        "<Point><coordinates>3.2,50.2</coordinates></Point></MultiGeometry></Placemark>"
        "</Document></kml>")
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 0 and len(res.places) == 2  # a timed line is a place, not a fix
    pl = res.places.set_index("name")
    assert pl.loc["route", "text"] == desc
    assert pl.loc["route", "t_start"] == pd.Timestamp("2025-10-26T22:00:00Z")
    assert '"multigeometry_parts":2' in pl.loc["two pins", "extra"] and '"who":"A"' in pl.loc["two pins", "extra"]


def test_mymaps_kmz_keeps_extended_data_and_description_without_inventing_times(realdata_dir: Path) -> None:
    res = load(realdata_dir / "kml" / "dawarich_mymaps_streaming_data_descriptor.kmz")
    with zipfile.ZipFile(realdata_dir / "kml" / "dawarich_mymaps_streaming_data_descriptor.kmz") as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())  # streaming zip: data descriptors
    pl = res.places
    assert pl["t_start"].isna().all() and (pl["t_precision"] == "none").all()  # times only in text
    assert pl["text"].str.contains(r"from \d{4}-\d{2}-\d{2}T").all()  # description kept verbatim
    extra = [json.loads(e) for e in pl["extra"]]  # plain dicts (Series.map would infer a struct)
    assert all({"Category", "Distance"} <= set(e["data"]) for e in extra)  # ExtendedData
    assert sorted(e["geometry"] for e in extra) == ["LineString"] * 15 + ["Point"] * 18


def test_extended_data_of_timed_points_and_tracks_is_kept_on_the_fix(tmp_path: Path) -> None:
    p = tmp_path / "ext.kml"
    p.write_text(
        '<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>'
        '<Placemark><ExtendedData><Data name="speed"><value>12</value></Data></ExtendedData>'
        "<TimeStamp><when>2025-10-26T22:00:00Z</when></TimeStamp><Point><coordinates>3.87,51.0</coordinates>"
        "</Point></Placemark>"
        '<Placemark><ExtendedData><Data name="device"><value>tracker 7</value></Data></ExtendedData>'
        "<gx:Track><when>2025-10-26T22:01:00Z</when><gx:coord>3.88 51.0 5</gx:coord></gx:Track></Placemark>"
        "</Document></kml>")
    res = load(p)
    assert_count_rule(res)
    extra = {r: json.loads(e) for r, e in zip(res.fixes["record"], res.fixes["extra"], strict=True)}
    assert extra["Placemark[0]"]["data"] == {"speed": "12"}
    assert extra["Placemark[1]/Track[0]/when[0]"]["data"] == {"device": "tracker 7"}


def test_sample_case_investigator_pins_are_places(tmp_path: Path) -> None:
    from routetrace.samples import write_kml
    from routetrace.samples.scenario import build_scenario

    sc = build_scenario(seed=7)
    (sf,) = write_kml.write(sc, tmp_path)
    first = (tmp_path / sf.path).read_bytes()
    write_kml.write(sc, tmp_path)
    assert (tmp_path / sf.path).read_bytes() == first  # deterministic
    res = load(tmp_path / sf.path)
    assert_count_rule(res)
    assert len(res.fixes) == 0 and res.places["t_start"].isna().all()  # pins: places, no times
    got = {n: (la, lo) for n, la, lo in zip(res.places["name"], res.places["lat"], res.places["lon"], strict=True)}
    assert got.keys() == sc.places.keys()
    for name, (lat, lon) in sc.places.items():
        assert got[name] == pytest.approx((lat, lon), abs=1e-6)


TIMELINE_KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>Location history from 2024-03-01 to 2024-03-01</name>
<Placemark><name>Home</name><address>1 Main St</address>
 <ExtendedData><Data name="Category"><value>Home</value></Data></ExtendedData>
 <description>Home from 2024-03-01T00:00:00.000Z to 2024-03-01T08:01:00.000Z</description>
 <Point><coordinates>4.3517,50.8503,0</coordinates></Point>
 <TimeSpan><begin>2024-03-01T00:00:00.000Z</begin><end>2024-03-01T08:01:00.000Z</end></TimeSpan>
 <gx:Track><altitudeMode>clampToGround</altitudeMode></gx:Track></Placemark>
<Placemark><name>Unknown</name>
 <TimeSpan><begin>2024-03-01T08:01:00.000Z</begin><end>2024-03-01T08:02:00.000Z</end></TimeSpan>
 <gx:Track/></Placemark>
<Placemark><name>Driving</name>
 <ExtendedData><Data name="Category"><value>Driving</value></Data><Data name="Distance"><value>5026</value></Data></ExtendedData>
 <TimeSpan><begin>2024-03-01T08:02:00.000Z</begin><end>2024-03-01T08:20:00.000Z</end></TimeSpan>
 <gx:Track><altitudeMode>clampToGround</altitudeMode>
  <gx:coord>4.3517 50.8503 0</gx:coord><gx:coord>4.3800 50.8600 0</gx:coord>
  <gx:coord>200 95 0</gx:coord><gx:coord>4.4100 50.8700 0</gx:coord></gx:Track></Placemark>
<Placemark><name>Park</name>
 <TimeSpan><begin>soon</begin><end>2024-13-45T99:00:00Z</end></TimeSpan>
 <Polygon><outerBoundaryIs><LinearRing><coordinates>4.40,50.86 4.42,50.86 4.42,50.88 4.40,50.86</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
<Placemark><name>Walking</name>
 <TimeSpan><begin>yesterday</begin><end>2024-03-01T09:00:00Z</end></TimeSpan>
 <LineString><coordinates>4.41,50.87,0 4.42,50.88,0</coordinates></LineString></Placemark>
<Placemark><name>Untimed track</name>
 <gx:Track><gx:coord>4.3 50.8 0</gx:coord></gx:Track></Placemark>
<Placemark><name>Zone</name><TimeStamp><when>1970-01-01T00:00:00Z</when></TimeStamp>
 <Polygon><outerBoundaryIs><LinearRing><coordinates>4.40,50.86 4.42,50.86 4.42,50.88 4.40,50.86</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Document></kml>
"""


def test_google_timeline_kml_timespans_and_empty_tracks(tmp_path: Path) -> None:
    """A Timeline export (issue 19): a Placemark with a TimeSpan and an empty gx:Track is a
    record (was lost with no row and no reject); the coords of a track without <when> are
    places bounded by the Placemark's TimeSpan (were rejected 'no time'); an unusable
    TimeSpan or TimeStamp costs a polygon or line its time only, not the place."""
    p = tmp_path / "history-2024-03-01.kml"
    p.write_text(TIMELINE_KML, encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert res.records_read == 1 + 1 + 4 + 1 + 1 + 1 + 1
    pl = res.places.set_index("record")
    rej = res.rejects.set_index("record")["reason"]
    # 0: the visit is a place with its window
    home = pl.loc["Placemark[0]"]
    assert (home["t_start"], home["t_end"], home["t_precision"]) == (
        pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-03-01T08:01Z"), "window")
    # 1: nothing but an empty track: a reject naming it
    assert "gx:Track holds no <when> and no <coord>" in rej["Placemark[1]"]
    # 2: three usable coords bounded by the span, one out-of-range coord rejected
    drive = pl[pl.index.str.startswith("Placemark[2]/")]
    assert drive.index.tolist() == [f"Placemark[2]/Track[0]/coord[{j}]" for j in (0, 1, 3)]
    assert (drive["kind"] == "track_point").all() and (drive["flags"] == "no_time").all()
    assert (drive["t_start"] == pd.Timestamp("2024-03-01T08:02Z")).all()
    assert (drive["t_end"] == pd.Timestamp("2024-03-01T08:20Z")).all()
    assert (drive["t_precision"] == "window").all()
    assert "invalid coordinate 200.0, 95.0" in rej["Placemark[2]/Track[0]/coord[2]"]
    assert json.loads(drive["extra"].iloc[0])["time_bounds"] == "Placemark TimeSpan"
    # 3: the polygon is kept without a time, the TimeSpan's problem stated
    park = pl.loc["Placemark[3]"]
    assert park["flags"] == "no_time" and park["t_precision"] == "none" and pd.isna(park["t_start"])
    assert "<begin>: unreadable time 'soon'" in json.loads(park["extra"])["time_rejected"]
    # 4: one usable bound is kept, the other named
    walk = pl.loc["Placemark[4]"]
    assert pd.isna(walk["t_start"]) and walk["t_end"] == pd.Timestamp("2024-03-01T09:00Z")
    assert walk["t_precision"] == "window" and "'yesterday'" in json.loads(walk["extra"])["time_rejected"]
    # 5: a track coord with no <when> and no TimeSpan stays a 'no time' reject
    assert rej["Placemark[5]/Track[0]/coord[0]"].startswith("<coord> without a matching <when>")
    # 6: a polygon with a placeholder TimeStamp is a place without time
    zone = pl.loc["Placemark[6]"]
    assert zone["flags"] == "no_time" and "implausible time 1970" in json.loads(zone["extra"])["time_rejected"]
    assert len(res.fixes) == 0


_WHENS = ["2025-06-01T10:00:00Z", "2025-06-01T10:00:00.123456789Z", "2025-06-01T12:00:00+02:00",
          " 2025-06-01T10:00:01Z\n", "1997-07", "2025-06-01T10:00:00", "2021-02-30T10:00:00Z",
          "1970-01-01T00:00:01Z", "", "garbage", "2025-06-01T10:00:00+0200", "2150-01-01T00:00:00Z",
          "\u00a02025-06-01T10:00:00Z"]
_COORDS = ["3.5 51.2 10", "3.5 51.2", " 3.5  51.2 \n 4 ", "3.5 51.2 10 99", "1e1 51.2 3", "+3.5 51.2",
           "0 0 0", "200 51 1", "", "abc", "3.5", "5. .5 1", "3.5 51.2 1e999", "3.5\u00a051.2"]


def test_vectorised_track_pairs_read_as_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#21: a track's pairs are converted in one vectorised pass; every pair, plain or odd,
    comes out as the one-by-one reading (kml._pair) says, and only the odd ones take it."""
    from routetrace.loaders import kml

    pairs = [(w, c) for w in _WHENS for c in _COORDS]
    plain = [(f"2025-06-01T11:{k // 60:02d}:{k % 60:02d}Z", f"4.{k:03d} 50.5 {k}") for k in range(2000)]
    pairs = plain[:1000] + pairs + plain[1000:]
    doc = ('<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">'
           "<Placemark><gx:Track>" + "".join(f"<when>{w}</when>" for w, _ in pairs)
           + "".join(f"<gx:coord>{c}</gx:coord>" for _, c in pairs) + "</gx:Track></Placemark></kml>")
    p = tmp_path / "pairs.kml"
    p.write_text(doc, encoding="utf-8")
    calls = []
    real = kml._pair

    def counted(when: str | None, coord: str | None, tz: str | None) -> object:
        calls.append((when, coord))
        return real(when, coord, tz)

    monkeypatch.setattr(kml, "_pair", counted)
    res = load(p)
    assert_count_rule(res)
    assert len(calls) < len(pairs) - 2000  # the plain pairs never took the one-by-one path
    fixes = res.fixes.set_index("record")
    rejects = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    for j, (w, c) in enumerate(pairs):
        got, why = real(w.strip() or None, c.strip() or None, None)
        rec = f"Placemark[0]/Track[0]/when[{j}]"
        if got is None:
            assert rejects[rec] == why, (w, c)
        else:
            row = fixes.loc[rec]
            assert (row["lon"], row["lat"], row["t_utc"]) == (got[0], got[1], got[3]), (w, c)
            assert (pd.isna(row["alt_m"]) and got[2] is None) or row["alt_m"] == got[2], (w, c)


def test_track_points_are_freed_as_they_are_read(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """#21: the tree never holds a track's when/coord elements: they are kept as text and
    freed as the stream passes them (memory bounded by the text, not by an lxml tree)."""
    from routetrace.loaders import kml

    doc = ('<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">'
           "<Placemark><gx:Track>" + "<when>2025-06-01T10:00:00Z</when>" * 500
           + "<gx:coord>3 51 1</gx:coord>" * 500 + "</gx:Track></Placemark></kml>")
    seen = []
    real = kml._placemark

    def spy(pm: object, i: int, out: object, *rest: object) -> None:
        seen.append(sum(1 for _ in pm.iter()))  # type: ignore[attr-defined]
        real(pm, i, out, *rest)  # type: ignore[arg-type]

    p = tmp_path / "t.kml"
    p.write_text(doc)
    monkeypatch.setattr(kml, "_placemark", spy)
    res = load(p)
    assert len(res.fixes) == 500 and seen and seen[0] < 10
