"""NMEA 0183 loader: real logs, checksums, dates, epochs, encodings, noise."""

from __future__ import annotations

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
