"""Streamed ingest (#21): a large GPX or KML file goes into the case part by part, as its
loader reads it, so an ingest holds one part of the file, not the file; the case's rows are
those of a whole-file ingest, and a file that fails half-way leaves nothing of it."""

from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from routetrace import case as store
from routetrace.app.ingest import ingest
from routetrace.app.verify import verify_case
from routetrace.case import open_case
from routetrace.errors import CaseError
from routetrace.loaders import base, load
from routetrace.testing import example_gpx

SDE = "1767225600"
PART = 500  # rows per part in these tests (PART_ROWS is 500,000)


def _gpx(path: Path, *, n_trk: int = 2_000, n_rte: int = 300, truncate: bool = False) -> Path:
    """GPX 1.1: two tracks (the first typed, two segments), a route and three waypoints;
    every 97th track point has no latitude (a reject)."""
    rng = np.random.default_rng(3)
    t0 = pd.Timestamp("2025-10-24T06:00Z")

    def pt(tag: str, k: int) -> str:
        lat = "" if k % 97 == 96 else f"{51.0 + rng.normal(0, 1e-3):.6f}"
        t = t0 + pd.Timedelta(seconds=5 * k)
        return (f'<{tag} lat="{lat}" lon="{3.7 + rng.normal(0, 1e-3):.6f}"><ele>{k % 50}</ele>'
                f"<time>{t:%Y-%m-%dT%H:%M:%SZ}</time></{tag}>")

    def seg(a: int, b: int) -> str:
        return "<trkseg>" + "".join(pt("trkpt", k) for k in range(a, b)) + "</trkseg>"

    half = n_trk // 2
    body = (f"<trk><name>one</name><type>driving</type>{seg(0, half // 2)}{seg(half // 2, half)}</trk>"
            f"<trk><name>two</name>{seg(half, n_trk)}</trk>"
            "<rte><type>plan</type>" + "".join(pt("rtept", n_trk + k) for k in range(n_rte)) + "</rte>"
            + "".join(f'<wpt lat="51.{k}" lon="3.{k}"><name>w{k}</name></wpt>' for k in range(3)))
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="t" '
           f'xmlns="http://www.topografix.com/GPX/1/1">{body}</gpx>\n')
    if truncate:
        doc = doc[: int(len(doc) * 0.8)]  # malformed XML after most of the track
    path.write_text(doc, encoding="utf-8")
    return path


def _kml(path: Path, *, tracks: int = 6, per_track: int = 350) -> Path:
    """KML: gx:Track Placemarks (whens, then coords; one coord in 50 empty: a reject)
    between Point Placemarks (fixes) and untimed ones (places)."""
    t0 = pd.Timestamp("2025-06-01T00:00Z")
    pms = []
    for i in range(tracks):
        ts = [t0 + pd.Timedelta(seconds=5 * (i * per_track + k)) for k in range(per_track)]
        whens = "".join(f"<when>{t:%Y-%m-%dT%H:%M:%SZ}</when>" for t in ts)
        coords = "".join("<gx:coord/>" if k % 50 == 49 else
                         f"<gx:coord>{3.0 + k * 1e-4:.6f} {50.8 + i * 1e-3:.6f} 12.0</gx:coord>"
                         for k in range(per_track))
        pms.append(f"<Placemark><name>track {i}</name><gx:Track>{whens}{coords}</gx:Track></Placemark>")
        pms.append(f"<Placemark><name>stop {i}</name><TimeStamp><when>{ts[-1]:%Y-%m-%dT%H:%M:%SZ}"
                   f"</when></TimeStamp><Point><coordinates>3.5,50.9</coordinates></Point></Placemark>")
        pms.append(f"<Placemark><name>pin {i}</name><Point><coordinates>3.6,50.7</coordinates>"
                   "</Point></Placemark>")
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2" '
                    'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>' + "".join(pms)
                    + "</Document></kml>\n", encoding="utf-8")
    return path


def _ingest(case: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch, *, part_rows: int | None,
            **kw: Any) -> Any:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SDE)
    with monkeypatch.context() as m:
        if part_rows is not None:
            m.setattr(base, "PART_ROWS", part_rows)
        return ingest(case, files, case_id="CASE", **kw)


