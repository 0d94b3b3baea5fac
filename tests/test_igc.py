"""IGC loader: B records, both date headers, midnight UTC, validity V, extensions, damage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.cli import main
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree


def _b(hhmmss: str, lat: str = "5206343N", lon: str = "00006198W", v: str = "A",
       press: str = "00587", gnss: str = "00558", ext: str = "") -> str:
    return f"B{hhmmss}{lat}{lon}{v}{press}{gnss}{ext}"


HEADER = ["AXCSAAA Flight:1", "HFDTEDATE:150324,01", "HFPLTPILOTINCHARGE:Jane Doe",
          "HFGIDGLIDERID:D-KXYZ", "HFTZNTIMEZONE:+1.00h",
          "I033638FXA3940SIU4143GSP"]  # FXA bytes 36-38, SIU 39-40, GSP 41-43


def _write(tmp_path: Path, lines: list[str], name: str = "flight.igc", end: str = "\r\n") -> Path:
    p = tmp_path / name
    p.write_bytes((end.join(lines) + end).encode("latin-1"))
    return p


def test_b_records_are_fixes_with_utc_time_extensions_and_flags(tmp_path: Path) -> None:
    lines = [*HEADER,
             _b("110135", ext="01208036"),                   # line 7
             "LXCSsome comment", "E110140PEV", "K110140123",
             _b("110140", v="V", gnss="00000", ext="04503000"),  # line 11: 2-D / no GNSS
             _b("110145", lat="3352000S", lon="01824000E", press="-0012", ext="00909072"),
             "G1A2B3C4D5E6"]
    p = _write(tmp_path, lines)
    assert detect_format(p).name == "igc"
    before = hash_tree(tmp_path)
    res = load(p)
    assert hash_tree(tmp_path) == before
    assert_count_rule(res)
    assert res.records_read == 3 and len(res.rejects) == 0
    fx = res.fixes.set_index("record")
    a = fx.loc["line 7"]
    assert a["t_utc"] == pd.Timestamp("2024-03-15T11:01:35Z")  # UTC by spec; HFTZN not applied
    assert a["lat"] == pytest.approx(52 + 6.343 / 60) and a["lon"] == pytest.approx(-(0 + 6.198 / 60))
    assert (a["alt_m"], a["h_acc_m"], a["speed_mps"]) == (558.0, 12.0, 10.0)
    assert json.loads(a["extra"]) == {"gnss_alt_m": 558, "pressure_alt_m": 587, "satellites": 8,
                                      "validity": "A"}
    assert a["subject_id"] == "D-KXYZ" and a["flags"] == ""
    v = fx.loc["line 11"]
    assert v["flags"] == "no_fix" and pd.isna(v["alt_m"]) and json.loads(v["extra"])["validity"] == "V"
    s = fx.loc["line 12"]
    assert (s["lat"], s["lon"]) == (pytest.approx(-(33 + 52 / 60)), pytest.approx(18 + 24 / 60))
    assert json.loads(s["extra"])["pressure_alt_m"] == -12
    basis = res.source["time_basis"].iloc[0]
    assert "UTC by the FAI IGC specification" in basis and "+1.00h" in basis and "10 other" in basis


@pytest.mark.parametrize("date_line", ["HFDTE311224", "HFDTEDATE:311224,02", "HFDTE 311224"])
def test_both_date_headers_and_midnight_rollover(tmp_path: Path, date_line: str) -> None:
    lines = ["AFLA6NG", date_line, _b("235958"), _b("235959"), _b("000001"),
             _b("000000"),  # a step back of 1 s: same day, flagged
             _b("000010")]
    res = load(_write(tmp_path, lines, end="\n"))
    assert_count_rule(res)
    times = res.fixes["t_utc"].tolist()
    assert times == [pd.Timestamp(t) for t in ("2024-12-31T23:59:58Z", "2024-12-31T23:59:59Z",
                                               "2025-01-01T00:00:01Z", "2025-01-01T00:00:00Z",
                                               "2025-01-01T00:00:10Z")]
    assert res.fixes["flags"].tolist() == ["", "", "", "inconsistent_value", ""]


def test_damaged_and_undated_records_are_rejects_with_reasons(tmp_path: Path) -> None:
    lines = ["AXXX001",
             _b("100000"),                          # line 2: before any date
             "HFDTE300224",                         # not a calendar date
             _b("100001"),                          # line 4
             "HFDTE290224",
             _b("100002"),                          # line 6: ok
             _b("100003")[:20],                     # line 7: truncated
             _b("250000"),                          # line 8: impossible hour
             _b("100004", lat="5276343N"),          # line 9: 76 minutes
             _b("100005", lat="0000000N", lon="00000000E", v="V"),  # line 10: 0,0
             "\x00\x7fZ#garbage",                   # line 11: not an IGC record
             "",                                    # empty: not a record
             _b("100006")]                          # line 13: ok
    res = load(_write(tmp_path, lines), format="igc")
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["line 6", "line 13"]
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-02-29T10:00:02Z")
    rej = res.rejects.set_index("record")["reason"]
    assert "no HFDTE date header" in rej["line 2"]
    assert "not a calendar date" in rej["line 4"]
    assert "truncated or damaged" in rej["line 7"]
    assert "impossible time of day 25:00:00" in rej["line 8"]
    assert "not below 60" in rej["line 9"]
    assert "0,0" in rej["line 10"]
    assert "not an IGC record" in rej["line 11"]
    assert len(rej) == 7


def test_sniffer_wants_an_a_record_and_a_date_or_fix(tmp_path: Path) -> None:
    from routetrace.loaders.igc import sniff_igc

    assert sniff_igc(tmp_path, b"AXCSAAA\r\nHFDTE150324\r\n")
    assert not sniff_igc(tmp_path, b"ABCD,lat,lon\n1,2,3\n")
    assert not sniff_igc(tmp_path, b"HFDTE150324\r\nAXCS\r\n")


def test_routetrace_ingest_of_an_igc(tmp_path: Path) -> None:
    p = _write(tmp_path, [*HEADER, _b("110135"), _b("110140"), _b("1101")])
    case = tmp_path / "case"
    assert main(["ingest", str(case), str(p), "-q"]) == 0
    from routetrace.case import open_case

    c = open_case(case)
    assert len(c.table("fixes")) == 2 and (c.table("sources")["format"] == "igc").all()
    assert c.table("rejects")["record"].tolist() == ["line 9"]
