"""A time past what nanoseconds hold (after 2262-04-11) is a reject, never a wrapped-around
plausible time and never the end of the file.

numpy's cast of 2600-01-01 (parsed by pandas at second resolution) to nanoseconds wrapped
to 2015-06-13 00:25:26 without an error: Records.json kept it as a valid fix. pandas' own
cast raised instead, and one such <time> made a whole GPX file a file error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from routetrace import timebase
from routetrace.loaders import load
from routetrace.testing import assert_count_rule

FUTURE, GOOD = "2600-01-01T00:00:00", "2025-01-01T00:00:00"


def _gpx(zone: str) -> str:
    pts = "".join(f'<trkpt lat="51" lon="3.8"><time>{t}{zone}</time></trkpt>' for t in (FUTURE, GOOD))
    return f'<?xml version="1.0"?>\n<gpx version="1.1" creator="t"><trk><trkseg>{pts}</trkseg></trk></gpx>\n'


CASES = {  # name: (file name, text, tz)
    "gpx-utc": ("a.gpx", _gpx("Z"), None),
    "gpx-local": ("b.gpx", _gpx(""), "Europe/Brussels"),
    "csv-utc": ("a.csv", f"time,lat,lon\n{FUTURE}Z,51,3.8\n{GOOD}Z,51,3.8\n", None),
    "csv-local": ("b.csv", f"time,lat,lon\n{FUTURE},51,3.8\n{GOOD},51,3.8\n", "Europe/Brussels"),
    "kml": ("a.kml", '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>' + "".join(
        f"<Placemark><TimeStamp><when>{t}Z</when></TimeStamp><Point><coordinates>3.8,51"
        "</coordinates></Point></Placemark>" for t in (FUTURE, GOOD)) + "</Document></kml>\n", None),
    "records-json": ("Records.json", '{"locations": [' + ", ".join(
        f'{{"latitudeE7": 510000000, "longitudeE7": 38000000, "accuracy": 10, "timestamp": "{t}Z"}}'
        for t in (FUTURE, GOOD)) + "]}\n", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_time_after_2262_is_a_reject(name: str, tmp_path: Path) -> None:
    fname, text, tz = CASES[name]
    (tmp_path / fname).write_text(text, encoding="utf-8")
    res = load(tmp_path / fname, tz=tz)
    assert_count_rule(res)
    rows = res.fixes if len(res.fixes) else res.places
    times = rows["t_utc"] if "t_utc" in rows.columns else rows["t_start"]
    assert len(rows) == 1 and times.iloc[0].year in (2024, 2025)  # the good one, nothing wrapped
    assert len(res.rejects) == 1
    assert any(w in res.rejects["reason"].iloc[0] for w in ("implausible", "unreadable"))


def test_the_shared_converters_give_nat_beyond_the_nanosecond_range() -> None:
    assert [str(t) for t in timebase.parse_iso([f"{FUTURE}Z", f"{GOOD}Z"])] == [
        "NaT", "2025-01-01 00:00:00+00:00"]
    assert [str(t) for t in timebase.localize(pd.Series([FUTURE, GOOD]), tz="UTC")] == [
        "NaT", "2025-01-01 00:00:00+00:00"]
    with pytest.raises(ValueError, match="with a zone"):
        timebase.as_ns_utc(pd.Series(pd.to_datetime([GOOD])))
