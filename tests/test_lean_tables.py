"""Issue 21: the lean canonical representation (dictionary-encoded repetitive text, fix ids
derived from the provenance) holds the same values as the plain text did, costs a fraction
of it, and keeps its form through loaders, concatenation and the case store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.case import concat_tables, open_case
from routetrace.errors import SchemaError
from routetrace.loaders import load
from routetrace.routes.order import sort_fixes
from routetrace.testing import example_gpx, make_fixes

DICT_FIXES = ("subject_id", "fix_kind", "source_id", "flags", "also_seen_in")


def _is_dictionary(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) and s.cat.categories.dtype == "string" \
        and bool(s.cat.categories.is_monotonic_increasing)


def test_make_fixes_holds_provenance_once_not_on_every_row() -> None:
    n = 100_000
    f = make_fixes(subject_id="lorry", t_utc=pd.date_range("2025-10-26T21:00Z", periods=n, freq="s"),
                   lat=51.0, lon=3.87, source_id="ab" * 32)
    assert all(_is_dictionary(f[c]) for c in DICT_FIXES)
    # the 64-character source_id once plus a byte a row (it was ~72 bytes a row as text)
    assert f["source_id"].memory_usage(index=False, deep=True) < 2 * n
    # was ~220 bytes a row; 108 with a stored fix_id (18 bytes a row here), 90 without it
    assert f.memory_usage(index=False, deep=True).sum() < 95 * n
    assert "fix_id" not in f.columns
    assert (f["source_id"] == "ab" * 32).all() and (f["flags"] == "").all() and f["also_seen_in"].isna().all()
    assert f["subject_id"].astype("string").tolist()[:2] == ["lorry", "lorry"]
    schema.validate(f, "fixes")


def test_every_loaded_row_resolves_to_its_files_sha256_and_record(tmp_path: Path) -> None:
    path = example_gpx(tmp_path / "phone.gpx", [51.0, 51.001, 51.002])
    res = load(path, subject_id="phone-A")
    f = res.fixes
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(_is_dictionary(f[c]) for c in DICT_FIXES) and _is_dictionary(res.rejects["source_id"])
    assert (f["source_id"].astype(str) == sha).all()
    derived = f["source_id"].astype(str).str[:16] + ":" + f["record"].astype(str)
    assert "fix_id" not in f.columns  # derived, not stored
    assert schema.fix_ids(f).tolist() == derived.tolist()
    assert f["record"].is_unique and f["subject_id"].astype(str).eq("phone-A").all()


def test_concat_unions_the_categories_and_keeps_every_value() -> None:
    a = make_fixes(subject_id="phone", t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87, source_id="b" * 64)
    b = make_fixes(subject_id=["lorry", "ant"], t_utc=["2025-10-26T21:00Z"] * 2, lat=51.0, lon=3.87,
                   fix_kind=["cell", "gps"], source_id="a" * 64)
    t = concat_tables([a, b], "fixes")
    assert all(_is_dictionary(t[c]) for c in DICT_FIXES)
    assert t["subject_id"].astype(str).tolist() == ["phone", "lorry", "ant"]
    assert t["source_id"].astype(str).tolist() == ["b" * 64, "a" * 64, "a" * 64]
    assert t["fix_kind"].astype(str).tolist() == ["gps", "cell", "gps"]
    # sorting by a dictionary column sorts by its text
    assert t.sort_values("subject_id")["subject_id"].astype(str).tolist() == ["ant", "lorry", "phone"]


def test_the_case_store_writes_parquet_dictionaries_and_reads_back_the_same_form(tmp_path: Path) -> None:
    a = make_fixes(subject_id="phone", t_utc=["2025-10-26T21:00Z", "2025-10-26T21:01Z"], lat=51.0,
                   lon=3.87, source_id="b" * 64, flags=["", "hint"])
    b = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87, source_id="a" * 64)
    both = concat_tables([a, b], "fixes")
    case = open_case(tmp_path / "case", create=True)
    case.write_table("fixes", both)
    case.save_manifest()
    again = open_case(tmp_path / "case").table("fixes")
    assert all(_is_dictionary(again[c]) for c in DICT_FIXES)
    assert again["source_id"].astype(str).tolist() == ["a" * 64, "b" * 64, "b" * 64]
    assert again["flags"].astype(str).tolist() == ["", "", "hint"]
    import pyarrow.parquet as pq

    parts = sorted((tmp_path / "case" / "tables" / "fixes").rglob("*.parquet"))
    assert len(parts) == 2
    for p in parts:
        col = pq.read_table(p, columns=["source_id"]).column("source_id")
        assert str(col.type).startswith("dictionary<values=string")
        # a part's dictionary holds its own source only: its bytes do not depend on the others
        assert len(np.unique(col.combine_chunks().dictionary.to_numpy(zero_copy_only=False))) == 1


def test_absent_measurements_cost_nothing_and_can_still_be_set() -> None:
    n = 100_000
    f = make_fixes(t_utc=pd.date_range("2025-10-26T21:00Z", periods=n, freq="s"), lat=51.0, lon=3.87)
    g = schema.coerce(f, "fixes")
    for c in ("alt_m", "v_acc_m", "speed_mps", "course_deg"):
        assert f[c].isna().all() and str(f[c].dtype) == "float64"
        assert f[c].to_numpy().strides == (0,)  # one NaN shared by every row
    g.loc[g.index[:2], "speed_mps"] = 3.0  # copy-on-write: set on a copy, f untouched
    f2 = f.assign(alt_m=f["alt_m"].fillna(12.0))
    assert g["speed_mps"].head(3).tolist()[:2] == [3.0, 3.0] and np.isnan(g["speed_mps"].iloc[2])
    assert f["speed_mps"].isna().all() and (f2["alt_m"] == 12.0).all()


def test_coerce_keeps_float_and_time_columns_without_a_copy() -> None:
    """A float64 or UTC-nanosecond column already of its declared dtype is taken as it is
    (a 1e6-row fixes table's six measurements and its times were copied, ~56 MB, at every
    loader's finish); copy-on-write still keeps the input unchanged when the output is set."""
    f = make_fixes(t_utc=pd.date_range("2025-10-26T21:00Z", periods=1000, freq="s"),
                   lat=np.linspace(51.0, 51.1, 1000), lon=np.linspace(3.8, 3.9, 1000))
    g = schema.coerce(f, "fixes")
    for c in ("lat", "lon"):
        assert np.shares_memory(g[c].to_numpy(), f[c].to_numpy()), c
    assert np.shares_memory(g["t_utc"].array._ndarray, f["t_utc"].array._ndarray)
    g.loc[g.index[0], "lat"] = 0.0
    assert f["lat"].iloc[0] == 51.0 and g["lat"].iloc[0] == 0.0
    # another time unit or zone is still converted (to UTC nanoseconds)
    h = schema.coerce(f.assign(t_utc=f["t_utc"].dt.tz_convert("Europe/Brussels").dt.as_unit("us")), "fixes")
    assert str(h["t_utc"].dtype) == "datetime64[ns, UTC]" and h["t_utc"].equals(f["t_utc"])


def test_make_fixes_shares_the_callers_series_and_copies_its_arrays() -> None:
    """``make_fixes`` from a DataFrame's columns (as ``bench/stops.py`` builds it) holds their
    times and positions without a copy (~24 MB at 1e6 rows); copy-on-write keeps a later
    write on either side from reaching the other, and a numpy array is copied (numpy has no
    copy-on-write to protect it)."""
    src = pd.DataFrame({"t": pd.date_range("2025-10-26T21:00Z", periods=1000, freq="s", unit="ns"),
                        "lat": np.linspace(51.0, 51.1, 1000), "lon": np.linspace(3.8, 3.9, 1000)},
                       index=np.arange(1000) + 7)  # an index of its own: the table's is 0..n-1
    f = make_fixes(t_utc=src["t"], lat=src["lat"], lon=src["lon"])
    assert f.index.equals(pd.RangeIndex(1000))
    for c, s in (("lat", "lat"), ("lon", "lon")):
        assert np.shares_memory(f[c].to_numpy(), src[s].to_numpy()), c
    assert np.shares_memory(f["t_utc"].array._ndarray, src["t"].array._ndarray)
    src.loc[7, "lat"] = 0.0
    assert f["lat"].iloc[0] == 51.0
    f.loc[0, "lon"] = 0.0
    assert src.loc[7, "lon"] == 3.8 and f["lon"].iloc[0] == 0.0
    lat = np.linspace(51.0, 51.1, 1000)
    g = make_fixes(t_utc=src["t"], lat=lat, lon=3.8)
    lat[0] = 0.0
    assert g["lat"].iloc[0] == 51.0


def test_ids_are_derived_from_the_provenance_and_a_stored_one_is_dropped() -> None:
    f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z", "2025-10-26T21:01Z"], lat=51.0,
                   lon=3.87, source_id="ab" * 32)
    # a table that carries ids of its own (hand-built, or read from a case written before)
    stale = schema.coerce(f.assign(fix_id=["x", "y"]), "fixes")
    assert "fix_id" not in stale.columns
    assert schema.fix_ids(stale).tolist() == ["abababababababab:0", "abababababababab:1"]
    shown = schema.with_ids(stale, "fixes")
    assert shown.columns[0] == "fix_id" and shown.columns[1:].tolist() == stale.columns.tolist()
    # events: the kind is part of the id; a part (one of a record's several events of one kind) too
    ev = schema.coerce(pd.DataFrame({
        "subject_id": "phone", "t_utc": pd.to_datetime(["2025-10-26T21:00Z"] * 3), "kind": "activity",
        "source_id": "cd" * 32, "record": ["locations[4]", "locations[4]", "locations[5]"],
        "part": ["activity[0]", "activity[1]", None], "event_id": "stale"}), "events")
    assert schema.event_ids(ev).tolist() == [
        "cdcdcdcdcdcdcdcd:locations[4]/activity[0]:activity",
        "cdcdcdcdcdcdcdcd:locations[4]/activity[1]:activity", "cdcdcdcdcdcdcdcd:locations[5]:activity"]
    assert schema.with_ids(ev, "stops") is ev  # a table without a derived id: unchanged
    with pytest.raises(SchemaError, match="no derived id"):
        schema.row_ids(ev, "stops")
    with pytest.raises(SchemaError, match="missing record"):
        schema.fix_ids(f.drop(columns="record"))


