"""Generic CSV loader: real files (count rule, one checked value each), dialects, time rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.errors import AmbiguousTime, CorruptSource, ParameterError
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree

UTC = "UTC"


def test_every_real_csv_loads_with_count_rule_and_stays_byte_identical(realdata_dir: Path) -> None:
    folder = realdata_dir / "csv"
    before = hash_tree(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    for f in files:
        assert detect_format(f).name == "csv", f.name
    res = {f.name: load(f) for f in files}
    assert hash_tree(folder) == before
    for r in res.values():
        assert_count_rule(r)
        assert (r.fixes["t_utc"].dt.tz is not None) if len(r.fixes) else True

    # ';' separator and decimal commas
    d = res["dawarich_semicolon_eu.csv"]
    assert (len(d.fixes), len(d.rejects)) == (3, 0)
    assert d.fixes["lat"].iloc[0] == pytest.approx(52.52)
    assert d.fixes["lon"].iloc[2] == pytest.approx(13.407)
    assert d.fixes["t_utc"].iloc[1] == pd.Timestamp("2024-06-15T10:31:00Z")

    # Columbus V-900 family: YYMMDD + hhmmss UTC, 'N'/'W' suffixes, speed km/h
    v = res["gpsbabel_24173415.CSV"]
    assert (len(v.fixes), len(v.rejects)) == (742, 0)
    first = v.fixes.iloc[0]
    assert first["t_utc"] == pd.Timestamp("2025-07-24T17:34:18Z")
    assert first["lon"] == pytest.approx(-125.7648551)
    assert first["speed_mps"] == pytest.approx(0.2 / 3.6)
    assert (v.fixes["fix_kind"] == "gps").all()

    # V-900 basic mode with NUL padding and CRLF
    b = res["gpsbabel_v900_basic_mode.csv"]
    assert (len(b.fixes), len(b.rejects)) == (14, 0)
    assert b.fixes["alt_m"].iloc[0] == 827.0
    assert b.fixes["speed_mps"].iloc[0] == pytest.approx(12 / 3.6)
    assert b.fixes["lon"].iloc[0] == pytest.approx(35.206901)

    # Garmin G1000: '#' lines, units line (ft, kt), local time + UTCOfst, trailing comma
    g = res["gpsbabel_garmin_g1000.csv"]
    assert (len(g.fixes), len(g.rejects)) == (442, 0)
    g0 = g.fixes.iloc[0]
    assert g0["t_utc"] == pd.Timestamp("2014-03-29T22:50:22Z")
    assert g0["alt_m"] == pytest.approx(4503.9 * 0.3048)  # AltMSL in ft
    assert g0["speed_mps"] == pytest.approx(3.50 * 1852 / 3600)  # GndSpd in kt
    assert g0["course_deg"] == pytest.approx(258.1)  # TRK

    # MTK logger: units inside values, 'No fix' rows rejected with reason
    m = res["gpsbabel_mtk_logger.csv"]
    assert (len(m.fixes), len(m.rejects)) == (803, 14)
    assert m.rejects["reason"].str.contains("No fix").all()
    assert m.rejects["record"].iloc[0] == "row 1"
    last = m.fixes.iloc[-1]
    assert last["t_utc"] == pd.Timestamp("2008-01-27T15:21:20Z")
    assert last["alt_m"] == pytest.approx(25.731)
    assert last["speed_mps"] == pytest.approx(16.147 / 3.6)

    # reitti: WKT POINT (lon lat), '... +00:00' timestamps, accuracy
    r = res["reitti_trip_1.csv"]
    assert (len(r.fixes), len(r.rejects)) == (39, 0)
    assert r.fixes["lat"].iloc[0] == pytest.approx(53.86314754)
    assert r.fixes["lon"].iloc[0] == pytest.approx(10.70340326)
    assert r.fixes["h_acc_m"].iloc[0] == 10.0
    assert r.fixes["t_utc"].iloc[3] == pd.Timestamp("2025-06-01T13:03:46.056Z")


def _w(tmp_path: Path, text: str, name: str = "t.csv", enc: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(enc))
    return p


def test_local_times_need_tz_else_ambiguous_time_naming_file_and_tz(tmp_path: Path) -> None:
    p = _w(tmp_path, "Datum;Tijd;Breedtegraad;Lengtegraad;Snelheid (km/h)\r\n"
                     "24/03/2024;23:10:00;51,180000;2,990000;0,0\r\n"
                     "25/03/2024;01:00:00;51,176000;3,073000;36,0\r\n")
    with pytest.raises(AmbiguousTime, match="--tz") as info:
        load(p)
    assert str(p) in str(info.value) and "row 1" in str(info.value)
    ok = load(p, tz="Europe/Brussels")
    assert_count_rule(ok)
    assert list(ok.fixes["t_utc"]) == [pd.Timestamp("2024-03-24T22:10:00Z"),
                                        pd.Timestamp("2024-03-25T00:00:00Z")]
    assert ok.fixes["speed_mps"].iloc[1] == pytest.approx(10.0)
    assert "Europe/Brussels" in ok.source["time_basis"].iloc[0]


def test_rows_with_offsets_still_load_when_others_are_local(tmp_path: Path) -> None:
    p = _w(tmp_path, "time,lat,lon\n2024-06-01T10:00:00+02:00,50.1,4.1\n2024-06-01 10:00:00,50.2,4.2\n")
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 1 and res.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-06-01T08:00:00Z")
    assert res.rejects["record"].tolist() == ["row 2"]
    assert "--tz" in res.rejects["reason"].iloc[0]
    both = load(p, tz="Europe/Brussels")  # the naive row is a subset: read in place, not realigned
    assert both.fixes["t_utc"].tolist() == [pd.Timestamp("2024-06-01T08:00:00Z")] * 2
    mixed = _w(tmp_path, "time,lat,lon,speed\n2024-06-01T10:00:00Z,50.1,4.1,5\n"
                         "2024/06/01 10:00:01,50.2,4.2,36 km/h\n", "m.csv")
    m = load(mixed, options={"time_basis": "utc"})
    assert m.fixes["t_utc"].iloc[1] == pd.Timestamp("2024-06-01T10:00:01Z")
    assert m.fixes["speed_mps"].tolist() == [5.0, pytest.approx(10.0)]


def test_dst_gap_is_rejected_not_guessed(tmp_path: Path) -> None:
    p = _w(tmp_path, "date,time,lat,lon\n2024-03-31,02:30:00,50.1,4.1\n2024-03-31,03:30:00,50.1,4.1\n")
    res = load(p, tz="Europe/Brussels")
    assert_count_rule(res)
    assert len(res.fixes) == 1
    assert "does not exist" in res.rejects["reason"].iloc[0]


def test_ambiguous_day_month_order_raises_and_option_settles_it(tmp_path: Path) -> None:
    p = _w(tmp_path, "date,time,lat,lon\n03/04/2024,10:00:00,50.1,4.1\n")
    with pytest.raises(AmbiguousTime, match="date_order"):
        load(p, tz="UTC")
    res = load(p, tz="UTC", options={"date_order": "MDY"})
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-03-04T10:00:00Z")


def test_tab_pipe_preamble_epoch_and_knots(tmp_path: Path) -> None:
    tsv = _w(tmp_path, "Exported by SomeTool v2\nDevice: tracker 7\n\n"
                       "timestamp\tlatitude\tlongitude\tspeed (kt)\theading\n"
                       "1717236000\t50.5\t4.5\t10\t90\n1717236060\t50.6\t4.6\t20\t95\n", "a.tsv")
    r = load(tsv)
    assert_count_rule(r)
    assert r.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-06-01T10:00:00Z")
    assert r.fixes["speed_mps"].iloc[1] == pytest.approx(20 * 1852 / 3600)
    assert r.fixes["course_deg"].iloc[1] == 95.0
    pipe = _w(tmp_path, "Time|Lat|Lng|Speed\n2024-06-01T10:00:00Z|50.5|4.5|30 mph\n"
                        "2024-06-01T10:01:00Z|0|0|0 mph\n2024-06-01T10:02:00Z||4.5|\n", "b.txt")
    p = load(pipe)
    assert_count_rule(p)
    assert p.fixes["speed_mps"].iloc[0] == pytest.approx(30 * 1609.344 / 3600)
    assert sorted(p.rejects["reason"]) == ["0,0 placeholder position (no fix)",
                                           "position missing or unreadable"]


def test_explicit_column_mapping_and_units(tmp_path: Path) -> None:
    p = _w(tmp_path, "Zeitpunkt,Nord,Ost,Tempo\n2024-06-01T10:00:00Z,50.5,4.5,36\n")
    res = load(p, format="csv", options={
        "columns": {"datetime": "Zeitpunkt", "lat": "Nord", "lon": "Ost", "speed": "Tempo"},
        "units": {"speed": "km/h"}, "fix_kind": "gps"})
    assert_count_rule(res)
    assert res.fixes["lat"].iloc[0] == 50.5 and res.fixes["speed_mps"].iloc[0] == pytest.approx(10.0)
    assert res.fixes["fix_kind"].iloc[0] == "gps"
    with pytest.raises(ParameterError, match="not in the header"):
        load(p, format="csv", options={"columns": {"datetime": "Zeitpunkt", "lat": "Nope", "lon": "Ost"}})


def test_utc_basis_option_and_subject_column(tmp_path: Path) -> None:
    p = _w(tmp_path, "time,lat,lon,device\n2024-06-01 10:00:00,50.5,4.5,lorry A\n")
    res = load(p, options={"time_basis": "utc", "columns": {"subject": "device"}})
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2024-06-01T10:00:00Z")
    assert res.fixes["subject_id"].iloc[0] == "lorry A"


def test_chunked_reading_keeps_row_numbers_and_counts(tmp_path: Path) -> None:
    n = 25_000
    t = pd.date_range("2024-06-01", periods=n, freq="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    lat = np.round(50 + np.arange(n) * 1e-6, 6)
    lines = ["time,lat,lon"] + [f"{a},{b},4.5" for a, b in zip(t, lat, strict=True)]
    lines[1001] = "2024-06-01T00:16:40Z,,4.5"  # row 1001 has no latitude
    p = _w(tmp_path, "\n".join(lines) + "\n")
    res = load(p, options={"chunk_rows": 4096})
    assert_count_rule(res)
    assert res.records_read == n and len(res.fixes) == n - 1
    assert res.rejects["record"].tolist() == ["row 1001"]
    assert res.fixes["record"].iloc[-1] == f"row {n}"


def test_not_a_position_csv_is_not_claimed(tmp_path: Path) -> None:
    from routetrace.errors import UnknownFormat

    p = _w(tmp_path, "name,amount\nfoo,1\nbar,2\n")
    with pytest.raises(UnknownFormat):
        detect_format(p)


def test_day_month_order_settled_by_a_later_chunk(tmp_path: Path) -> None:
    # the first chunk has only days <= 12; a later row (13/06) settles D/M/Y for the file
    rows = [f"{d:02d}/06/2024;10:00:00;50,1;4,1" for d in range(1, 13)] + ["13/06/2024;10:00:00;50,1;4,1"]
    p = _w(tmp_path, "Datum;Tijd;Lat;Lon\n" + "\n".join(rows) + "\n")
    res = load(p, tz="UTC", options={"chunk_rows": 4})
    assert_count_rule(res)
    assert res.fixes["t_utc"].iloc[1] == pd.Timestamp("2024-06-02T10:00:00Z")
    one_col = _w(tmp_path, "time,lat,lon\n02/06/2024 10:00,50.1,4.1\n13/06/2024 10:00,50.1,4.1\n", "b.csv")
    assert load(one_col, tz="UTC").fixes["t_utc"].iloc[0] == pd.Timestamp("2024-06-02T10:00:00Z")


def test_cli_style_string_options(tmp_path: Path) -> None:
    p = _w(tmp_path, "Zeitpunkt;Nord;Ost;Tempo\n2024-06-01T10:00:00Z;50,5;4,5;36\n")
    res = load(p, format="csv", options={"columns": "datetime:Zeitpunkt,lat:Nord,lon:Ost,speed:Tempo",
                                         "units": '{"speed": "km/h"}', "chunk_rows": "10"})
    assert res.fixes["speed_mps"].iloc[0] == pytest.approx(10.0)
    assert res.fixes["lat"].iloc[0] == 50.5
    with pytest.raises(ParameterError, match="role:column"):
        load(p, format="csv", options={"columns": "Zeitpunkt"})


def test_sample_lorry2_belgian_export_loads_with_tz_across_dst_change(tmp_path: Path) -> None:
    from routetrace.samples import generate
    from routetrace.samples.scenario import build_scenario

    files = {f.path: f for f in generate(tmp_path, seed=7)}
    entry = files["evidence/lorry-2/lorry-2_positions.csv"]
    assert entry.tz == "Europe/Brussels"
    p = tmp_path / entry.path
    assert p.read_bytes().startswith(b"Datum;Tijd;Breedtegraad;Lengtegraad;Snelheid (km/h);Koers")
    with pytest.raises(AmbiguousTime, match="--tz"):
        load(p)
    res = load(p, tz=entry.tz, subject_id=entry.subject_id)
    assert_count_rule(res)
    assert (res.records_read, len(res.fixes), len(res.rejects)) == (160, 160, 0)
    truth = build_scenario(7).tracks["lorry-2"].sort_values("t_utc").reset_index(drop=True)
    fx = res.fixes.sort_values("t_utc").reset_index(drop=True)
    # the export prints whole seconds of local time; UTC must come back to the truth
    assert (fx["t_utc"] - truth["t_utc"].dt.floor("s")).abs().max() == pd.Timedelta(0)
    # lorry-2 drives after the end of summer time: CET, UTC+1
    assert (fx["t_utc"].iloc[0].tz_convert("Europe/Brussels").utcoffset()
            == pd.Timedelta(hours=1))
    assert fx["lat"].to_numpy() == pytest.approx(truth["lat"].to_numpy(), abs=1e-6)
    assert fx["speed_mps"].to_numpy() == pytest.approx(truth["speed_mps"].to_numpy(), abs=0.03)
    assert (fx["subject_id"] == "lorry-2").all()


def test_same_export_format_across_the_26_oct_2025_dst_change(tmp_path: Path) -> None:
    # Sun 26 Oct 2025 03:00 CEST -> 02:00 CET: 02:00-02:59 happens twice (rejected, not guessed)
    p = _w(tmp_path, "Datum;Tijd;Breedtegraad;Lengtegraad;Snelheid (km/h);Koers\r\n"
                     "25/10/2025;23:59:00;51,180000;2,990000;0,0;\r\n"
                     "26/10/2025;01:30:00;51,176000;3,073000;36,0;90\r\n"
                     "26/10/2025;02:30:00;51,176000;3,073000;36,0;90\r\n"
                     "26/10/2025;03:30:00;51,000000;3,870000;72,0;95\r\n"
                     "27/10/2025;00:00:00;50,930000;3,960000;0,0;\r\n")
    res = load(p, tz="Europe/Brussels")
    assert_count_rule(res)
    assert res.fixes["t_utc"].tolist() == [
        pd.Timestamp("2025-10-25T21:59:00Z"), pd.Timestamp("2025-10-25T23:30:00Z"),
        pd.Timestamp("2025-10-26T02:30:00Z"), pd.Timestamp("2025-10-26T23:00:00Z")]
    assert res.rejects["record"].tolist() == ["row 3"]
    assert "ambiguous" in res.rejects["reason"].iloc[0]
    assert res.fixes["speed_mps"].iloc[2] == pytest.approx(20.0)
    assert res.fixes["course_deg"].iloc[2] == 95.0


def _claimants(path: Path) -> list[str]:
    """Names of every registered loader whose sniffer claims ``path`` (as detect_format asks)."""
    from routetrace.loaders.base import REGISTRY, SNIFF_BYTES

    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    out = []
    for spec, _fn in REGISTRY.values():
        try:
            if spec.sniff(path, head):
                out.append(spec.name)
        except Exception:  # detect_format treats a failing sniffer as "no"
            continue
    return sorted(out)


def test_exactly_one_loader_claims_each_real_and_sample_file(realdata_dir: Path,
                                                            tmp_path: Path) -> None:
    from routetrace.evidence import extract_archive, is_archive
    from routetrace.samples import generate

    # every real CSV: the csv loader and nothing else
    for f in sorted((realdata_dir / "csv").iterdir()):
        assert _claimants(f) == ["csv"], f.name
    # text logs owned by other loaders (NMEA, Teltonika hex) are never claimed by csv/portal
    for sub in ("nmea", "teltonika"):
        for f in sorted((realdata_dir / sub).rglob("*")):
            if f.is_file() and f.suffix.lower() not in (".md",):
                claims = _claimants(f)
                assert "csv" not in claims and "portal" not in claims, (f.name, claims)
                assert len(claims) <= 1, (f.name, claims)

    out = tmp_path / "sample"
    samples = generate(out, seed=7)
    owners: dict[str, list[str]] = {}
    checked = 0
    for s in samples:
        p = out / s.path
        if is_archive(p) and p.suffix.lower() == ".zip":
            # an extraction/Takeout zip goes to load_many member by member: no member may be
            # claimed twice, and csv/portal only claim delimited text
            dest = tmp_path / "x" / p.stem
            for m in extract_archive(p, dest).members:
                claims = _claimants(m.path)
                assert len(claims) <= 1, (s.path, m.name, claims)
                if {"csv", "portal"} & set(claims):
                    assert m.path.suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx"), (m.name, claims)
                checked += 1
            continue
        claims = _claimants(p)
        assert len(claims) == 1, (s.path, claims)
        assert detect_format(p).name == claims[0]
        if s.format:
            assert claims == [s.format], s.path
        owners[s.path] = claims
    assert checked > 0
    assert owners["evidence/lorry-2/lorry-2_positions.csv"] == ["csv"]
    portal_files = [k for k in owners if "_portal_" in k]
    assert portal_files and all(owners[k] == ["portal"] for k in portal_files)
    others = [k for k, v in owners.items() if v[0] in ("csv", "portal")]
    assert sorted(others) == sorted(["evidence/lorry-2/lorry-2_positions.csv", *portal_files])


def test_malformed_wide_rows_are_rejects_and_every_other_row_loads(tmp_path: Path) -> None:
    rows = ["time,lat,lon"] + [f"2025-10-26T21:{m:02d}:00Z,51.0,3.9" for m in range(40)]
    rows.insert(5, ",".join(["9"] * 40))  # far more fields than the header: unreadable
    rows.append(",".join(["9"] * 50))  # the last line too
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for chunk_rows in (7, 1000):  # bad lines inside and after the last chunk
        res = load(p, options={"chunk_rows": chunk_rows})
        assert_count_rule(res)
        assert len(res.fixes) == 40 and res.records_read == 42
        assert sorted(res.rejects["record"].tolist()) == ["row 42", "row 5"]  # data rows
        assert res.rejects["reason"].str.contains("beyond the header's 3 columns").all()


def test_damaged_times_are_row_rejects_not_a_lost_file(tmp_path: Path) -> None:
    """Year 2408 (beyond nanoseconds), year 286, and clock-only values with a zone (which
    the fallback parser would read as today's date in mixed zones) reject their rows only."""
    rows = ["time;lat;lon"] + [f"2024-06-15T10:{m:02d}:00Z;52,52;13,40" for m in range(10)]
    rows += ["2408-01-27T14:57:46Z;52,52;13,40", "0286-02-01 00:00:00;52,52;13,40"]
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = load(p, tz=UTC)
    assert_count_rule(res)
    assert len(res.fixes) == 10
    assert res.rejects["reason"].tolist() == ["implausible time (outside 1980-2100)"] * 2
    clocks = ["time;lat;lon"] + ["T10:31:00Z;52,52;13,40", "10:32:00;52,52;13,40"] * 5
    q = tmp_path / "clocks.csv"
    q.write_text("\n".join(clocks) + "\n", encoding="utf-8")
    res = load(q, format="csv", tz=UTC)
    assert_count_rule(res)
    assert res.records_read == 10 and len(res.rejects) >= 5


def test_a_row_with_values_beyond_the_header_is_a_reject_not_silently_cut(tmp_path: Path) -> None:
    """An unquoted comma in a free-text field shifts the columns: the row is a reject with
    its row number; a trailing empty field is not."""
    rows = ["time,lat,lon,place"] + [f"2025-10-26T21:{m:02d}:00Z,51.0,3.9,Gent" for m in range(6)]
    rows[3] = "2025-10-26T21:02:00Z,51.0,3.9,Rue de la Loi, 16, Brussels"
    rows[4] = rows[4] + ","
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 5 and res.rejects["record"].tolist() == ["row 3"]
    assert "2 value(s) beyond the header's 4 columns" in res.rejects["reason"].iloc[0]


def test_a_first_data_row_wider_than_the_header_does_not_cut_later_rows(tmp_path: Path) -> None:
    """pandas cuts every row to the names' width once the first data row is wider than
    them (with only a warning); the loader sizes the names from a scan of the file."""
    rows = ["time,lat,lon"] + [f"2025-10-26T21:{m:02d}:00Z,51.0,3.9" for m in range(20)]
    rows[1] += "," + ",".join(["7"] * 12)  # the first data row: 12 extra values
    rows[9] += ",7,7"  # a later row: 2 extra values
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 18 and res.rejects["record"].tolist() == ["row 1", "row 9"]


def test_max_fields_scan_across_blocks(tmp_path: Path) -> None:
    from routetrace.loaders.csv import Dialect, _max_fields

    p = tmp_path / "x.csv"
    p.write_bytes(b"a,b\n1,2\n" + b",".join([b"9"] * 30) + b"\n3,4\n5,6")
    d = Dialect(delimiter=",", header_line=0, header=["a", "b"], decimal_comma=False)
    assert {_max_fields(p, d, block_bytes=k) for k in (3, 7, 64, 1 << 20)} == {30}


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_an_unclosed_quote_costs_the_rest_of_the_file_not_the_rows_before(
        tmp_path: Path, chunk_rows: int) -> None:
    """Fuzz csv:67034 and portal:66564 ("EOF inside string"): a quote opened and never
    closed makes the rest of the file one field. The rows before it are read, a malformed
    row before it is still its own reject, and the rest is one reject naming where it
    starts (was: the whole file refused)."""
    rows = ["time,lat,lon,place"] + [f"2025-10-26T21:{m:02d}:00Z,51.0,3.9,Gent" for m in range(30)]
    rows[5] = ",".join(["9"] * 50)  # a row too wide (data row 5) before the quote
    rows[20] = '2025-10-26T21:19:00Z,51.0,3.9,"Gent'  # data row 20 opens a quote never closed
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = load(p, options={"chunk_rows": chunk_rows})
    assert_count_rule(res)
    assert len(res.fixes) == 18  # data rows 1-19 but the malformed one
    assert res.fixes["t_utc"].max() == pd.Timestamp("2025-10-26T21:18:00Z")
    rejects = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(rejects) == {"row 5", "row 20 to the end of the file"}
    assert rejects["row 20 to the end of the file"].startswith("a quote opened in this row is never closed")


def test_a_header_naming_a_column_twice_is_a_clear_error(tmp_path: Path) -> None:
    """Fuzz portal:71988: a header repeating its names. Which values belong to which column
    cannot be told, so the file is refused with a message naming them (was: pandas'
    "Duplicate names are not allowed" out of the loader boundary)."""
    p = tmp_path / "log.csv"
    p.write_text("time,lat,lon,lat\n2025-10-26T21:00:00Z,51.0,3.9,52.0\n", encoding="utf-8")
    with pytest.raises(CorruptSource, match=r"log.csv: the header \(line 1\) names column\(s\) 'lat' more than once"):
        load(p, format="csv")


def test_fixed_width_dates_fast_path_gives_the_general_paths_text():
    """dd/mm/yyyy dates are sliced in Arrow (#21); the text equals the regex path's, invalid
    dates included (they fail later, in the time parser, as before)."""
    from routetrace.loaders import csv as csvmod

    dates = pd.Series(["13/01/2025", "31/02/2025", "01.02.2025", "00/01/2025", "05-06-2025"])
    assert csvmod._fixed_dmy(dates, None) is not None  # the fast path applies
    fast, order = csvmod._date_iso(dates, yymmdd=False, order=None)
    mixed = pd.concat([dates, pd.Series(["1/2/2025"])], ignore_index=True)  # forces the regex path
    assert csvmod._fixed_dmy(mixed, None) is None
    slow, order2 = csvmod._date_iso(mixed, yymmdd=False, order=None)
    assert order == order2 == "DMY"
    assert fast.tolist() == slow[:5].tolist() == ["2025-01-13", "2025-02-31", "2025-02-01",
                                                  "2025-01-00", "2025-06-05"]
    assert csvmod._all_plain_local(fast + " 10:00:00")
    assert not csvmod._all_plain_local(pd.Series(["2025-01-13 10:00:00Z"]))


def _variants() -> dict[str, bytes]:
    """Files on both sides of the Arrow reader's conditions (see loaders.csv._scan)."""
    rows = []
    for i in range(45):
        lat, t = f"51.{i:04d}", f"2025-10-26T21:{i:02d}:00Z"
        if i % 9 == 1:
            lat = ""
        elif i % 9 == 2:
            t = f"2025-10-26 21:{i:02d}:00"  # local: a reject without tz
        elif i % 9 == 3:
            lat = "95.0"
        rows.append(f"{t},{lat},3.9,{i % 90}.5")
    head = "time,lat,lon,speed (km/h)"
    lf = "\n".join([head, *rows]) + "\n"
    return {
        "lf": lf.encode(), "crlf": lf.replace("\n", "\r\n").encode(), "no_last_eol": lf.rstrip().encode(),
        "bom_preamble": ("\ufeff# exported\n\nby a logger\n" + lf).encode(),
        "trailing_delimiter": lf.replace("\n", ",\n").encode(),
        "comment_row": lf.replace(rows[5] + "\n", rows[5] + "\n# a,note,in,data\n").encode(),
        "semicolon_decimal_comma": lf.replace(",", ";").replace(".", ",").encode(),
        # the pandas path only: quotes, spaces opening a field, a blank line, a short row, cp1252
        "quotes": lf.replace(",3.9,", ',"3.9",').encode(),
        "spaces": lf.replace(",3.9,", ", 3.9,").encode(),
        "blank_line": lf.replace(rows[7] + "\n", rows[7] + "\n\n").encode(),
        "short_row": lf.replace(rows[8], rows[8].rsplit(",", 1)[0]).encode(),
        "cp1252": ("# café export\n" + lf).encode("cp1252"),
    }


ARROW_READ = {"lf", "crlf", "no_last_eol", "bom_preamble", "trailing_delimiter", "comment_row",
              "semicolon_decimal_comma"}


@pytest.mark.parametrize("name", sorted(_variants()))
@pytest.mark.parametrize("chunk_rows", [7, 200_000])
def test_arrow_reader_gives_what_pandas_reader_gives(tmp_path: Path, name: str, chunk_rows: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Simple files are read by Arrow's CSV reader, the rest by pandas' (quotes, NULs, spaces
    opening a field, blank or short rows, not UTF-8): for any file both give the same
    fixes, rejects and source, chunk boundaries included."""
    from routetrace.loaders import csv as csvmod

    p = tmp_path / f"{name}.csv"
    p.write_bytes(_variants()[name])
    d = csvmod.sniff_dialect(p.read_bytes())
    assert d is not None
    assert (csvmod._scan(p, d).arrow_fields > 0) == (name in ARROW_READ)
    opts = {"chunk_rows": chunk_rows}
    fast = load(p, format="csv", tz="Europe/Brussels", options=opts)
    scan = csvmod._scan
    monkeypatch.setattr(csvmod, "_scan", lambda path, dialect, **kw: csvmod._Scan(
        max_fields=scan(path, dialect, **kw).max_fields))
    slow = load(p, format="csv", tz="Europe/Brussels", options=opts)
    assert_count_rule(fast)
    assert fast.records_read == slow.records_read == 45
    for kind in ("fixes", "rejects", "source"):
        pd.testing.assert_frame_equal(getattr(fast, kind), getattr(slow, kind), check_exact=True)


@pytest.mark.parametrize("name", ["lf", "quotes", "short_row"])
def test_stream_csv_gives_the_loaded_tables_chunk_by_chunk(tmp_path: Path, name: str) -> None:
    """stream_csv (memory bounded by the chunk) yields exactly load()'s fixes and rejects."""
    from routetrace.loaders.csv import stream_csv

    p = tmp_path / f"{name}.csv"
    p.write_bytes(_variants()[name])
    res = load(p, format="csv", tz="Europe/Brussels")
    parts = list(stream_csv(p, tz="Europe/Brussels", options={"chunk_rows": 7}))
    assert len(parts) == 7
    # schema.concat: the chunks' dictionary columns (reasons, an empty chunk's source_id)
    # differ in categories; pandas.concat alone would make plain text of them
    fixes = schema.concat([f for f, _ in parts], "fixes")
    rejects = schema.concat([r for _, r in parts], "rejects")
    pd.testing.assert_frame_equal(fixes, res.fixes, check_exact=True)
    pd.testing.assert_frame_equal(rejects, res.rejects, check_exact=True)
    assert len(fixes) + len(rejects) == res.records_read == 45


def test_stream_csv_refuses_a_file_of_local_times_without_tz(tmp_path: Path) -> None:
    from routetrace.loaders.csv import stream_csv

    p = tmp_path / "local.csv"
    p.write_text("time,lat,lon\n2025-10-26 21:00:00,51.0,3.9\n2025-10-26 21:01:00,51.0,3.9\n")
    with pytest.raises(AmbiguousTime, match=r"local.csv \[row 1\]: 2 row\(s\) give local times"):
        list(stream_csv(p))


def test_local_times_arrow_refuses_are_read_by_pandas_rules(tmp_path: Path) -> None:
    """'YYYY-MM-DD hh:mm:ss' local times go through Arrow's ISO-8601 cast; a chunk where
    Arrow refuses a value (30 February, 24:00:00) or a year outside 1900-2200 is parsed by
    pandas' rules instead: those rows are rejects, the others load, as before."""
    rows = ["Datum;Tijd;Breedtegraad;Lengtegraad"]
    rows += [f"0{d}/06/2025;10:0{d}:00;51,0;3,9" for d in range(1, 6)]
    rows[2] = "30/02/2025;10:00:00;51,0;3,9"
    rows[4] = "04/06/2025;24:00:00;51,0;3,9"
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = load(p, tz="Europe/Brussels", options={"date_order": "DMY"})
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["row 1", "row 3", "row 5"]
    assert res.fixes["t_utc"].iloc[0] == pd.Timestamp("2025-06-01T08:01:00Z")
    assert res.rejects[["record", "reason"]].values.tolist() == [
        ["row 2", "time missing or unreadable"], ["row 4", "time missing or unreadable"]]
    far = tmp_path / "far.csv"
    far.write_text("date,time,lat,lon\n2025-06-01,10:00:00,51.0,3.9\n2408-06-01,10:00:00,51.0,3.9\n")
    res = load(far, tz="Europe/Brussels")
    assert res.rejects[["record", "reason"]].values.tolist() == [
        ["row 2", "implausible time (outside 1980-2100)"]]
