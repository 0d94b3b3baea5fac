"""Teltonika loader, columnar paths: the decoder's chunked columns and the vectorised event
ordering and change rules give what the straightforward versions give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routetrace import schema
from routetrace.loaders import load
from routetrace.loaders import teltonika_codec as tc
from routetrace.loaders import teltonika_events as te
from routetrace.loaders import teltonika_tables as tt
from routetrace.loaders.base import LoadContext

IMEI = "356307042441013"


def _tables(path: Path, **options: object) -> dict[str, pd.DataFrame]:
    res = load(path, format="teltonika", options=dict(options))
    return {"fixes": res.fixes, "events": res.events, "rejects": res.rejects,
            **res.extra_tables}


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_exact=True, obj=k)


def _lorry(k: int, ign: int, *, door: int = 0, t0: int = 1_761_512_400_000) -> tc.Record:
    return tc.Record(t_ms=t0 + 30_000 * k, lat=51.0 + 1e-4 * k, lon=3.87, sats=9,
                     speed_kmh=40 * ign, event_io=239 if k % 3 == 0 else 0,
                     io=(tc.IoValue(239, ign, 1), tc.IoValue(2, door, 1),
                         tc.IoValue(16, 1000 * k, 4), tc.IoValue(89, 80 - k // 4, 1)))


def _with_crc(data: bytes) -> bytes:
    return (b"\x00" * 4 + len(data).to_bytes(4, "big") + data
            + tc.crc16_ibm(data).to_bytes(4, "big"))


def _mixed_capture(path: Path) -> None:
    """A login, frames of 3 records (ignition and door change on a frame's first record),
    a codec-16 frame, a frame with a broken CRC, a truncated frame and a frame whose
    records parse but leave a byte over (its staged records are dropped) between them."""
    recs = [_lorry(k, ign=int(k // 4 % 2), door=int(k in (6, 7))) for k in range(18)]
    frames = [tc.encode_tcp_frame(recs[a:a + 3]) for a in range(0, 18, 3)]
    bad = bytearray(tc.encode_tcp_frame([_lorry(40, 1), _lorry(41, 0)]))
    bad[30] ^= 0xFF  # CRC mismatch: kept with keep_damaged, else one reject
    cut = tc.encode_tcp_frame([_lorry(50, 0), _lorry(51, 1)])[:-20]
    c16 = tc.encode_tcp_frame([_lorry(60, 1), _lorry(61, 0)], tc.CODEC_16)
    over = _with_crc(bytes([tc.CODEC_8E, 3]) + b"".join(tc.encode_record(_lorry(70 + k, 1))
                                                        for k in range(3)) + b"\x00\x03")
    path.write_bytes(tc.encode_login(IMEI) + b"".join(frames[:2]) + bytes(bad) + b"".join(frames[2:4])
                     + over + cut + c16 + over + b"".join(frames[4:]))


@pytest.mark.parametrize("keep_damaged", [False, True])
@pytest.mark.parametrize("flush", [1, 2, 5])
def test_chunked_columns_give_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              keep_damaged: bool, flush: int) -> None:
    """Records moved into numpy chunks every ``flush`` records (chunk edges inside and
    between frames, a damaged frame's records dropped after earlier chunks were made) give
    the tables of one chunk; an ignition or door change on a frame's first record is an edge
    from the last record of the frame before."""
    p = tmp_path / "lorry.bin"
    _mixed_capture(p)
    whole = _tables(p, keep_damaged=keep_damaged, door_input=2)
    monkeypatch.setattr(tc, "FLUSH_RECORDS", flush)
    _assert_same(_tables(p, keep_damaged=keep_damaged, door_input=2), whole)
    ev = whole["events"]
    edges = ev[ev["kind"].isin(["ignition_on", "ignition_off", "door_open", "door_close"])]
    first_of_frame = edges[edges["record"].str.endswith("/rec 0")]
    assert len(first_of_frame) >= 2
    assert first_of_frame["extra"].str.contains('"from_record":"offset ').all()
    assert whole["rejects"]["reason"].str.contains("1 bytes left over after 3 records").sum() == 2


def test_chunked_columns_realdata(realdata_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((realdata_dir / "teltonika").glob("*.hex"))
    whole = {f.name: _tables(f, keep_damaged=True) for f in files}
    monkeypatch.setattr(tc, "FLUSH_RECORDS", 1)
    for f in files:
        _assert_same(_tables(f, keep_damaged=True), whole[f.name])


def _uniform_capture(path: Path) -> None:
    """One lorry sending one IO layout in time order (the usual capture): ignition and door
    edges, a refuel and a fuel drop on the % series (the litres series beside it gives
    none), an odometer jump, a GSM signal changing on every record."""
    recs = []
    for k in range(40):
        ign = int(k // 5 % 2)
        fuel = 60 - k // 4 + (30 if k >= 20 else 0) - (25 if k >= 30 else 0)
        odo = 1000 * k + (600_000 if k >= 25 else 0)
        recs.append(tc.Record(
            t_ms=1_761_512_400_000 + 30_000 * k, lat=51.0 + 1e-4 * k, lon=3.87, sats=9,
            speed_kmh=40 * ign, event_io=239 if k % 5 == 0 else 0,
            io=(tc.IoValue(239, ign, 1), tc.IoValue(2, int(k in (6, 7)), 1),
                tc.IoValue(21, 3 + k % 2, 1), tc.IoValue(89, fuel, 1),
                tc.IoValue(84, 5000 - 30 * k, 2), tc.IoValue(16, odo, 4))))
    frames = [tc.encode_tcp_frame(recs[a:a + 5]) for a in range(0, 40, 5)]
    path.write_bytes(tc.encode_login(IMEI) + b"".join(frames))


def test_column_groups_give_the_events_of_one_sorted_group(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture whose IO rows are a matrix has its events computed one IO column at a
    time; the rows sorted into one group (the path of any other capture) give the same
    tables, rows in the same order. The ids are the ones LoadContext.finish would make."""
    p = tmp_path / "lorry.bin"
    _uniform_capture(p)
    found: list[object] = []
    real = te._matrix_columns

    def spy(*args: np.ndarray) -> tuple[int, np.ndarray] | None:
        found.append(real(*args))
        return real(*args)
    monkeypatch.setattr(te, "_matrix_columns", spy)
    by_column = _tables(p, door_input=2)
    assert found and found[0] is not None  # the column path was taken
    monkeypatch.setattr(te, "_matrix_columns", lambda *args: None)
    _assert_same(_tables(p, door_input=2), by_column)
    ev, fx = by_column["events"], by_column["fixes"]
    assert {"ignition_on", "ignition_off", "door_open", "door_close", "refuel", "fuel_drop",
            "odometer_jump", "gsm_signal"} <= set(ev["kind"])
    assert (ev.loc[ev["kind"].isin(["refuel", "fuel_drop"]), "unit"] == "%").all()
    # ids are derived from the provenance, not stored; each names one row
    assert "fix_id" not in fx.columns and "event_id" not in ev.columns
    assert schema.fix_ids(fx).is_unique and schema.event_ids(ev).is_unique


_orders = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 5), min_size=n, max_size=n),  # time (coarse: ties)
    st.lists(st.integers(0, 2), min_size=n, max_size=n),  # subject
    st.lists(st.integers(0, 1), min_size=n, max_size=n),  # profile
    st.lists(st.lists(st.sampled_from([1, 2, 16, 239]), max_size=4), min_size=n, max_size=n)))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(case=_orders, sort_time=st.booleans(), uniform=st.booleans(),
       pick=st.lists(st.booleans(), min_size=8, max_size=8))
