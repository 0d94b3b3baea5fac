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
