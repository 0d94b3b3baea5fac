"""KML/KMZ loader: real files, reduced-precision times, tracks, hostile XML and archives."""

from __future__ import annotations

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
