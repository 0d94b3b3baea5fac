"""Statements loader: templates, every place form, time forms, rejects naming rows, hostile text."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from routetrace.errors import AmbiguousTime, CorruptSource
from routetrace.loaders import detect_format, load
from routetrace.loaders.statements import statements_schema
from routetrace.testing import assert_count_rule, hash_tree

DOCS = Path(__file__).resolve().parent.parent / "docs" / "templates"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> =cmd|\' /C calc\'!A0 "q" & \u202e'


def _yaml(tmp_path: Path, statements: list[dict[str, object]], **top: object) -> Path:
    doc = {"routetrace": "statements/1", "time_zone": "Europe/Brussels", **top,
           "statements": statements}
    p = tmp_path / "statements.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p


def _st(sid: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"statement_id": sid, "person_id": "V1", "role": "victim",
                               "hearing_date": "2025-11-03", "text": "said", "place": "50.86,4.36"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def _extra(res: object, i: int = 0) -> dict[str, object]:
    return json.loads(res.places["extra"].iloc[i])  # type: ignore[attr-defined]


def test_templates_are_sniffed_valid_and_load_without_rejects() -> None:
    before = hash_tree(DOCS)
    for name, fmt in (("statements.yaml", "statements-yaml"), ("statements.csv", "statements-csv")):
        assert detect_format(DOCS / name).name == fmt
        res = load(DOCS / name, tz="Europe/Brussels", options={"journey_start": "2025-10-24"})
        assert_count_rule(res)
        assert (len(res.places), len(res.rejects)) == (3, 0), res.rejects
        assert set(res.places["kind"]) == {"indicated"}
    assert hash_tree(DOCS) == before


def test_shipped_json_schema_is_valid_and_describes_the_csv_columns() -> None:
    schema = statements_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    cols = (DOCS / "statements.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert set(cols) <= set(schema["$defs"]["statement"]["properties"])


def test_every_place_form_and_uncertainty_rule(tmp_path: Path) -> None:
    gaz = tmp_path / "gazetteer.csv"
    gaz.write_text("name,lat,lon,radius_m\n\"Hotel  Metropole, Brussels\",50.85,4.35,40\n"
                   "Brussels,50.8466,4.3528,\n", encoding="utf-8")
    p = _yaml(tmp_path, [
        _st("A", place="https://www.google.com/maps/@50.86,4.36,15z"),
        _st("B", place="geo:50.86,4.36;u=35"),
        _st("C", place="https://maps.apple.com/?ll=50.86,4.36&z=17", uncertainty_m=500),
        _st("D", place=None, lat=50.86, lon=4.36),
        _st("E", place=None, address="hotel metropole,  BRUSSELS"),
        _st("F", place="V966+22 Brussels"),
        _st("G", place="https://www.openstreetmap.org/?mlat=50.86&mlon=4.36"),
    ], gazetteer="gazetteer.csv")
    res = load(p)
    assert_count_rule(res)
    assert len(res.rejects) == 0, res.rejects
    pl = res.places.set_index(res.places["extra"].map(lambda e: json.loads(e)["statement_id"]))
    assert pl.loc["A", "radius_m"] == pytest.approx(50 * 156543.03392 * 0.6306 / 2**15, rel=1e-3)
    assert pl.loc["B", "radius_m"] == 35.0
    assert pl.loc["C", "radius_m"] == 500.0  # stated uncertainty wins over zoom 17
    assert pd.isna(pl.loc["D", "radius_m"]) and pd.isna(pl.loc["G", "radius_m"])  # none invented
    assert (pl.loc["E", "lat"], pl.loc["E", "lon"], pl.loc["E", "radius_m"]) == (50.85, 4.35, 40.0)
    assert pl.loc["E", "address"] == "hotel metropole,  BRUSSELS"
    assert abs(pl.loc["F", "lat"] - 50.86) < 2e-4 and abs(pl.loc["F", "lon"] - 4.36) < 2e-4
    forms = {k: json.loads(e)["place_form"] for k, e in pl["extra"].items()}
    assert forms == {"A": "google-@", "B": "geo-uri", "C": "apple-ll", "D": "lat/lon",
                     "E": "gazetteer", "F": "plus-code", "G": "osm-marker"}
    assert "gazetteer=" in res.source["companions"].iloc[0]


def test_time_forms_are_windows_never_invented_instants(tmp_path: Path) -> None:
    p = _yaml(tmp_path, [
        _st("exact", t_exact="2025-10-24T16:30"),
        _st("window", t_start="2025-10-25T18:00", t_end="2025-10-26T08:00"),
        _st("open", t_start="2025-10-25T18:00+02:00"),
        _st("day", date="2025-10-26"),
        _st("night", night_of="2025-10-25"),
        _st("jday", journey_day=2, time_text="day 2 of the journey"),
        _st("vague", time_text="before the hotel", before=["night"]),
    ], journey_start="2025-10-24")
    res = load(p)
    assert len(res.rejects) == 0, res.rejects
    pl = res.places.set_index(res.places["extra"].map(lambda e: json.loads(e)["statement_id"]))
    T = pd.Timestamp
    assert (pl.loc["exact", "t_start"], pl.loc["exact", "t_end"], pl.loc["exact", "t_precision"]) == (
        T("2025-10-24T14:30Z"), T("2025-10-24T14:30Z"), "minute")
    assert (pl.loc["window", "t_start"], pl.loc["window", "t_end"]) == (T("2025-10-25T16:00Z"),
                                                                        T("2025-10-26T07:00Z"))
    assert pl.loc["open", "t_start"] == T("2025-10-25T16:00Z") and pd.isna(pl.loc["open", "t_end"])
    # 26 October is 25 hours long in Brussels (end of summer time)
    assert (pl.loc["day", "t_start"], pl.loc["day", "t_end"], pl.loc["day", "t_precision"]) == (
        T("2025-10-25T22:00Z"), T("2025-10-26T23:00Z"), "day")
    assert (pl.loc["night", "t_start"], pl.loc["night", "t_end"]) == (T("2025-10-25T16:00Z"),
                                                                      T("2025-10-26T07:00Z"))
    assert (pl.loc["jday", "t_start"], pl.loc["jday", "t_end"]) == (T("2025-10-24T22:00Z"),
                                                                    T("2025-10-25T22:00Z"))
    assert pd.isna(pl.loc["vague", "t_start"]) and pd.isna(pl.loc["vague", "t_end"])
    assert pl.loc["vague", "t_precision"] == "none"
    ex = json.loads(pl.loc["vague", "extra"])
    assert ex["before"] == ["night"] and ex["time_text"] == "before the hotel"
    assert (pl["t_precision"] == "window").sum() == 4


def test_local_times_without_a_zone_are_refused(tmp_path: Path) -> None:
    p = _yaml(tmp_path, [_st("A", date="2025-10-24")])
    doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    del doc["time_zone"]
    p.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(AmbiguousTime, match="time zone"):
        load(p)
    assert load(p, tz="Europe/Brussels").places["t_start"].iloc[0] == pd.Timestamp("2025-10-23T22:00Z")
    # times with an offset need no zone
    p2 = _yaml(tmp_path, [_st("A", t_exact="2025-10-24T16:30+02:00")])
    doc = yaml.safe_load(p2.read_text(encoding="utf-8"))
    del doc["time_zone"]
    p2.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert load(p2).places["t_start"].iloc[0] == pd.Timestamp("2025-10-24T14:30Z")


def test_malformed_rows_are_rejects_naming_the_row(tmp_path: Path) -> None:
    p = _yaml(tmp_path, [
        _st("ok"),
        _st("badrole", role="policeman"),
        _st("noplace", place=None),
        _st("badlink", place="https://maps.app.goo.gl/xyz"),
        _st("swapped", place="95.0,4.36"),
        _st("twotimes", date="2025-10-24", night_of="2025-10-24"),
        _st("backwards", t_start="2025-10-25T18:00", t_end="2025-10-25T08:00"),
        _st("ok", text="duplicate id"),
        _st("dangling", after=["nosuch"]),
        _st("nogaz", place=None, address="Somewhere 1"),
        _st("dstgap", t_exact="2025-03-30T02:30"),
        "just a string",
        _st("extra_field", colour="red"),
    ])
    res = load(p)
    assert_count_rule(res)
    assert len(res.places) == 1
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {f"statements[{i}]" for i in range(1, 13)}
    assert "role" in why["statements[1]"] and "statement badrole" in why["statements[1]"]
    assert "no place" in why["statements[2]"]
    assert "short link" in why["statements[3]"]
    assert "latitude 95.0" in why["statements[4]"]
    assert "two time forms" in why["statements[5]"]
    assert "before t_start" in why["statements[6]"]
    assert "duplicate statement_id" in why["statements[7]"] and "statements[0]" in why["statements[7]"]
    assert "'nosuch'" in why["statements[8]"]
    assert "no gazetteer" in why["statements[9]"]
    assert "DST" in why["statements[10]"]
    assert "not a mapping" in why["statements[11]"]
    assert "colour" in why["statements[12]"]


def test_csv_rows_are_named_by_line(tmp_path: Path) -> None:
    p = tmp_path / "st.csv"
    p.write_text(
        "statement_id;person_id;role;hearing_date;text;place;uncertainty_m;subjects\n"
        "A;V1;victim;2025-11-03;\"multi\nline; text\";50.86,4.36;;phone-A|lorry-1\n"
        "B;V1;victim;2025-11-03;x;50.86,4.36;wide;\n"
        "C;V1;victim;03/11/2025;x;50.86,4.36;;\n"
        "D;V1;victim;2025-11-03;x;50,86 4,36;;\n", encoding="utf-8")
    res = load(p)
    assert res.source["format"].iloc[0] == "statements-csv"
    assert_count_rule(res)
    assert res.places["text"].tolist() == ["multi\nline; text"]
    assert json.loads(res.places["extra"].iloc[0])["subjects"] == ["phone-A", "lorry-1"]
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {"line:4", "line:5", "line:6"}
    assert why["line:4"].startswith("statement B: uncertainty_m")
    assert "hearing_date" in why["line:5"]
    assert "statement D: place" in why["line:6"]


def test_unknown_csv_column_and_yaml_aliases_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "st.csv"
    p.write_text("statement_id,role,person_id,hearing_date,text,place,victim_name\n", encoding="utf-8")
    with pytest.raises(CorruptSource, match="victim_name"):
        load(p)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("routetrace: statements/1\na: &a [x, x, x]\nb: &b [*a, *a, *a]\n"
                    "statements: [*b]\n", encoding="utf-8")
    with pytest.raises(CorruptSource, match="aliases"):
        load(bomb)


def test_hostile_text_is_stored_verbatim(tmp_path: Path) -> None:
    p = _yaml(tmp_path, [_st("H", text=HOSTILE, place_name=HOSTILE, time_text=HOSTILE)])
    res = load(p)
    assert res.places["text"].iloc[0] == HOSTILE
    assert res.places["name"].iloc[0] == HOSTILE
    assert _extra(res)["time_text"] == HOSTILE
    c = tmp_path / "h.csv"
    with open(c, "w", encoding="utf-8", newline="") as fh:
        import csv

        w = csv.writer(fh)
        w.writerow(["statement_id", "person_id", "role", "hearing_date", "text", "place"])
        w.writerow(["H", "V1", "victim", "2025-11-03", HOSTILE, "50.86,4.36"])
    assert load(c).places["text"].iloc[0] == HOSTILE


def test_impossible_dates_are_rejects(tmp_path: Path) -> None:
    p = _yaml(tmp_path, [_st("A", hearing_date="2025-13-01"), _st("B", date="2025-02-30"),
                         _st("C", t_start="2025-90-25T18:00", t_end="2025-10-25T20:00"),
                         _st("D", t_exact="6025-10-25T18:00Z"), _st("E")])
    res = load(p)
    assert_count_rule(res)
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {"statements[0]", "statements[1]", "statements[2]", "statements[3]"}
    assert "hearing_date" in why["statements[0]"] and "date" in why["statements[1]"]
    assert "not a valid date/time" in why["statements[2]"] and "implausible" in why["statements[3]"]
    with pytest.raises(CorruptSource, match="journey_start"):
        load(_yaml(tmp_path, [_st("A", journey_day=1)], journey_start="2025-02-30"))
