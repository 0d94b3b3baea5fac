"""The cheap first pass of ``scan_json`` never misses an excess the full scan finds."""

from __future__ import annotations

import io

import pytest

from routetrace.loaders.google_common import JsonShape, _QuickShape, scan_json

DOCS = [
    b'{"locations": [{"a": 1}, {"b": "xyz"}]}',
    b'{"locations": [{"a": "[[[[[[[[[["}, {"b": "]]]]"}]}',  # brackets inside strings
    b'{"locations": [{"a": "\\"[[[[[[[[\\\\"}, [[[[[1]]]]]]}',  # escaped quotes, backslashes
    b'{"locations": [{"a": "\\\\\\"[[[[[[[["}]}',
    b'{"locations": [{"s": "' + b"x" * 40 + b'"}]}',  # a long string
    b'{"locations": [{"s": "' + b"x" * 39 + b'"}]}',
    b'{"k": "' + b"y" * 50 + b'", "locations": []}',  # long string outside any record
    b"[[[[[[[[[]]]]]]]]]",
    b'[{"a": [[[[[[1]]]]]]}, {"b": 2}]',
    b'{"locations": [' + b"[" * 7 + b"]" * 7 + b"]}",
]


def _full(doc: bytes, chunk: int) -> bool:
    shape = JsonShape(max_depth=6, max_string=39)
    for i in range(0, len(doc), chunk):
        shape.feed(doc[i:i + chunk])
    shape.close()
    return bool(shape.oversize) or shape.outside is not None


def _quick(doc: bytes, chunk: int) -> bool:
    quick = _QuickShape(max_depth=6, max_string=39)
    for i in range(0, len(doc), chunk):
        quick.feed(doc[i:i + chunk])
    return quick.over


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 20, 41, 1 << 20])
def test_quick_pass_never_misses_what_the_full_scan_finds(doc: bytes, chunk: int) -> None:
    assert _quick(doc, chunk) >= _full(doc, chunk)
    if chunk < 20:  # no whole block of (39 + 2) // 2 bytes in a chunk: measured exactly
        assert _quick(doc, chunk) == _full(doc, chunk)


@pytest.mark.parametrize("chunk", [5, 64, 1000, 1 << 20])
def test_quick_pass_depth_after_hundreds_of_strings(chunk: int) -> None:
    """The quick pass counts quotes in 8 bits (the parity is what it needs): over 255 strings
    holding brackets, then a nest one level over the limit (or at it), in chunks."""
    strings = b", ".join(b'{"s": "[[[{{"}' for _ in range(300))
    for extra, over in ((4, True), (3, False)):  # root, array, element: 3 levels, limit 6
        doc = (b'{"locations": [' + strings + b", {\"a\": " + b"[" * extra + b"]" * extra
               + b"}]}")
        assert _quick(doc, chunk) is over and _full(doc, chunk) is over


def test_a_location_export_is_not_suspected() -> None:
    loc = b'{"latitudeE7": 510000000, "longitudeE7": 38700000, "timestamp": "2025-10-26T21:00:00Z"}'
    doc = b'{"locations": [' + b", ".join([loc] * 20_000) + b"]}"
    quick = _QuickShape(max_depth=64, max_string=65_536)
    for i in range(0, len(doc), 1 << 20):
        quick.feed(doc[i:i + (1 << 20)])
    assert quick.over is False


@pytest.mark.parametrize("chunk", [1, 3, 20, 41, 1 << 20])
def test_quick_pass_never_misses_a_long_string(chunk: int) -> None:
    for n in range(30, 100):
        for pad in range(0, 25, 4):
            doc = b'{"locations": [' + b"1, " * pad + b'{"s": "' + b"x" * n + b'"}]}'
            assert not _quick(doc, chunk) < _full(doc, chunk), (n, pad)


def test_a_long_run_without_quotes_is_only_suspected() -> None:
    doc = b'{"locations": [' + b" " * 70_000 + b'{"a": 1}]}'
    assert _QuickShape(max_depth=64, max_string=65_536).over is False
    quick = _QuickShape(max_depth=64, max_string=65_536)
    quick.feed(doc)
    shape = scan_json(io.BytesIO(doc))
    assert quick.over and shape.oversize == [] and shape.outside is None


def test_some_documents_are_over_and_some_within() -> None:
    verdicts = {_full(d, 1 << 20) for d in DOCS}
    assert verdicts == {True, False}


def test_scan_json_reports_the_record_after_the_quick_pass() -> None:
    doc = b'{"locations": [{"a": 1}, {"b": "' + b"z" * 70_000 + b'"}, {"c": 3}]}'
    shape = scan_json(io.BytesIO(doc))
    assert [(o.record, o.longest) for o in shape.oversize] == [("locations[1]", 70_000)]


@pytest.mark.parametrize("texts", [
    ["2019-01-01T00:00:00Z", "2019-06-01T12:34:56.123456789Z", "2020-02-29T23:59:59.1Z"],
    ["2019-01-01T00:00:00Z", "2019-02-30T00:00:00Z"],  # Arrow refuses: pandas, NaT for one
    ["2019-01-01T00:00:00Z", "2019-01-01T02:00:00+02:00", "2019-01-01T24:00:00Z"],
])
def test_records_times_read_as_pandas_reads_them(texts: list[str]) -> None:
    import pandas as pd
    import pyarrow as pa

    from routetrace.loaders.takeout_records import _iso_utc

    want = pd.to_datetime(pd.Series(texts, dtype=object), format="ISO8601", utc=True,
                          errors="coerce")
    got = _iso_utc(pa.array(texts))
    assert [None if pd.isna(w) else w.tz_localize(None).as_unit("ns").to_datetime64()
            for w in want] == [None if pd.isna(g) else g for g in got]