def test_event_order_is_the_lexsort(case: tuple[list[int], list[int], list[int], list[list[int]]],
                                    sort_time: bool, uniform: bool, pick: list[bool]) -> None:
    """The event order of the selected IO rows (with its fast paths: records already in
    time order, one sort key, one IO layout of one subject read as a matrix) is
    ``lexsort((row, time, profile * 65536 + id, subject))`` of those rows (the IO rows
    sorted by record, then id, as the IO table)."""
    t, subj, prof, ids = case
    if sort_time:  # the usual capture: each subject's records in time order
        t = sorted(t)
    if uniform:  # one device sending one IO layout; selected: some of its columns
        subj, prof = [0] * len(t), [prof[0]] * len(t)
        ids = [sorted(set(ids[0]))] * len(t)
        sel = np.array([pick[j] for row in ids for j in range(len(row))], dtype=bool)
    ids = [sorted(row) for row in ids]
    rec = np.array([r for r, row in enumerate(ids) for _ in row], dtype=np.int32)
    iid = np.array([i for row in ids for i in row], dtype=np.int32)
    if not uniform:
        sel = np.array([pick[j % 8] for j in range(len(rec))], dtype=bool) | (len(t) % 2 == 0)
    t_ns, s, p = np.array(t, dtype=np.int64), np.array(subj, dtype=np.int32), np.array(prof)
    got = te._selected_order(sel, rec, iid, t_ns, s, p)
    rows = np.flatnonzero(sel)
    r = rec[rows]
    want = rows[np.lexsort((np.arange(len(rows)), t_ns[r], p[r] * 65536 + iid[rows], s[r]))]
    assert got.tolist() == want.tolist()
    mc = te._matrix_columns(sel, rec, iid, t_ns, s, p)
    if mc is not None:  # io_events' groups: the selected columns as strided views, in order
        k, cols = mc
        views = [np.arange(len(rec)).reshape(-1, k)[:, c] for c in cols.tolist()]
        assert [i for v in views for i in v.tolist()] == want.tolist()
    assert mc is not None or not (uniform and sort_time and len(t) == len(set(t)) and ids[0])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=st.lists(st.tuples(st.booleans(), st.sampled_from([0, 1, 2]),
                               st.one_of(st.integers(-5, 3000),
                                         st.integers(2**53 - 2, 2**53 + 2),
                                         st.integers(-2**63, -2**63 + 3))), min_size=1, max_size=30))
