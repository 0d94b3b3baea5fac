"""The KML/KMZ export as Google Earth reads it: valid against the OGC KML 2.2 schema with
Google's gx extension (the XSDs pykml ships, read offline), one gx:Track per subject and
trip, one style per subject, a time primitive on every placemark, readable names, and
device text that stays text when the balloon renders the description as HTML."""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from pathlib import Path

import lxml.html
import pandas as pd
import pytest
from lxml import etree

from routetrace.app.analysis import run_chronology
from routetrace.app.ingest import ingest
from routetrace.case import open_case
from routetrace.maps.exhibit import exhibit_from_case
from routetrace.maps.exports import GX_NS, KML_NS, write_kml, write_kmz
from routetrace.maps.timeline import prepare_fixes
from routetrace.samples import generate
from routetrace.samples.demo_tables import demo_tables

NS = {"k": KML_NS, "gx": GX_NS}
#: Script, event handler, a CDATA end and a bidi override, as a device could hold them.
PAYLOAD = '<script>alert(1)</script><img src=x onerror="alert(2)">]]><b>\u202e'
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _schema() -> etree.XMLSchema:
    """KML 2.2 (OGC 07-147r2) + gx extension: pykml's copies, whose imports are local files."""
    spec = importlib.util.find_spec("pykml")
    assert spec is not None and spec.origin, "pykml (test extra) ships the KML XSDs"
    return etree.XMLSchema(etree.parse(str(Path(spec.origin).parent / "schemas" / "kml22gx.xsd"), PARSER))


