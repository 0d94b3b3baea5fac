"""NMEA 0183 loader: real logs, checksums, dates, epochs, encodings, noise."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree


def _load(p: Path, **kw: object) -> object:
    res = load(p, **kw)  # type: ignore[arg-type]
    assert_count_rule(res)
    return res


def test_every_real_log_loads_is_sniffed_and_stays_byte_identical(realdata_dir: Path) -> None:
    folder = realdata_dir / "nmea"
    before = hash_tree(folder)
    for f in sorted(folder.iterdir()):
        assert detect_format(f).name == "nmea", f.name
        opts = {"date": "2008-06-05"} if "adddate" in f.name else None
        res = _load(f, options=opts)
        assert (res.rejects["reason"].str.len() > 0).all()  # type: ignore[attr-defined]
    assert hash_tree(folder) == before


def test_track_epochs_merge_rmc_and_gga(realdata_dir: Path) -> None:
    res = _load(realdata_dir / "nmea" / "gpsbabel_track.nmea")
    fx = res.fixes  # type: ignore[attr-defined]
    assert len(fx) == 154  # one fix per GGA/RMC epoch
    assert fx["record"].str.contains(r"\+").all()
    assert fx["t_utc"].iloc[0] == pd.Timestamp("2004-08-07T03:29:08.379Z")
    assert fx["alt_m"].iloc[0] == 209.8 and fx["lon"].iloc[0] < 0  # W hemisphere
    utf16 = _load(realdata_dir / "nmea" / "gpsbabel_nmea_utf16.nmea").fixes  # type: ignore[attr-defined]
    assert len(utf16) == 154 and (utf16["lat"].to_numpy() == fx["lat"].to_numpy()).all()


def test_gga_only_needs_a_date_and_rolls_over_midnight(realdata_dir: Path) -> None:
    f = realdata_dir / "nmea" / "gpsbabel_adddate.nmea"
    without = _load(f)
    assert len(without.fixes) == 0 and without.rejects["reason"].str.contains("options date").all()  # type: ignore[attr-defined]
    res = _load(f, options={"date": "2008-06-05"})
    t = res.fixes["t_utc"]  # type: ignore[attr-defined]
    assert t.min() == pd.Timestamp("2008-06-05T23:56:00Z") and t.max() > pd.Timestamp("2008-06-06T00:00:00Z")
    assert t.is_monotonic_increasing


def test_two_digit_years_and_time_variants(realdata_dir: Path) -> None:
    years = _load(realdata_dir / "nmea" / "gpsbabel_nmeadate.nmea").fixes["t_utc"].dt.year.tolist()  # type: ignore[attr-defined]
    assert years[:2] == [1998, 1999] and 2000 in years
    dtv = _load(realdata_dir / "nmea" / "gpsbabel_nmeadatetime.nmea")
    assert pd.Timestamp("2019-10-23T22:25:10.1Z") in set(dtv.fixes["t_utc"])  # type: ignore[attr-defined]
    assert dtv.rejects["reason"].str.contains("usable time").any()  # '222515.x' is not a time


def test_bad_checksums_noise_and_no_fix(realdata_dir: Path) -> None:
    bad = _load(realdata_dir / "nmea" / "pynmeagps_nmeabadck.log")
    assert len(bad.fixes) == 1 and (bad.rejects["reason"].str.contains("checksum")).sum() == 2  # type: ignore[attr-defined]
    startup = _load(realdata_dir / "nmea" / "pynmeagps_nmeastartup.log")
    assert len(startup.fixes) == 0 and startup.rejects["reason"].str.contains("status V").any()  # type: ignore[attr-defined]
    eof = _load(realdata_dir / "nmea" / "pynmeagps_badeof.log")
    assert eof.rejects["reason"].str.contains("truncated").any()  # type: ignore[attr-defined]
    ubx = _load(realdata_dir / "nmea" / "pynmeagps_mixed_ubx_nmea.log")
    assert ubx.rejects["reason"].str.contains("not an NMEA sentence").any()  # type: ignore[attr-defined]
    amod = _load(realdata_dir / "nmea" / "gpsbabel_amod-nmea.txt")
    assert amod.rejects["reason"].str.contains("PMB|ADPMB|not an NMEA").any()  # type: ignore[attr-defined]


def test_inconsistent_rmc_and_gga_are_flagged_and_gga_wins(realdata_dir: Path) -> None:
    fx = _load(realdata_dir / "nmea" / "pynmeagps_nmea4.log").fixes  # type: ignore[attr-defined]
    first = fx.iloc[0]
    assert "inconsistent_value" in first["flags"] and abs(first["lon"] + 2.24041) < 1e-4
    assert "-102.24" in first["extra"]


def test_generated_log_with_crlf_and_bad_date(tmp_path: Path) -> None:
    def s(body: str) -> str:
        c = 0
        for ch in body.encode():
            c ^= ch
        return f"${body}*{c:02X}"

    lines = [s("GPRMC,235959.00,A,5100.0000,N,00352.2000,E,10.0,90.0,261025,,"),
             s("GPGGA,235959.00,5100.0000,N,00352.2000,E,1,08,0.9,12.0,M,,M,,"),
             s("GPGGA,000001.00,5100.0010,N,00352.2100,E,1,08,0.9,12.0,M,,M,,"),
             s("GPRMC,000002.00,A,5100.0020,N,00352.2200,E,10.0,90.0,320125,,"),
             "garbage text"]
    p = tmp_path / "log.nmea"
    p.write_bytes("\r\n".join(lines).encode())
    res = _load(p)
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["t_utc"].tolist() == [pd.Timestamp("2025-10-26T23:59:59Z"), pd.Timestamp("2025-10-27T00:00:01Z")]
    assert fx["speed_mps"].iloc[0] == pytest.approx(5.144, abs=1e-3)
    assert set(res.rejects["reason"]) >= {"RMC with an impossible date '320125'",  # type: ignore[attr-defined]
                                          "not an NMEA sentence (text or binary data)"}


def test_zda_dates_gga_and_gll_from_any_talker(tmp_path: Path) -> None:
    def s(body: str) -> str:
        c = 0
        for ch in body.encode():
            c ^= ch
        return f"${body}*{c:02X}"

    lines = [s("GNZDA,235958.00,26,10,2025,00,00"),
             s("GNGGA,235959.00,5100.0000,N,00352.2000,E,1,08,0.9,12.0,M,,M,,"),
             s("GLGLL,5100.0010,N,00352.2100,E,000000.00,A,A"),
             s("GAGLL,5100.0020,N,00352.2200,E,000001.00,V,N"),
             s("GBGGA,000002.00,5100.0030,S,00352.2300,W,0,00,,,M,,M,,")]
    p = tmp_path / "zda.nmea"
    p.write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode("utf-16"))
    res = _load(p)
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["t_utc"].tolist() == [pd.Timestamp("2025-10-26T23:59:59Z"), pd.Timestamp("2025-10-27T00:00:00Z")]
    assert fx["alt_m"].iloc[0] == 12.0 and pd.isna(fx["alt_m"].iloc[1])
    reasons = res.rejects.set_index("record")["reason"]  # type: ignore[attr-defined]
    assert "ZDA" in reasons["line 1"] and "GLL status V" in reasons["line 4"]
    assert "quality 0" in reasons["line 5"]
    # a ZDA year of 30 digits (fuzz input nmea:8755) is that line's reject, not the file's end
    p.write_bytes(("\n".join([s("GNZDA,235958.00,26,10," + "9" * 30 + ",00,00"), *lines]) + "\n").encode())
    res = _load(p)
    assert res.rejects.set_index("record")["reason"]["line 1"] == "ZDA with an impossible date"  # type: ignore[attr-defined]
    assert len(res.fixes) == 2  # type: ignore[attr-defined]


def _s(body: str) -> str:
    c = 0
    for ch in body.encode():
        c ^= ch
    return f"${body}*{c:02X}"


def test_badhdr_corrupted_talker_is_a_damaged_sentence(realdata_dir: Path) -> None:
    res = _load(realdata_dir / "nmea" / "pynmeagps_BADHDR.log")
    reasons = res.rejects.set_index("record")["reason"]  # type: ignore[attr-defined]
    assert reasons["line 6"].startswith("damaged sentence")  # '$&bTXT...': header destroyed
    assert (reasons.str.contains("GPTXT")).sum() == 5  # the start-up banner: valid, no position
    assert len(res.fixes) == 2  # type: ignore[attr-defined]


def test_half_second_crlf_log_dates_its_leading_gga_from_the_first_rmc(realdata_dir: Path) -> None:
    f = realdata_dir / "nmea" / "gpsbabel_nmea+ms.txt"
    assert b"\r\n" in f.read_bytes()
    fx = _load(f).fixes  # type: ignore[attr-defined]
    assert fx["record"].iloc[0] == "line 1"  # GGA 09:31:56.000, before any RMC
    assert fx["t_utc"].iloc[0] == pd.Timestamp("2007-08-17T09:31:56Z")
    assert '"date_from":"line 3' in fx["extra"].iloc[0]
    assert (fx["t_utc"].dt.microsecond % 250_000 == 0).all()  # '093156.500'-style fractions kept
    assert fx["t_utc"].dt.microsecond.nunique() == 4
    # the log is out of order in places (RMC 09:31:58.500, RMC 09:31:58.000, ..., GGA 09:31:58.500):
    # kept in file order; sentences of one time apart from each other are not merged
    assert not fx["t_utc"].is_monotonic_increasing
    at = fx.set_index("record")["t_utc"]
    assert at["line 29"] == at["line 36"] == pd.Timestamp("2007-08-17T09:31:58.5Z")
    assert at["line 30+32"] == pd.Timestamp("2007-08-17T09:31:58Z")


def test_amod_free_text_header_and_checksumless_button_presses(realdata_dir: Path) -> None:
    res = _load(realdata_dir / "nmea" / "gpsbabel_amod-nmea.txt")
    reasons = res.rejects.set_index("record")["reason"]  # type: ignore[attr-defined]
    assert reasons["line 1"] == reasons["line 2"] == "not an NMEA sentence (text or binary data)"
    assert reasons["line 4"] == "sentence without a checksum: it cannot be verified"  # $ADPMB,5,0
    assert len(res.fixes) == 4 and res.fixes["record"].iloc[1] == "line 7+8+10"  # type: ignore[attr-defined]


def test_gns_merges_and_mode_n_is_no_fix(tmp_path: Path) -> None:
    lines = [_s("GNRMC,120000.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010325,,,A"),
             _s("GNGNS,120000.00,5100.0000,N,00352.2000,E,AANN,06,5.88,56.0,48.5,,,V"),
             _s("GNGNS,120001.00,,,,,NNNN,00,99.9,,,,,V")]
    p = tmp_path / "gns.nmea"
    p.write_text("\n".join(lines))
    res = _load(p)
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["record"].tolist() == ["line 1+2"] and fx["alt_m"].iloc[0] == 56.0
    assert "mode N" in res.rejects.set_index("record").loc["line 3", "reason"]  # type: ignore[attr-defined]


def test_leading_gga_before_midnight_is_dated_the_day_before_the_first_rmc(tmp_path: Path) -> None:
    lines = [_s("GPGGA,235958.00,5100.0000,N,00352.2000,E,1,08,0.9,12.0,M,,M,,"),
             _s("GPRMC,000001.00,A,5100.0020,N,00352.2200,E,10.0,90.0,270325,,"),
             _s("GPVTG,90.0,T,,M,10.0,N,18.5,K,A")]
    p = tmp_path / "lead.nmea"
    p.write_text("\n".join(lines))
    fx = _load(p).fixes  # type: ignore[attr-defined]
    assert fx["t_utc"].tolist() == [pd.Timestamp("2025-03-26T23:59:58Z"), pd.Timestamp("2025-03-27T00:00:01Z")]


def _log(tmp_path: Path, lines: list[str], name: str = "log.nmea") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_two_talkers_of_one_epoch_are_one_fix_with_the_other_kept(tmp_path: Path) -> None:
    # a GPS+GLONASS receiver: GP and GL (and a combined GN) GGA for the same epochs
    lines = []
    for sec in ("00", "01"):
        lines += [_s(f"GPRMC,1200{sec}.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010325,,,A"),
                  _s(f"GPGGA,1200{sec}.00,5100.0000,N,00352.2000,E,1,08,0.9,12.0,M,,M,,"),
                  _s(f"GLGGA,1200{sec}.00,5100.0001,N,00352.2001,E,1,05,1.2,12.5,M,,M,,"),
                  _s(f"GNGGA,1200{sec}.00,5100.0002,N,00352.2002,E,1,13,0.7,12.2,M,,M,,")]
    res = _load(_log(tmp_path, lines))
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["record"].tolist() == ["line 1+2+3+4", "line 5+6+7+8"]  # one fix per epoch
    assert res.records_read == 2 and len(res.rejects) == 0  # type: ignore[attr-defined]
    assert fx["lat"].iloc[0] == pytest.approx(51.0) and fx["alt_m"].iloc[0] == 12.0  # the first wins
    extra = json.loads(fx["extra"].iloc[0])
    assert [t[:2] for t in extra["other_talkers"]] == [["GL", "GGA"], ["GN", "GGA"]]
    assert extra["other_talkers"][0][2] == pytest.approx(51 + 0.0001 / 60)


def test_real_ublox_log_integrated_talker_gga_joins_its_epoch(realdata_dir: Path) -> None:
    res = _load(realdata_dir / "nmea" / "pynmeagps_nmea4.log")
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["record"].tolist() == ["line 2+6+7+20+49"]  # $INGGA 10:36:07.00 is the same epoch
    assert '"other_talkers":[["IN","GGA"' in fx["extra"].iloc[0]


def test_magellan_pmgntrk_track_points_are_fixes(tmp_path: Path) -> None:
    lines = [_s("PMGNTRK,4325.289,N,07953.720,W,00139,M,185034.14,A,,020307"),
             _s("PMGNTRK,4325.300,N,07953.730,W,00500,F,185035.14,A,TRACK 1,020307"),
             _s("PMGNTRK,4325.310,N,07953.740,W,00139,M,185036.14,A,,"),  # no date: carried
             _s("PMGNTRK,4325.320,N,07953.750,W,00139,M,185037.14,V,,020307"),
             _s("PMGNWPL,4325.289,N,07953.720,W,0000139,M,HOME,,a")]
    res = _load(_log(tmp_path, lines))
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["t_utc"].tolist() == [pd.Timestamp("2007-03-02T18:50:34.14Z"),
                                    pd.Timestamp("2007-03-02T18:50:35.14Z"),
                                    pd.Timestamp("2007-03-02T18:50:36.14Z")]
    assert fx["lon"].iloc[0] == pytest.approx(-(79 + 53.72 / 60))
    assert fx["alt_m"].tolist()[:2] == [139.0, pytest.approx(152.4)]  # 500 ft
    assert '"track":"TRACK 1"' in fx["extra"].iloc[1]
    reasons = res.rejects.set_index("record")["reason"]  # type: ignore[attr-defined]
    assert "status V" in reasons["line 4"] and "carries no position" in reasons["line 5"]


def test_week_rollover_date_is_flagged_never_corrected(tmp_path: Path) -> None:
    # 2019-06-01 minus 1024 weeks is 1999-10-16: a receiver that rolled over mid-log
    lines = [_s("GPRMC,120000.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010619,,,A"),
             _s("GPRMC,120001.00,A,5100.0000,N,00352.2000,E,1.0,90.0,161099,,,A")]
    res = _load(_log(tmp_path, lines), format="nmea")
    fx = res.fixes  # type: ignore[attr-defined]
    assert fx["t_utc"].iloc[1] == pd.Timestamp("1999-10-16T12:00:01Z")  # kept as logged
    assert fx["flags"].tolist() == ["", "gps_week_rollover_suspect"]
    assert '"date_plus_1024_weeks":"2019-06-01T12:00:01+00:00"' in fx["extra"].iloc[1]
    assert "rollover" in res.source["time_basis"].iloc[0]  # type: ignore[attr-defined]
    # a multi-GNSS receiver (Galileo satellites in view) cannot log 1999
    gal = [_s("GNRMC,120001.00,A,5100.0000,N,00352.2000,E,1.0,90.0,161099,,,A"),
           _s("GAGSV,1,1,01,02,45,120,40,7")]
    fx = _load(_log(tmp_path, gal, "gal.nmea"), format="nmea").fixes  # type: ignore[attr-defined]
    assert fx["flags"].tolist() == ["gps_week_rollover_suspect"]
    assert "talker GA in the log" in fx["extra"].iloc[0]
    # a GPS-only log: only the examiner's not_before tells
    gps = [lines[1]]
    assert _load(_log(tmp_path, gps, "gps.nmea"), format="nmea").fixes["flags"].tolist() == [""]  # type: ignore[attr-defined]
    fx = _load(tmp_path / "gps.nmea", format="nmea", options={"not_before": "2015-01-01"}).fixes  # type: ignore[attr-defined]
    assert fx["flags"].tolist() == ["gps_week_rollover_suspect"] and "not_before" in fx["extra"].iloc[0]


def test_streamed_log_holds_no_line_list(tmp_path: Path) -> None:
    import tracemalloc

    fix = [_s("GPRMC,120000.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010325,,,A")]
    p = tmp_path / "blank.nmea"
    with open(p, "w") as fh:  # 1,000,000 blank lines: no records, nothing to keep
        fh.write(fix[0] + "\n" + "  \n" * 1_000_000 + fix[0].replace("120000", "120001")[:-3]
                 + "*" + format(int(fix[0][-2:], 16) ^ ord("0") ^ ord("1"), "02X") + "\n")
    tracemalloc.start()
    try:
        res = _load(p, format="nmea")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(res.fixes) == 2 and len(res.rejects) == 0  # type: ignore[attr-defined]
    assert res.fixes["record"].iloc[1] == "line 1000002"  # type: ignore[attr-defined]
    assert peak < 20 * 2**20  # the whole-file reader peaked at 62 MiB on this file, the stream at 2 MiB


def test_a_line_longer_than_a_piece_is_scanned_across_pieces(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from routetrace.loaders import nmea

    monkeypatch.setattr(nmea, "MAX_PIECE_CHARS", 64)
    noise = "\x01\x02binary" * 20
    one = _s("GPRMC,120000.00,A,5100.0000,N,00352.2000,E,1.0,90.0,010325,,,A")
    two = _s("GPGGA,120001.00,5100.0010,N,00352.2100,E,1,08,0.9,12.0,M,,M,,")
    p = tmp_path / "long.nmea"
    p.write_text(_s("GPZDA,115959.00,01,03,2025,00,00") + "\n" + noise + one + noise + two + noise
                 + "\n" + "x" * 200)
    res = _load(p, format="nmea")
    assert res.fixes["record"].tolist() == ["line 2.1", "line 2.2"]  # type: ignore[attr-defined]
    reasons = res.rejects.set_index("record")["reason"]  # type: ignore[attr-defined]
    assert reasons["line 3"] == "not an NMEA sentence (text or binary data)"
