"""The cheap first pass of ``scan_json`` finds an excess exactly when the full scan does."""

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
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_quick_pass_agrees_with_full_scan(doc: bytes, chunk: int) -> None:
    assert _quick(doc, chunk) == _full(doc, chunk)


def test_some_documents_are_over_and_some_within() -> None:
    verdicts = {_full(d, 1 << 20) for d in DOCS}
    assert verdicts == {True, False}


def test_scan_json_reports_the_record_after_the_quick_pass() -> None:
    doc = b'{"locations": [{"a": 1}, {"b": "' + b"z" * 70_000 + b'"}, {"c": 3}]}'
    shape = scan_json(io.BytesIO(doc))
    assert [(o.record, o.longest) for o in shape.oversize] == [("locations[1]", 70_000)]