def _validate(raw: bytes) -> etree._Element:
    root = etree.fromstring(raw, PARSER)
    xsd = _schema()
    assert xsd.validate(root), "\n".join(str(e) for e in list(xsd.error_log)[:10])
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample case, ingested and analysed, and its exhibit exports."""
    tmp = tmp_path_factory.mktemp("kml")
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1761000000"
    try:
        for f in generate(tmp / "s"):
            ingest(tmp / "case", [tmp / "s" / f.path], subject_id=f.subject_id, tz=f.tz, format=f.format)
        run_chronology(tmp / "case")
        exhibit_from_case(tmp / "case", out_dir=tmp / "ex", exhibit_no="1", static=False)
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH")
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return tmp


def _subject_folders(doc: etree._Element) -> dict[str, etree._Element]:
    return {f.findtext("k:name", namespaces=NS): f for f in doc.findall("k:Folder", NS)
            if f.findtext("k:name", namespaces=NS) != "Places"}


def test_sample_kml_structure(sample: Path) -> None:
    raw = (sample / "ex" / "exhibit.kml").read_bytes()
    root = _validate(raw)  # KML 2.2 + gx: element order, types, nothing unknown
    doc = root[0]
    case = open_case(sample / "case")
    fixes, stops, trips = prepare_fixes(case.table("fixes")), case.table("stops"), case.table("trips")
    subjects = sorted(set(fixes["subject_id"]) | set(stops["subject_id"]))
    folders = _subject_folders(doc)
    assert sorted(folders) == subjects

    # one shared style per subject, each a distinct colour
    styles = {s.get("id"): s for s in doc.findall("k:Style", NS)}
    subject_styles = sorted(k for k in styles if k.startswith("subject-"))
    assert len(subject_styles) == len(subjects)
    colours = {k: styles[k].findtext("k:LineStyle/k:color", namespaces=NS) for k in subject_styles}
    assert len(set(colours.values())) == len(subjects)

    n_when = 0
    for s, folder in folders.items():
        pms = folder.findall(".//k:Placemark", NS)
        used = {pm.findtext("k:styleUrl", namespaces=NS) for pm in pms} - {"#gap"}
        assert len(used) == 1 and used.pop()[1:] in subject_styles, s  # the subject's one style
        tracks = folder.findall(".//gx:Track", NS)
        assert tracks, f"{s}: no gx:Track"
        names = [t.getparent().findtext("k:name", namespaces=NS) for t in tracks]
        n_trips = int((trips["subject_id"] == s).sum())
        assert sum(bool(re.match(r"Trip \d+ — ", n)) and ", part" not in n for n in names) == n_trips
        assert all(re.fullmatch(r"(Trip \d+(, part \d+)?|At stop \d+|Route) — \d{4}-\d\d-\d\d \d\d:\d\d.*", n)
                   for n in names), names
        for t in tracks:
            whens = [w.text for w in t.findall("k:when", NS)]
            coords = t.findall("gx:coord", NS)
            acc = t.findall("k:ExtendedData/k:SchemaData/gx:SimpleArrayData/gx:value", NS)
            assert len(whens) == len(coords) == len(acc) >= 1
            t_ns = pd.to_datetime(whens, format="ISO8601").as_unit("ns").asi8
            assert (t_ns[1:] >= t_ns[:-1]).all()
            n_when += len(whens)
    assert n_when == len(fixes)  # every fix in exactly one track, none as its own placemark

    # every placemark has a time primitive; spans closed or explicitly open
    pms = list(root.iter(f"{{{KML_NS}}}Placemark"))
    n_tracks = len(list(root.iter(f"{{{GX_NS}}}Track")))
    places = case.table("places")
    n_gaps = int((case.table("gaps")[["lat_start", "lat_end"]].notna().all(axis=1)).sum())
    assert len(pms) == n_tracks + len(stops) + n_gaps + int(places["lat"].notna().sum())
    spans = {"closed": 0, "open end": 0, "none": 0}
    for pm in pms:
        ts, sp = pm.find("k:TimeStamp", NS), pm.find("k:TimeSpan", NS)
        assert (ts is None) != (sp is None), pm.findtext("k:name", namespaces=NS)
        b, e = sp.findtext("k:begin", namespaces=NS), sp.findtext("k:end", namespaces=NS)
        kind = pm.findtext("k:ExtendedData/k:Data[@name='time_span']/k:value", namespaces=NS)
        if b and e:
            assert b <= e and kind in (None, "closed")
        else:  # open: stated, never silent
            assert pm.getparent().findtext("k:name", namespaces=NS) == "Places"
            assert kind == {(True, False): "open end", (False, True): "open start",
                            (False, False): "none"}[(bool(b), bool(e))]
            assert "not in the evidence" in pm.findtext("k:description", namespaces=NS) or kind == "none"
        spans[kind or "closed"] += 1
    n_open = int((places["t_start"].notna() & places["t_end"].isna()).sum())
    assert spans["open end"] == n_open >= 1  # 2 in the sample since a visit is one place (#19)

    # names: stops numbered with their time; places by name, never a bare kind or an id
    stop_names = [pm.findtext("k:name", namespaces=NS) for pm in pms
                  if (pm.findtext("k:name", namespaces=NS) or "").startswith("Stop ")]
    assert len(stop_names) == len(stops)
    assert all(re.fullmatch(r"Stop \d+ — \d{4}-\d\d-\d\d \d\d:\d\d.*", n) for n in stop_names)
    place_names = [pm.findtext("k:name", namespaces=NS) for pm in doc.find("k:Folder[k:name='Places']", NS)
                   .findall("k:Placemark", NS)]
    kinds = set(places["kind"].astype(str))
    assert not set(place_names) & kinds and not set(place_names) & set(places["place_id"].astype(str))
    assert "Groot Bijgaarden Carpark" in place_names and "Visit 2025-10-24 14:00–19:00" in place_names

    # the KMZ carries the same document
    with zipfile.ZipFile(sample / "ex" / "exhibit.kmz") as z:
        assert z.namelist() == ["doc.kml"] and z.read("doc.kml") == raw


def _html_elements(text: str) -> set[str]:
    """Tags an HTML renderer (a Google Earth balloon) would build from ``text``."""
    frag = lxml.html.fragment_fromstring(text, create_parent="div")
    return {e.tag for e in frag.iter() if isinstance(e.tag, str)} - {"div"}


def test_hostile_text_stays_text_in_google_earth(tmp_path: Path) -> None:
    d = demo_tables(300, hostile=PAYLOAD)
    p = write_kml(tmp_path / "x.kml", d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                  case_id="C" + PAYLOAD, exhibit_no="1")
    raw = p.read_bytes()
    root = _validate(raw)
    # no raw tag anywhere in the file, and no unescaped bidi override
    assert not re.search(rb"<(script|img|b)\b", raw) and "\u202e".encode() not in raw
    n_desc = 0
    for e in root.iter():
        if not isinstance(e.tag, str) or not e.text:
            continue
        if etree.QName(e).localname == "description":  # rendered as HTML: only our <br>
            n_desc += 1
            assert _html_elements(e.text) <= {"br"}, e.text[:200]
        else:  # names, values: plain text without any tag a viewer could read
            assert "<" not in e.text and ">" not in e.text, e.text[:200]
    assert n_desc == len(list(root.iter(f"{{{KML_NS}}}Placemark"))) + 1  # every placemark + document
    doc_desc = root[0].findtext("k:description", namespaces=NS)
    # Google Earth shows the payload as the text it is: escaped once inside the CDATA
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc_desc and "]]&gt;" in doc_desc
    assert "[U+202E]" in doc_desc
    names = [n.text for n in root.iter(f"{{{KML_NS}}}name")]
    assert any("‹script›alert(1)‹/script›" in n for n in names)  # hostile subject: visibly inert


def test_large_journey_tracks_keep_exact_fixes_within_the_limit(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.maps import exports
    monkeypatch.setattr(exports, "KML_FIX_LIMIT", 150)
    d = demo_tables(2000)
    p = write_kml(tmp_path / "x.kml", d["fixes"], d["stops"], d["gaps"], d["places"], d["sources"],
                  case_id="C", exhibit_no="1")
    root = _validate(p.read_bytes())
    coords = [c.text for c in root.iter(f"{{{GX_NS}}}coord")]
    assert 10 < len(coords) <= 150
    assert "kept by Douglas-Peucker" in root[0].findtext("k:description", namespaces=NS)
    exact = {(round(a, 7), round(b, 7)) for a, b in zip(d["fixes"]["lon"], d["fixes"]["lat"], strict=True)}
    for c in coords:
        lon, lat, _ = map(float, c.split())
        assert (round(lon, 7), round(lat, 7)) in exact


def test_kml_is_byte_identical_and_kmz_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1761000000")
    d = demo_tables(400)
    a = write_kml(tmp_path / "a.kml", d["fixes"], d["stops"], d["gaps"], d["places"], case_id="C", exhibit_no="1")
    b = write_kml(tmp_path / "b.kml", d["fixes"], d["stops"], d["gaps"], d["places"], case_id="C", exhibit_no="1")
    assert a.read_bytes() == b.read_bytes()
    z1, z2 = write_kmz(tmp_path / "a.kmz", a), write_kmz(tmp_path / "b.kmz", b)
    assert z1.read_bytes() == z2.read_bytes()
    with zipfile.ZipFile(z1) as z:
        _validate(z.read("doc.kml"))


def test_more_subjects_than_palette_colours_stay_distinct(tmp_path: Path) -> None:
    d = demo_tables(200)
    f = pd.concat([d["fixes"].assign(subject_id=f"s{i:02d}", record=d["fixes"]["record"] + f"-{i}")
                   for i in range(14)], ignore_index=True)
    p = write_kml(tmp_path / "x.kml", f, d["stops"].iloc[:0], d["gaps"].iloc[:0], d["places"].iloc[:0],
                  case_id="C", exhibit_no="1")
    root = _validate(p.read_bytes())
    colours = [s.findtext("k:LineStyle/k:color", namespaces=NS) for s in root[0].findall("k:Style", NS)
               if s.get("id", "").startswith("subject-")]
    assert len(colours) == 14 == len(set(colours))