def _tree(root: Path) -> dict[str, bytes]:
    """The case's files by path relative to it."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _parts_of(case: Path, kind: str) -> list[str]:
    return sorted(p.relative_to(case).as_posix() for p in (case / "tables" / kind).rglob("*.parquet"))


@pytest.mark.parametrize("make", [_gpx, _kml], ids=["gpx", "kml"])
def test_a_large_file_is_stored_in_parts_with_the_rows_of_a_whole_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Any) -> None:
    f = make(tmp_path / f"big.{make.__name__[1:]}")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    rep_w = _ingest(whole, [f], monkeypatch, part_rows=None, subject_id="phone-A")
    rep_p = _ingest(parts, [f], monkeypatch, part_rows=PART, subject_id="phone-A")
    assert rep_p.rows == rep_w.rows and rep_p.rejected_records == rep_w.rejected_records > 0
    assert len(_parts_of(whole, "fixes")) == 1
    n_fixes = rep_w.rows["fixes"]
    assert len(_parts_of(parts, "fixes")) >= n_fixes // (PART + 100)  # parts of ~PART rows
    cw, cp = open_case(whole), open_case(parts)
    for name in ("fixes", "places", "rejects", "sources", "subjects", "devices"):
        pd.testing.assert_frame_equal(cp.table(name), cw.table(name), obj=name)
    ref = load(f, subject_id="phone-A")  # the whole-file load: same rows
    fixes = store.sort_table(ref.fixes, "fixes")
    pd.testing.assert_frame_equal(cp.table("fixes")[list(fixes.columns)], fixes, check_categorical=False,
                                  check_dtype=False)
    assert int(cp.table("sources")["records_read"].iloc[0]) == ref.records_read
    assert verify_case(parts).ok
    # byte-identical again
    again = tmp_path / "again"
    _ingest(again, [f], monkeypatch, part_rows=PART, subject_id="phone-A")
    assert _tree(again) == _tree(parts)


def test_a_file_failing_after_some_parts_leaves_nothing_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _kml(tmp_path / "good.kml", tracks=2)
    bad = _gpx(tmp_path / "bad.gpx", truncate=True)
    case = tmp_path / "case"
    staged: list[str] = []
    real = store.Case.append_part

    def spy(self: store.Case, name: str, df: pd.DataFrame, *, part: int | None = None) -> str:
        staged.append(rel := real(self, name, df, part=part))
        return rel

    monkeypatch.setattr(store.Case, "append_part", spy)
    rep = _ingest(case, [good, bad], monkeypatch, part_rows=PART, subject_id="p")
    bad_id = store.sha256_file(bad)[:16]
    assert len([r for r in staged if bad_id in r]) >= 3  # parts given before the XML broke
    assert [Path(p).name for p, _ in rep.errors] == ["bad.gpx"]
    assert "malformed XML" in rep.errors[0][1]
    c = open_case(case)
    assert set(c.table("sources")["path"].map(lambda p: Path(p).name)) == {"good.kml"}
    (sid,) = c.table("sources")["source_id"].astype(str)
    assert {p.split("source=")[1][:16] for p in _parts_of(case, "fixes")} == {sid[:16]}
    assert not (case / store.STAGING).exists()
    assert verify_case(case).ok


def test_a_full_disk_while_a_part_is_stored_leaves_the_case_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = tmp_path / "case"
    _ingest(case, [_kml(tmp_path / "first.kml", tracks=1)], monkeypatch, part_rows=None, subject_id="p")
    before = _tree(case)
    big = _gpx(tmp_path / "big.gpx")
    real, calls = store._write_parquet, {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the second part of the big file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(store, "_write_parquet", failing)
        with pytest.raises(CaseError, match="No space left on device.*the case is as it was"):
            _ingest(case, [big], monkeypatch, part_rows=PART, subject_id="p")
    assert calls["n"] == 2
    assert _tree(case) == before and not (case / store.STAGING).exists()
    _ingest(case, [big], monkeypatch, part_rows=PART, subject_id="p")  # re-run: completes it
    ref = tmp_path / "ref"
    _ingest(ref, [tmp_path / "first.kml"], monkeypatch, part_rows=None, subject_id="p")
    _ingest(ref, [big], monkeypatch, part_rows=PART, subject_id="p")
    assert _tree(case) == _tree(ref)
    assert verify_case(case).ok


def test_removing_a_streamed_source_removes_every_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = tmp_path / "case"
    small = _kml(tmp_path / "small.kml", tracks=1)
    _ingest(case, [small], monkeypatch, part_rows=None, subject_id="p")
    before = {p: (case / p).read_bytes() for p in _parts_of(case, "fixes")}
    _ingest(case, [_gpx(tmp_path / "big.gpx")], monkeypatch, part_rows=PART, subject_id="p")
    c = open_case(case)
    big = c.table("sources").set_index("path").loc[str(tmp_path / "big.gpx"), "source_id"]
    assert len(c.source_parts("fixes", str(big))) > 2
    c.remove_source(str(big))
    c.save_manifest()
    assert {p: (case / p).read_bytes() for p in _parts_of(case, "fixes")} == before
    assert verify_case(case).ok


def test_the_same_large_file_twice_is_stored_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    f = _gpx(tmp_path / "a" / "big.gpx")
    copy = tmp_path / "b" / "big.gpx"
    copy.write_bytes(f.read_bytes())
    case = tmp_path / "case"
    rep = _ingest(case, [f, copy], monkeypatch, part_rows=PART, subject_id="p")
    assert rep.duplicates == [str(copy)] and len(rep.added) == 1
    once = tmp_path / "once"
    _ingest(once, [f], monkeypatch, part_rows=PART, subject_id="p")
    pd.testing.assert_frame_equal(open_case(case).table("fixes"), open_case(once).table("fixes"))
    assert _parts_of(case, "fixes") == _parts_of(once, "fixes")


def test_an_archive_member_streamed_goes_to_the_archive_subject(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _gpx(tmp_path / "track.gpx")
    z = tmp_path / "phone-B.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(f, "Download/track.gpx")
        zf.writestr("notes.txt", "not evidence")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _ingest(whole, [z], monkeypatch, part_rows=None)
    _ingest(parts, [z], monkeypatch, part_rows=PART)
    cp = open_case(parts)
    assert set(cp.table("fixes")["subject_id"].astype(str)) == {"phone-B"}
    assert len(_parts_of(parts, "fixes")) > 2
    for name in ("fixes", "sources", "devices", "subjects"):
        pd.testing.assert_frame_equal(cp.table(name), open_case(whole).table(name), obj=name)


def test_many_small_files_give_the_same_case_whatever_the_fold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest keeps the small tables of its new sources (sources, rejects, side tables)
    folded into one table every FOLD_SOURCES files, not a LoadResult per file: with a fold
    every 2 files the case is byte-identical to one folded once, rejects included."""
    from routetrace.app import ingest as ingest_mod

    src = tmp_path / "fleet"
    src.mkdir()
    for i in range(7):
        rows = [f"2025-10-2{i}T0{k}:00:00Z,{51 + k / 100:.4f},{3.7 + i / 100:.4f}" for k in range(5)]
        if i % 3 == 0:
            rows.insert(2, "not a time,51.0,3.7")  # a rejected record
        (src / f"lorry{i}.csv").write_text("time,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    trees = []
    for fold in (2, 1_000):
        monkeypatch.setattr(ingest_mod, "FOLD_SOURCES", fold)
        rep = _ingest(tmp_path / f"c{fold}", [src], monkeypatch, part_rows=None, subject_id="lorry")
        assert len(rep.added) == 7 and rep.rejected_records == 3
        trees.append(_tree(tmp_path / f"c{fold}"))
    assert trees[0] == trees[1]
    assert len(open_case(tmp_path / "c2").table("rejects")) == 3


def test_folded_small_tables_hold_one_arrow_chunk_per_column(tmp_path: Path) -> None:
    """The folded sources keep one Arrow chunk per text column, not one per file: 8,000
    portal files made 8,000 chunks per column, and the ingest's memory grew about 10 KB a
    file (227 MiB instead of 298 at 3e6 fixes once folded into one chunk)."""
    from routetrace.app import ingest as ingest_mod

    gpx = example_gpx(tmp_path / "one.gpx", [51.0, 51.001, 51.002])
    res = load(gpx)
    new = ingest_mod._NewSources()
    for _ in range(2 * ingest_mod.FOLD_SOURCES + 3):
        new.add(res)
    (folded, *rest) = new.tables["sources"]
    assert len(folded) == 2 * ingest_mod.FOLD_SOURCES and len(rest) == 3
    texts = [c for c in folded.columns if isinstance(folded[c].dtype, pd.StringDtype)]
    assert "path" in texts and "source_id" in texts
    chunks = {c: pa.chunked_array(pa.array(folded[c].array)).num_chunks for c in texts}
    assert set(chunks.values()) == {1}, chunks
    assert folded["path"].tolist() == [str(res.source["path"].iloc[0])] * len(folded)
    pd.testing.assert_frame_equal(new.joined("sources").iloc[:len(folded)], folded)