def test_value_changed_is_the_float_rule(rows: list[tuple[bool, int, int]]) -> None:
    """A value event where ``q`` changes, ``q`` = the raw value as float64, or for entries
    with a step ``floor(value / step)`` (the rule as first written, on full float columns);
    raw values beyond 2**53 included. Rows of one series (``same``) share the entry."""
    same = np.array([s for s, _, _ in rows])
    same[0] = False
    u = np.array([e for _, e, _ in rows])
    for i in range(1, len(u)):
        if same[i]:
            u[i] = u[i - 1]
    raw = np.array([r for _, _, r in rows], dtype=np.int64)
    val = raw.astype(np.float64) * 0.5
    step_u = np.array([np.nan, 1000.0, 10.0])
    step = step_u[u]
    q = raw.astype(np.float64)
    st_rows = ~np.isnan(step)
    q[st_rows] = np.floor(val[st_rows] / step[st_rows])
    want = ~same
    want[1:] |= q[1:] != q[:-1]
    assert te._value_changed(same, raw, val, u, step_u).tolist() == want.tolist()


@pytest.mark.parametrize("ios", [
    [(239, 1), (16, 4), (2, 1), (66, 2), (78, 8)],  # wire order is not id order
    [(239, 1), (16, 4), (239, 1), (16, 2), (1, 8)],  # one id twice, in one group and across
])
def test_uniform_io_columns_are_the_sorted_ones(ios: list[tuple[int, int]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of one IO layout: the column-by-column table equals the sorted one."""
    recs = [tc.Record(t_ms=1_761_512_400_000 + 1000 * k, lat=51.0, lon=3.87,
                      io=tuple(tc.IoValue(i, (k * 7 + j) % 200, w) for j, (i, w) in enumerate(ios)))
            for k in range(7)]
    buf = tc.encode_tcp_frame(recs[:4]) + tc.encode_tcp_frame(recs[4:])
    msgs = [(k, s, e, f"offset {s}") for k, s, e in tc.segment_binary(buf)]
    fast = tt.io_columns(tc.decode_messages(buf, msgs), 7)
    monkeypatch.setattr(tt, "_uniform_io", lambda d, n, counts: None)
    slow = tt.io_columns(tc.decode_messages(buf, msgs), 7)
    for name in ("rec", "iid", "raw", "w"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist(), name
        assert getattr(fast, name).dtype == getattr(slow, name).dtype, name
    assert fast.hexv is None and slow.hexv is None


@pytest.mark.parametrize("keep_damaged", [False, True])
def test_records_and_io_share_one_record_dictionary(tmp_path: Path, keep_damaged: bool) -> None:
    """The locators are held once: ``teltonika_records.record`` and ``teltonika_io.record``
    share one dictionary whose order is the records table's rows (an IO row's code is its
    record's row); the repetitive texts are dictionary-encoded, the header integers narrow;
    the values are those of the plain text and the protocol."""
    p = tmp_path / "mixed.bin"
    _mixed_capture(p)
    t = _tables(p, keep_damaged=keep_damaged)
    recs, io = t["teltonika_records"], t["teltonika_io"]
    assert recs["record"].cat.categories is io["record"].cat.categories
    assert recs["record"].cat.codes.tolist() == list(range(len(recs)))
    assert recs["record"].astype(str).is_unique and set(io["record"].astype(str)) <= set(recs["record"].astype(str))
    assert set(t["fixes"]["record"]) <= set(recs["record"].astype(str))
    for col in ("subject_id", "imei", "codec", "transport", "flags"):
        s = recs[col]
        assert isinstance(s.dtype, pd.CategoricalDtype), col
        assert s.cat.categories.is_monotonic_increasing and s.cat.categories.dtype == "string", col
    assert set(recs["codec"].astype(str)) == {"8E", "16"} and set(recs["transport"].astype(str)) == {"tcp"}
    assert recs["imei"].astype(str).eq(IMEI).all()
    assert recs["flags"].astype(str).eq("damaged_frame").sum() == (2 if keep_damaged else 0)
    assert {c: str(recs[c].dtype) for c in ("priority", "satellites", "event_io", "n_io", "generation",
                                             "udp_packet_id", "avl_packet_id")} == {
        "priority": "UInt8", "satellites": "UInt8", "event_io": "UInt16", "n_io": "UInt16",
        "generation": "UInt8", "udp_packet_id": "UInt16", "avl_packet_id": "UInt8"}
    assert recs["event_io"].astype(int).isin([0, 239]).all() and recs["n_io"].eq(4).all()


@pytest.mark.parametrize("keep_damaged", [False, True])
def test_build_gives_its_text_columns_in_dictionary_form(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          keep_damaged: bool) -> None:
    """The fixes and events reach ``LoadContext.finish`` with subject, fix kind, event kind,
    unit and flags already in the dictionary form ``schema.coerce`` gives (string
    categories in lexical order, none unused): no column of 1e6 texts is built and then
    hashed again. The values are those of the plain text."""
    seen: dict[str, pd.DataFrame] = {}
    complete = LoadContext._complete

    def spy(self: LoadContext, subj: str | None, **kw: Any) -> Any:
        seen.update(fixes=kw["fixes"], events=kw["events"])
        return complete(self, subj, **kw)
    monkeypatch.setattr(LoadContext, "_complete", spy)
    p = tmp_path / "mixed.bin"
    _mixed_capture(p)
    res = load(p, format="teltonika", options={"keep_damaged": keep_damaged, "door_input": 2})
    for kind, names in (("fixes", ("subject_id", "fix_kind", "flags")),
                        ("events", ("subject_id", "kind", "unit", "flags"))):
        given, out = seen[kind], getattr(res, kind)
        assert len(given) == len(out) > 0
        for c in names:
            s = given[c]
            assert isinstance(s.dtype, pd.CategoricalDtype), (kind, c, s.dtype)
            cats = s.cat.categories
            assert cats.dtype == "string" and cats.is_monotonic_increasing, (kind, c)
            assert set(cats) == set(s.dropna().astype(str)), (kind, c)  # none unused
            assert s.astype("string").tolist() == out[c].astype("string").tolist(), (kind, c)
    ev = res.events
    assert {"ignition_on", "door_open"} <= set(ev["kind"].astype(str))
    on = ev.loc[ev["kind"] == "ignition_on", "flags"].astype(str)
    assert on.str.split("|").map(lambda f: "derived" in f).all()
    assert (on == "damaged_frame|derived").any() == keep_damaged