def test_a_case_whose_fixes_were_stored_with_ids_reads_them_derived(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = make_fixes(subject_id="lorry", t_utc=["2025-10-26T21:00Z", "2025-10-26T21:01Z"], lat=51.0,
                   lon=3.87, source_id="ab" * 32)
    case = open_case(tmp_path / "case", create=True)
    case.write_table("fixes", f)
    case.save_manifest()
    (part,) = sorted((tmp_path / "case" / "tables" / "fixes").rglob("*.parquet"))
    old = pq.read_table(part)
    assert "fix_id" not in old.column_names  # the store holds no id
    # as an earlier version wrote it: the id stored first, and not as the provenance gives it
    pq.write_table(old.add_column(0, "fix_id", pa.array(["old:0", "old:1"])), part)
    again = open_case(tmp_path / "case")
    assert "fix_id" not in again.table("fixes").columns
    assert again.dask_table("fixes", columns=["fix_id", "t_utc"]).compute()["fix_id"].tolist() == [
        "abababababababab:0", "abababababababab:1"]


def test_sort_fixes_breaks_equal_times_by_the_derived_id_whatever_the_row_order() -> None:
    t = ["2025-10-26T21:00Z", "2025-10-26T21:00Z", "2025-10-26T20:59Z", "2025-10-26T21:00Z"]
    parts = [make_fixes(subject_id=s, t_utc=[tt], lat=51.0, lon=3.87, source_id=src * 64)
             for s, tt, src in zip(["b", "b", "b", "a"], t, ["d", "c", "e", "f"], strict=True)]
    f = pd.concat(parts)  # every index label is 0
    want = [("a", "f"), ("b", "e"), ("b", "c"), ("b", "d")]  # subject, time, then fix id
    for seed in range(4):
        got = sort_fixes(f.sample(frac=1.0, random_state=seed))
        assert len(got) == 4
        assert list(zip(got["subject_id"].astype(str), got["source_id"].astype(str).str[0],
                        strict=True)) == want
    # no equal times of one subject: the same order as the two-column stable sort
    g = pd.concat(parts[1:])
    pd.testing.assert_frame_equal(sort_fixes(g), g.sort_values(["subject_id", "t_utc"], kind="mergesort"))
