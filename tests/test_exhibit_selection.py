"""An exhibit of some subjects over a period (``routetrace exhibit --subject --from --to``):
drawn from fewer rows of the case, never from changed ones, and saying so on its face."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace import schema
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.cli import main
from routetrace.errors import ExportError, ParameterError
from routetrace.maps.exhibit import exhibit_from_case, make_exhibit
from routetrace.maps.selection import select_rows
from routetrace.samples import generate

FROM, TO = pd.Timestamp("2025-10-26T18:00Z"), pd.Timestamp("2025-10-27T00:00Z")
PICK = ["lorry-1", "phone-A"]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("selection")
    for f in generate(tmp / "s"):
        ingest(tmp / "case", [tmp / "s" / f.path], subject_id=f.subject_id, tz=f.tz, format=f.format)
    assert main(["chronology", str(tmp / "case"), "--quiet"]) == 0
    return tmp / "case"


def _tables(case: Path) -> dict[str, pd.DataFrame]:
    c = open_case(case)
    return {n: c.table(n) for n in ("fixes", "events", "stops", "trips", "gaps", "places", "sources")}


def test_rows_of_the_subjects_in_the_period_and_intervals_overlapping_it_kept_whole(case: Path) -> None:
    t = _tables(case)
    out = select_rows(t, subjects=PICK, t_from="2025-10-26T19:00+01:00", t_to="2025-10-27T01:00+01:00")
    f, allf = out["fixes"], t["fixes"]
    inside = allf["subject_id"].astype(str).isin(PICK) & (allf["t_utc"] >= FROM) & (allf["t_utc"] < TO)
    assert len(f) == int(inside.sum()) > 0
    assert sorted(schema.fix_ids(f).astype(str)) == sorted(schema.fix_ids(allf.loc[inside]).astype(str))
    # a stop is shown when it overlaps the period, with its own arrival and dwell
    st, all_st = out["stops"], t["stops"]
    overlap = (all_st["subject_id"].astype(str).isin(PICK) & (all_st["t_arrival"] < TO)
               & (all_st["t_departure"] >= FROM))
    assert sorted(st["stop_id"].astype(str)) == sorted(all_st.loc[overlap, "stop_id"].astype(str))
    assert (st["t_arrival"] < FROM).any(), "the sample has a stop begun before the period"
    pd.testing.assert_frame_equal(st.sort_values("stop_id").reset_index(drop=True),
                                  all_st[overlap].sort_values("stop_id").reset_index(drop=True))
    for name in ("events", "trips", "gaps"):
        assert set(out[name]["subject_id"].astype(str)) <= set(PICK), name
    # places without a subject (pins, statements) belong to the case: kept when undated or
    # dated in the period (a statement's "that night")
    p, all_p = out["places"], t["places"]
    undated = all_p["t_start"].isna()
    dated_in = ~undated & (all_p["t_start"] < TO) & (all_p["t_end"].fillna(all_p["t_start"]) >= FROM)
    no_subject = all_p["subject_id"].isna()
    assert p["subject_id"].isna().sum() == int((no_subject & (undated | dated_in)).sum())
    assert (no_subject & undated).sum() > 0 and (no_subject & ~undated & ~dated_in).sum() > 0
    assert set(p["subject_id"].dropna().astype(str)) <= set(PICK)
    # the sources listed are those a kept row cites: none of lorry-2's or phone-B's
    kept = set(out["sources"]["subject_id"].astype(str))
    assert "lorry-2" not in kept and "phone-B" not in kept and {"lorry-1", "phone-A"} <= kept


def test_the_exhibit_says_what_it_shows_and_verifies(case: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    out = tmp_path / "ex5"
    assert main(["exhibit", str(case), "--out", str(out), "--exhibit-no", "5", "--no-static", "--quiet",
                 "--subject", "lorry-1", "--subject", "phone-A",
                 "--from", "2025-10-26T19:00+01:00", "--to", "2025-10-27T01:00+01:00"]) == 0
    html = (out / "exhibit.html").read_text(encoding="utf-8")
    assert "Timeline map · subjects lorry-1, phone-A · 2025-10-26 18:00Z to 2025-10-27 00:00Z" in html
    assert "phone-B" not in html and "lorry-2" not in html
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    sel = manifest["parameters"]["selection"]
    assert sel["subjects"] == PICK and sel["from"] == "2025-10-26T18:00:00Z"
    assert sel["to (excluded)"] == "2025-10-27T00:00:00Z" and "shown whole" in sel["rule"]
    assert all("phone-B" not in s["path"] and "lorry-2" not in s["path"] for s in manifest["sources"])
    assert "selection: subjects lorry-1, phone-A" in html  # stated with the parameters too
    kml = (out / "exhibit.kml").read_text(encoding="utf-8")  # Google Earth shows the document's description
    assert "Shows subjects lorry-1, phone-A · 2025-10-26 18:00Z to 2025-10-27 00:00Z (rows of those" in kml
    assert "phone-B" not in kml and "lorry-2" not in kml
    assert main(["verify", str(case), "--exhibit", str(out), "--quiet"]) == 0
    # the same selection again: byte-identical
    again = tmp_path / "again"
    exhibit_from_case(case, out_dir=again, exhibit_no="5", static=False, subjects=PICK,
                      t_from="2025-10-26T19:00+01:00", t_to="2025-10-27T01:00+01:00")
    assert (again / "exhibit.html").read_bytes() == (out / "exhibit.html").read_bytes()


def test_the_whole_case_exhibit_is_unchanged_by_the_new_options(case: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a selection, exhibit_from_case is the make_exhibit of the case's tables and
    parameters as they are (what it was before the options): the same bytes, no selection
    stated, the title as given."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    a = exhibit_from_case(case, out_dir=tmp_path / "a", exhibit_no="1", static=False)
    c = open_case(case)
    t = {n: c.table(n) for n in ("fixes", "stops", "trips", "gaps", "places", "sources", "events")}
    b = make_exhibit(t["fixes"], stops=t["stops"], trips=t["trips"], gaps=t["gaps"], places=t["places"],
                     sources=t["sources"], events=t["events"], case_id=c.case_id, exhibit_no="1",
                     out_dir=tmp_path / "b", params=c.manifest.get("parameters", {}), static=False)
    assert a == b and len(a) >= 7
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert "selection" not in manifest["parameters"]
    html = (tmp_path / "a" / "exhibit.html").read_text(encoding="utf-8")
    assert "Timeline map · " not in html and "Shows " not in (tmp_path / "a" / "exhibit.kml").read_text()


def test_mistakes_are_named(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ParameterError, match="no subject 'lorry-9' in the case; its subjects: .*lorry-1"):
        exhibit_from_case(case, out_dir=tmp_path / "x", exhibit_no="1", static=False, subjects=["lorry-9"])
    with pytest.raises(ExportError, match="no fixes of lorry-2 from 2025-10-20T00:00:00Z to 2025-10-21"):
        exhibit_from_case(case, out_dir=tmp_path / "x", exhibit_no="1", static=False, subjects=["lorry-2"],
                          t_from="2025-10-20T00:00Z", t_to="2025-10-21T00:00Z")
    with pytest.raises(ParameterError, match="ends .* before it starts"):
        exhibit_from_case(case, out_dir=tmp_path / "x", exhibit_no="1", static=False,
                          t_from="2025-10-21T00:00Z", t_to="2025-10-20T00:00Z")
    assert main(["exhibit", str(case), "--out", str(tmp_path / "y"), "--from", "2025-10-26 19:00"]) == 2
    assert "argument --from: --from '2025-10-26 19:00' has no time zone" in capsys.readouterr().err
    assert main(["exhibit", str(case), "--out", str(tmp_path / "y"), "--to", "yesterday"]) == 2
    assert "is not a time" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_mistyped_subject_gets_the_nearest_name_as_a_hint() -> None:
    from routetrace.testing import make_fixes

    f = make_fixes(subject_id=["iphone", "lorry-1"], lat=51.0, lon=3.7, t_utc=["2025-10-24T08:00Z"] * 2)
    with pytest.raises(ParameterError, match="no subject 'iphon' in the case") as err:
        select_rows({"fixes": f}, subjects=["iphon"])
    assert err.value.hint == "did you mean 'iphone'? `routetrace subjects CASE` lists them"
    with pytest.raises(ParameterError) as err:
        select_rows({"fixes": f}, subjects=["zzz"])
    assert err.value.hint == "`routetrace subjects CASE` lists them"


def _gpx(path: Path, *, lat: float, wpt: str | None) -> Path:
    pts = "".join(f'<trkpt lat="{lat + 0.001 * k}" lon="3.87"><time>2025-10-26T21:0{k}:00Z</time></trkpt>'
                  for k in range(3))
    way = f'<wpt lat="{lat}" lon="3.9"><name>{wpt}</name></wpt>' if wpt else ""
    path.write_text('<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1">'
                    f"{way}<trk><trkseg>{pts}</trkseg></trk></gpx>", encoding="utf-8")
    return path


def test_a_place_without_a_subject_goes_with_its_sources_subject(tmp_path: Path) -> None:
    """Loose files ingested without --subject or a mapping: each file is its own subject,
    and the waypoints of a subject's GPX (no subject of their own) are that subject's, not
    the case's; an investigator's pins (places only) stay on every subject's exhibit."""
    ev = tmp_path / "ev"
    ev.mkdir()
    _gpx(ev / "phone-a.gpx", lat=51.0, wpt="A's saved place")
    _gpx(ev / "phone-b.gpx", lat=50.0, wpt="B's saved place")
    _gpx(ev / "pins.gpx", lat=50.5, wpt=None).write_text(
        '<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1">'
        '<wpt lat="50.5" lon="3.9"><name>safehouse</name></wpt></gpx>', encoding="utf-8")
    ingest(tmp_path / "case", [ev])
    t = _tables(tmp_path / "case")
    assert t["places"]["subject_id"].isna().all()  # the loader gives waypoints no subject
    shown = {s: set(select_rows(t, subjects=[s])["places"]["name"]) for s in ("phone-a", "phone-b")}
    assert shown == {"phone-a": {"A's saved place", "safehouse"},
                     "phone-b": {"B's saved place", "safehouse"}}
    kept = select_rows(t, subjects=["phone-a"])["sources"]["path"].map(lambda p: Path(p).name)
    assert sorted(kept) == ["phone-a.gpx", "pins.gpx"]
    # every subject: every row, as before
    assert len(select_rows(t)["places"]) == 3


def test_a_place_of_a_source_with_several_subjects_stays_the_cases() -> None:
    """A source whose fixes belong to two subjects (a tracker export of two lorries) names no
    one subject for its places: they stay on every exhibit, as before."""
    from routetrace.testing import make_fixes

    f = make_fixes(subject_id=["a", "b", "c"], lat=51.0, lon=3.7, t_utc=["2025-10-24T08:00Z"] * 3)
    f["source_id"] = pd.array(["shared", "shared", "own"], dtype="string")
    places = schema.coerce(pd.DataFrame({"place_id": ["p1", "p2"], "kind": "waypoint",
                                         "lat": [51.0, 51.1], "lon": [3.7, 3.8],
                                         "source_id": ["shared", "own"], "record": ["wpt 0", "wpt 0"]}),
                           "places")
    assert places["subject_id"].isna().all()
    got = {s: sorted(select_rows({"fixes": f, "places": places}, subjects=[s])["places"]["place_id"])
           for s in ("a", "b", "c")}
    assert got == {"a": ["p1"], "b": ["p1"], "c": ["p1", "p2"]}
