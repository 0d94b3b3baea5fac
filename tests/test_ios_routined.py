"""routined Cache.sqlite / Local.sqlite loader and fusion of two extractions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routetrace import schema
from routetrace.fuzzing import mutate
from routetrace.loaders import load
from routetrace.routes.merge import merge_places, merge_sources
from routetrace.samples.ios_db import cocoa, write_routined
from routetrace.testing import (
    assert_count_rule,
    assert_page_loss,
    damage_page,
    hash_tree,
    make_fixes,
    unread_keys,
)

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(scope="module")
def jads() -> dict[str, object]:
    folder = REALDATA / "ios" / "routined_jads"
    if not folder.exists():
        pytest.skip(f"real-data corpus not found at {folder} (../shared/realdata beside the project)")
    before = hash_tree(folder)
    res = {"new": load(folder / "Cache.sqlite"), "old": load(folder / "oud_Cache.sqlite")}
    assert hash_tree(folder) == before, "evidence changed while loading"
    return res


def test_real_cache_counts(jads: dict[str, object]) -> None:
    new = jads["new"]
    assert_count_rule(new)  # type: ignore[arg-type]
    fx = new.fixes  # type: ignore[attr-defined]
    assert (fx["fix_kind"] == "fused").sum() == 12848
    hints = fx[fx["fix_kind"] == "hint"]
    assert len(hints) == 522 and hints["flags"].eq("hint").all()
    visits = new.places  # type: ignore[attr-defined]
    assert (visits["kind"] == "visit").all()
    rows = visits["extra"].map(lambda e: json.loads(e)["rows"])
    assert rows.sum() == 365  # every ZRTVISITMO row accounted for, in exactly one visit
    pks = visits["record"].str.removeprefix("ZRTVISITMO/Z_PK=").str.split("+").explode()
    assert pks.nunique() == 365
    assert len(visits) < 365  # the confidence 0/1 versions were merged
    arrival_only = visits["extra"].map(lambda e: json.loads(e)["arrival_only"])
    assert visits.loc[arrival_only, "t_end"].isna().all()
    assert visits.loc[~arrival_only, "t_end"].notna().all()
    assert (visits["t_end"].dropna() >= visits.loc[visits["t_end"].notna(), "t_start"]).all()
    assert jads["old"].fixes["fix_kind"].eq("fused").sum() == 15184  # type: ignore[attr-defined]
    assert_count_rule(jads["old"])


def test_real_cache_sentinels_time_order_and_attributes(jads: dict[str, object]) -> None:
    fx = jads["new"].fixes  # type: ignore[attr-defined]
    cl = fx[fx["fix_kind"] == "fused"]
    assert cl["t_utc"].is_monotonic_increasing  # read in time order although Z_PK is not
    assert cl["course_deg"].isna().all()  # -1 in every row -> NA
    assert cl["speed_mps"].isna().mean() > 0.8 and (cl["speed_mps"].dropna() >= 0).all()
    assert cl["flags"].str.contains("sentinel_na").all()
    assert cl["h_acc_m"].between(1, 20000).all()
    types = {json.loads(e)["type"] for e in cl["extra"].iloc[:2000]}
    assert types <= {1, 4, 6, 7, 9} and types
    assert cl["t_utc"].min().floor("s") == pd.Timestamp("2023-09-21T20:06:05Z")
    assert cl["t_utc"].max().floor("min") == pd.Timestamp("2023-10-02T09:42Z")


def test_two_extractions_fuse(jads: dict[str, object]) -> None:
    fused = merge_sources(pd.concat([jads["new"].fixes, jads["old"].fixes],  # type: ignore[attr-defined]
                                    ignore_index=True))
    cl = fused[fused["fix_kind"] == "fused"]
    assert len(cl) == 21056
    shared = cl[cl["also_seen_in"].notna()]
    assert len(shared) == 6976
    assert shared["flags"].str.contains("duplicate_merged").all()
    new_id, old_id = jads["new"].source_id, jads["old"].source_id  # type: ignore[attr-defined]
    assert (shared["source_id"] == new_id).all()
    assert shared["also_seen_in"].str.startswith(old_id + ":ZRTCLLOCATIONMO/Z_PK=").all()
    # order of inputs decides the kept copy, never the set of records
    other = merge_sources(pd.concat([jads["old"].fixes, jads["new"].fixes],  # type: ignore[attr-defined]
                                    ignore_index=True))
    assert len(other) == len(fused) and schema.fix_ids(other).tolist() == schema.fix_ids(fused).tolist()


def test_damaged_cache_repeating_keys_in_a_scan(tmp_path: Path) -> None:
    """Fuzz input ios-routined:11332 (seed 20251024): one deleted byte and one flipped bit make
    the table scan of ZRTCLLOCATIONMO return 12,850 rows with 64 Z_PKs twice, while count(*)
    says 12,848. The rows are all read; the repeated keys' later copies are rejects."""
    seed = REALDATA / "ios" / "routined_jads" / "Cache.sqlite"
    if not seed.exists():
        pytest.skip(f"real-data corpus not found at {seed.parent} (../shared/realdata beside the project)")
    damaged = tmp_path / "Cache.sqlite"
    damaged.write_bytes(mutate(seed.read_bytes(), [("delete", 1009362770, 677206298),
                                                   ("flip", 557924656, 863108865)]))
    res = load(damaged, format="ios-routined")
    assert_count_rule(res)
    repeated = res.rejects[res.rejects["reason"].str.contains("repeated in the table scan")]
    assert len(repeated) == 64 and repeated["record"].is_unique
    assert repeated["record"].str.contains(r"^ZRTCLLOCATIONMO/Z_PK=\d+ \(scan row \d+\)$").all()
    scanned = res.rejects["record"].str.startswith("ZRTCLLOCATIONMO/").sum()
    assert (res.fixes["fix_kind"] == "fused").sum() + scanned == 12850  # every scanned row counted


def test_damaged_cache_repeating_keys_in_a_secondary_table(tmp_path: Path) -> None:
    """Fuzz input ios-routined:48845: a splice makes ZRTHINTMO's scan repeat Z_PKs (was: a
    'rejected twice' loader bug). The later copies are rejects naming their scan rows."""
    seed = REALDATA / "ios" / "routined_jads" / "oud_Cache.sqlite"
    if not seed.exists():
        pytest.skip(f"real-data corpus not found at {seed.parent} (../shared/realdata beside the project)")
    data = seed.read_bytes()
    damaged = tmp_path / "Cache.sqlite"
    damaged.write_bytes(mutate(data, [("splice", 983700771, 582813051)], other=data))
    res = load(damaged, format="ios-routined")
    assert_count_rule(res)
    repeated = res.rejects[res.rejects["reason"] == "Z_PK repeated in the table scan (damaged file)"]
    assert len(repeated) > 0 and repeated["record"].str.match(r"^ZRTHINTMO/Z_PK=\d+ \(scan row \d+\)$").all()


def test_damaged_page_costs_its_rows_not_the_file(tmp_path: Path) -> None:
    """A leaf page of ZRTCLLOCATIONMO overwritten: the rows before and after it are read, the
    unreadable key range is one reject naming it."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    n = 3000
    cl = pd.DataFrame({"Z_PK": np.arange(1, n + 1), "ZTIMESTAMP": cocoa([t0 + pd.Timedelta(seconds=10 * i)
                                                                        for i in range(n)]),
                       "ZLATITUDE": 51.0 + np.arange(n) * 1e-5, "ZLONGITUDE": 3.7,
                       "ZHORIZONTALACCURACY": 5.0})
    p = write_routined(tmp_path / "Cache.sqlite", {"ZRTCLLOCATIONMO": cl})
    damage_page(p)  # the location rows fill most of the file's pages
    assert_page_loss(load(p), table="ZRTCLLOCATIONMO", n=n)


def test_damaged_page_of_a_record_table_costs_its_rows(tmp_path: Path) -> None:
    """A page of ZRTHINTMO overwritten: the hints before and after it are fixes, the
    unreadable Z_PK ranges are named exactly (was: the whole hints table one reject)."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    n = 3000
    h = pd.DataFrame({"Z_PK": np.arange(1, n + 1), "ZSOURCE": 5,
                      "ZDATE": cocoa([t0 + pd.Timedelta(seconds=30 * i) for i in range(n)]),
                      "ZHORIZONTALUNCERTAINTY": 200.0, "ZLATITUDE": 51.0 + np.arange(n) * 1e-5,
                      "ZLONGITUDE": 3.7})
    p = write_routined(tmp_path / "Cache.sqlite", {"ZRTHINTMO": h})
    damage_page(p)
    assert_page_loss(load(p), table="ZRTHINTMO", n=n)


def test_a_blob_in_a_number_column_is_judged_row_by_row(tmp_path: Path) -> None:
    """Fuzz inputs ios-routined:61057 and 62409: a damaged row holds a blob where routined
    stores a number. It used to fail the whole file (numpy/pandas could not convert it to
    float); now the value is NaN and its row is judged on its own."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    ts = cocoa([t0, t0 + pd.Timedelta(minutes=1), t0 + pd.Timedelta(minutes=2)])
    cl = pd.DataFrame({"Z_PK": [1, 2, 3], "ZTIMESTAMP": ts, "ZLATITUDE": [51.0, b"\x01\t\x01", 51.2],
                       "ZLONGITUDE": 3.7, "ZALTITUDE": [10.0, 11.0, b""], "ZHORIZONTALACCURACY": 5.0})
    v = pd.DataFrame({"Z_PK": [10, 11], "ZTYPE": 3, "ZSOURCE": "7e:83:c2:84:1e:d7",  # fuzz 99152: all text
                      "ZENTRYDATE": [ts[0], b"\x00"],
                      "ZEXITDATE": ts[2], "ZLOCATIONLATITUDE": 51.0, "ZLOCATIONLONGITUDE": 3.7,
                      "ZLOCATIONUNCERTAINTY": [b"\x01\t", 30.0]})
    res = load(write_routined(tmp_path / "Cache.sqlite", {"ZRTCLLOCATIONMO": cl, "ZRTVISITMO": v}))
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["ZRTCLLOCATIONMO/Z_PK=1", "ZRTCLLOCATIONMO/Z_PK=3"]
    assert pd.isna(res.fixes["alt_m"].iloc[1]) and res.fixes["alt_m"].iloc[0] == 10.0
    assert dict(zip(res.rejects["record"], res.rejects["reason"], strict=True)) == {
        "ZRTCLLOCATIONMO/Z_PK=2": "latitude/longitude missing or out of range",
        "ZRTVISITMO/Z_PK=11": "ZENTRYDATE missing or not a plausible Cocoa time"}
    assert res.places["record"].tolist() == ["ZRTVISITMO/Z_PK=10"] and pd.isna(res.places["radius_m"].iloc[0])


def test_text_in_a_map_item_address_key_costs_only_that_address(tmp_path: Path) -> None:
    """Fuzz ios-routined:99152: a damaged ZRTMAPITEMMO row with text where the address key
    (an integer) belongs; int() of it failed the whole file. The place keeps its name."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    mi = pd.DataFrame({"Z_PK": [1], "ZIDENTIFIER": [b"\x01\x02"], "ZNAME": ["Depot"],
                       "ZADDRESS": ["7e:83:c2:84:1e:d7"]})
    lo = pd.DataFrame({"Z_PK": [1], "ZLOCATIONLATITUDE": [51.0], "ZLOCATIONLONGITUDE": [3.7],
                       "ZPLACEMAPITEMIDENTIFIER": [b"\x01\x02"], "ZPLACECREATIONDATE": cocoa([t0])})
    res = load(write_routined(tmp_path / "Cache.sqlite",
                              {"ZRTMAPITEMMO": mi, "ZRTLEARNEDLOCATIONOFINTERESTMO": lo}))
    assert_count_rule(res)
    assert res.places["name"].tolist() == ["Depot"] and res.places["address"].isna().all()


def test_damaged_page_of_the_map_items_costs_their_names_not_the_learned_places(tmp_path: Path) -> None:
    """A leaf page of ZRTMAPITEMMO (the names learned places point to) overwritten. It used to
    cost every learned place: the lookup was read whole, so the group was one reject. Now the
    unreadable map-item range is one reject, every learned place is kept, and exactly those
    that name a lost map item are without a name."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    n = 3000
    ids = [i.to_bytes(16, "big") for i in range(1, n + 1)]
    mi = pd.DataFrame({"Z_PK": np.arange(1, n + 1), "ZIDENTIFIER": ids,
                       "ZNAME": [f"Place {i}" for i in range(1, n + 1)], "ZADDRESS": None})
    lo = pd.DataFrame({"Z_PK": np.arange(1, n + 1), "ZLOCATIONLATITUDE": 51.0 + np.arange(n) * 1e-4,
                       "ZLOCATIONLONGITUDE": 3.7, "ZPLACEMAPITEMIDENTIFIER": ids,
                       "ZPLACECREATIONDATE": cocoa([t0] * n)})
    p = write_routined(tmp_path / "Local.sqlite", {"ZRTMAPITEMMO": mi, "ZRTLEARNEDLOCATIONOFINTERESTMO": lo})
    damage_page(p, table="ZRTMAPITEMMO")
    res = load(p)
    assert_count_rule(res)
    assert res.rejects["record"].str.startswith("ZRTMAPITEMMO/Z_PK ").all(), res.rejects["record"].tolist()
    assert res.rejects["reason"].str.endswith("kept without their name or address").all()
    lost = unread_keys(res.rejects["record"])
    assert 0 < len(lost) < 200
    learned = res.places[res.places["kind"] == "learned"]
    pk = learned["record"].str.removeprefix("ZRTLEARNEDLOCATIONOFINTERESTMO/Z_PK=").astype(int)
    assert sorted(pk) == list(range(1, n + 1))
    named = learned["name"].notna()
    assert set(pk[~named]) == lost
    assert (learned.loc[named, "name"] == "Place " + pk[named].astype(str)).all()


def _cache(tmp_path: Path) -> Path:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    ts = cocoa([t0 + pd.Timedelta(minutes=m) for m in (5, 0, 10)])
    cl = pd.DataFrame({
        "Z_PK": [1, 2, 3], "ZSIGNALENVIRONMENTTYPE": [1, 2, 0], "ZTYPE": [1, 4, 9],
        "ZALTITUDE": [10.0, 11.0, 12.0], "ZCOURSE": [-1.0, 90.0, -1.0],
        "ZHORIZONTALACCURACY": [5.0, 65.0, 1000.0], "ZLATITUDE": [-33.5, 51.0, 0.5],
        "ZLONGITUDE": [-70.6, 2.0, -0.5], "ZSPEED": [-1.0, 3.5, 0.0], "ZTIMESTAMP": ts,
        "ZVERTICALACCURACY": [3.0, 4.0, 5.0]})
    cl["ZTIMESTAMP"] = cl["ZTIMESTAMP"].astype(object)
    cl.loc[2, "ZTIMESTAMP"] = int(ts[2])  # INTEGER storage in the same column
    bad = pd.DataFrame({"Z_PK": [4], "ZTIMESTAMP": [123456789012345.0], "ZLATITUDE": [1.0],
                        "ZLONGITUDE": [1.0]})
    v = pd.DataFrame({
        "Z_PK": [10, 11, 12], "ZTYPE": [3, 3, 1], "ZSOURCE": [1, 1, 1], "ZCONFIDENCE": [0.0, 1.0, 0.0],
        "ZENTRYDATE": cocoa([t0, t0, t0 + pd.Timedelta("2h")]),
        "ZEXITDATE": [cocoa([t0 + pd.Timedelta("1h")])[0]] * 2 + [np.nan],
        "ZLOCATIONLATITUDE": [51.0, 51.0, 51.1], "ZLOCATIONLONGITUDE": [2.0, 2.0, 2.1],
        "ZLOCATIONUNCERTAINTY": [30.0, 30.0, 50.0]})
    h = pd.DataFrame({"Z_PK": [1], "ZSOURCE": [5], "ZDATE": cocoa([t0]),
                      "ZHORIZONTALUNCERTAINTY": [200.0], "ZLATITUDE": [51.0], "ZLONGITUDE": [2.0]})
    return write_routined(tmp_path / "Cache.sqlite", {
        "ZRTCLLOCATIONMO": pd.concat([cl, bad], ignore_index=True), "ZRTVISITMO": v, "ZRTHINTMO": h})


def test_generated_cache_quirks(tmp_path: Path) -> None:
    p = _cache(tmp_path)
    before = hash_tree(tmp_path)
    res = load(p)
    assert hash_tree(tmp_path) == before
    assert_count_rule(res)
    assert res.source["format"].iloc[0] == "ios-routined"
    cl = res.fixes[res.fixes["fix_kind"] == "fused"]
    assert cl["record"].tolist() == ["ZRTCLLOCATIONMO/Z_PK=2", "ZRTCLLOCATIONMO/Z_PK=1",
                                     "ZRTCLLOCATIONMO/Z_PK=3"]  # time order, not Z_PK
    first = cl.iloc[1]
    assert first["lat"] == -33.5 and first["lon"] == -70.6  # southern/western hemisphere kept
    assert np.isnan(first["speed_mps"]) and np.isnan(first["course_deg"])
    assert cl.iloc[0]["speed_mps"] == 3.5 and cl.iloc[0]["course_deg"] == 90.0
    assert cl.iloc[2]["speed_mps"] == 0.0  # 0 is a real speed, not a sentinel
    assert cl.iloc[0]["flags"] == "" and first["flags"] == "sentinel_na"
    assert json.loads(cl.iloc[0]["extra"]) == {"signal_env": 2, "type": 4}
    assert cl.iloc[2]["t_utc"] == pd.Timestamp("2025-10-24T10:10:00Z")  # INTEGER storage
    assert res.rejects["record"].tolist() == ["ZRTCLLOCATIONMO/Z_PK=4"]
    assert "123456789012345" in res.rejects["reason"].iloc[0]
    visits = res.places.sort_values("t_start")
    assert visits["record"].tolist() == ["ZRTVISITMO/Z_PK=10+11", "ZRTVISITMO/Z_PK=12"]
    assert visits["confidence"].tolist() == [1.0, 0.0]
    assert pd.isna(visits["t_end"].iloc[1])  # arrival only: open end
    assert res.records_read == 4 + 2 + 1  # locations + visits (merged groups) + hints


def test_local_sqlite_learned_places_and_vehicle(tmp_path: Path) -> None:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    ident = bytes(range(16))
    p = write_routined(tmp_path / "Local.sqlite", {
        "ZRTADDRESSMO": pd.DataFrame({"Z_PK": [1], "ZSUBTHOROUGHFARE": ["12"],
                                      "ZTHOROUGHFARE": ["Rue Haute"], "ZLOCALITY": ["Bruxelles"],
                                      "ZCOUNTRY": ["Belgium"]}),
        "ZRTMAPITEMMO": pd.DataFrame({"Z_PK": [1], "ZIDENTIFIER": [ident], "ZNAME": ["Hotel <b>"],
                                      "ZADDRESS": [1], "ZLATITUDE": [50.84], "ZLONGITUDE": [4.35]}),
        "ZRTLEARNEDLOCATIONOFINTERESTMO": pd.DataFrame({
            "Z_PK": [1], "ZLOCATIONLATITUDE": [50.84], "ZLOCATIONLONGITUDE": [4.35],
            "ZLOCATIONHORIZONTALUNCERTAINTY": [40.0], "ZPLACECREATIONDATE": cocoa([t0]),
            "ZPLACEMAPITEMIDENTIFIER": [ident], "ZCONFIDENCE": [0.9], "ZPLACETYPE": [0]}),
        "ZRTLEARNEDLOCATIONOFINTERESTVISITMO": pd.DataFrame({
            "Z_PK": [1, 2], "ZLOCATIONOFINTEREST": [1, 1],
            "ZENTRYDATE": cocoa([t0, t0 + pd.Timedelta("1D")]),
            "ZEXITDATE": [cocoa([t0 + pd.Timedelta("3h")])[0], np.nan],
            "ZLOCATIONLATITUDE": [50.84, 50.84], "ZLOCATIONLONGITUDE": [4.35, 4.35],
            "ZLOCATIONHORIZONTALUNCERTAINTY": [30.0, 30.0], "ZCONFIDENCE": [1.0, 1.0]}),
        "ZRTVEHICLEEVENTMO": pd.DataFrame({
            "Z_PK": [1], "ZDATE": cocoa([t0]), "ZLOCLATITUDE": [51.2], "ZLOCLONGITUDE": [3.2],
            "ZLOCUNCERTAINTY": [20.0], "ZUSERSETLOCATION": [0], "ZNOTES": ["near the exit"]}),
    })
    res = load(p)
    assert_count_rule(res)
    assert res.records_read == 4  # map items and addresses are lookups, not records
    loi = res.places[res.places["kind"] == "learned"].iloc[0]
    assert loi["name"] == "Hotel <b>" and loi["address"] == "12, Rue Haute, Bruxelles, Belgium"
    lv = res.places[res.places["kind"] == "learned_visit"].sort_values("t_start")
    assert lv["t_end"].isna().tolist() == [False, True]
    ev = res.events.iloc[0]
    assert (ev["kind"], ev["lat"], ev["lon"], ev["text"]) == ("parked_car", 51.2, 3.2, "near the exit")


def test_text_not_valid_utf8_is_read_with_replacement_and_stated(tmp_path: Path) -> None:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    p = write_routined(tmp_path / "Local.sqlite", {"ZRTVEHICLEEVENTMO": pd.DataFrame({
        "Z_PK": [1], "ZDATE": cocoa([t0]), "ZLOCLATITUDE": [51.2], "ZLOCLONGITUDE": [3.2],
        "ZLOCUNCERTAINTY": [20.0], "ZUSERSETLOCATION": [0], "ZNOTES": ["x"]})})
    con = sqlite3.connect(p)
    con.execute("UPDATE ZRTVEHICLEEVENTMO SET ZNOTES = CAST(X'6E656172FF65786974' AS TEXT)")  # 0xFF
    con.commit()
    con.close()
    before = hash_tree(tmp_path)
    res = load(p)  # sqlite3's default decoding would fail the whole file here
    assert hash_tree(tmp_path) == before
    assert_count_rule(res)
    assert res.events["text"].tolist() == ["near\ufffdexit"]
    assert "1 TEXT value(s) not valid UTF-8" in res.source["time_basis"].iloc[0]


def test_wal_rows_are_read(tmp_path: Path) -> None:
    p = _cache(tmp_path)
    con = sqlite3.connect(p)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("INSERT INTO ZRTCLLOCATIONMO (Z_PK, ZTIMESTAMP, ZLATITUDE, ZLONGITUDE) "
                "VALUES (99, 783000000.0, 50.0, 4.0)")
    con.commit()
    snap = tmp_path / "snap"
    snap.mkdir()
    for suffix in ("", "-wal"):
        (snap / f"Cache.sqlite{suffix}").write_bytes(Path(f"{p}{suffix}").read_bytes())
    con.close()
    (tmp_path / "nowal").mkdir()
    (tmp_path / "nowal" / "Cache.sqlite").write_bytes((snap / "Cache.sqlite").read_bytes())
    with_wal = load(snap / "Cache.sqlite")
    without = load(tmp_path / "nowal" / "Cache.sqlite")
    assert "ZRTCLLOCATIONMO/Z_PK=99" in set(with_wal.fixes["record"])
    assert "ZRTCLLOCATIONMO/Z_PK=99" not in set(without.fixes["record"])
    assert "-wal=" in str(with_wal.source["companions"].iloc[0])


def test_fusion_rule_on_generated_fixes() -> None:
    t = ["2025-10-24T10:00Z", "2025-10-24T10:05Z", "2025-10-24T10:10Z"]
    a = make_fixes(subject_id="phone-A", t_utc=t, lat=[-33.5, 51.0, 51.1], lon=[-70.6, 2.0, 2.1],
                   h_acc_m=[5.0, 65.0, np.nan], fix_kind="fused", source_id="a" * 64)
    b = a.copy()
    b["source_id"] = "b" * 64
    b.loc[1, "h_acc_m"] = 66.0  # same record, other content: two records
    c = a.assign(subject_id="phone-B", source_id="c" * 64)  # another subject: never merged
    fused = merge_sources(pd.concat([a, b, c], ignore_index=True))
    assert len(fused) == 3 + 1 + 3
    merged = fused[fused["flags"].str.contains("duplicate_merged")]
    assert sorted(merged["record"]) == ["0", "2"]  # NaN accuracy equal to NaN accuracy
    assert (merged["source_id"] == "a" * 64).all() and (merged["subject_id"] == "phone-A").all()
    assert set(merged["also_seen_in"]) == {"b" * 64 + ":0", "b" * 64 + ":2"}
    assert fused.loc[~fused.index.isin(merged.index), "also_seen_in"].isna().all()
    assert fused.groupby("subject_id")["t_utc"].apply(lambda t: t.is_monotonic_increasing).all()


def test_an_unreadable_table_is_one_reject_and_takes_back_its_partial_rejects() -> None:
    from routetrace.loaders.ios_routined import _table

    def read(con: object, rejects: list[tuple[str, str]]) -> None:
        rejects.append(("ZRTVISITMO/Z_PK=3", "bad time"))  # added before the damage is met
        raise sqlite3.DatabaseError("database disk image is malformed")

    rejects = [("ZRTCLLOCATIONMO/Z_PK=1", "kept")]
    assert _table(rejects, "ZRTVISITMO", read, None) is None  # type: ignore[arg-type]
    assert rejects[0] == ("ZRTCLLOCATIONMO/Z_PK=1", "kept") and len(rejects) == 2
    assert rejects[1][0] == "ZRTVISITMO" and "database disk image is malformed" in rejects[1][1]


def _visit_rows(path: Path) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return pd.read_sql("SELECT Z_PK, ZENTRYDATE, ZEXITDATE, ZCONFIDENCE FROM ZRTVISITMO", con)
    finally:
        con.close()


def _open_but_closed_later(places: pd.DataFrame, rows: pd.DataFrame) -> int:
    """Open visits (t_end NA) whose entry time has a row with an exit in ``rows``."""
    closed = set(cocoa_to_us(rows.loc[rows["ZEXITDATE"].notna(), "ZENTRYDATE"]))
    opened = places.loc[places["t_end"].isna(), "t_start"].dt.round("us")
    return int(opened.isin(closed).sum())


def cocoa_to_us(values: pd.Series) -> pd.Series:
    return (pd.Timestamp("2001-01-01T00:00:00Z") + pd.to_timedelta(values.astype(float), unit="s")).dt.round("us")


def test_real_visits_one_place_per_entry_date(jads: dict[str, object]) -> None:
    """Issue #19: ZRTVISITMO holds an arrival row (ZTYPE 1) and a later departure row (ZTYPE 3)
    per ZENTRYDATE, with the position estimate moved between them. Grouping on (type, entry,
    exit, lat, lon) made 291 places of Cache.sqlite's 126 visits (168 'still there' although a
    later row closes them) and 402 of oud_Cache.sqlite's 168."""
    folder = REALDATA / "ios" / "routined_jads"
    for name, key, n_visits, n_rows in (("Cache.sqlite", "new", 126, 365), ("oud_Cache.sqlite", "old", 168, 495)):
        res = jads[key]
        assert_count_rule(res)  # type: ignore[arg-type]
        visits = res.places  # type: ignore[attr-defined]
        assert len(visits) == n_visits and visits["t_start"].is_unique
        extra = visits["extra"].map(json.loads)
        assert extra.map(lambda e: e["rows"]).sum() == n_rows
        pks = visits["record"].str.removeprefix("ZRTVISITMO/Z_PK=").str.split("+").explode()
        assert pks.nunique() == n_rows
        rows = _visit_rows(folder / name)
        assert _open_but_closed_later(visits, rows) == 0
        # every visit's exit is the latest one its rows give (one visit in oud_Cache.sqlite
        # has two departure rows with different exits)
        last_exit = cocoa_to_us(rows.groupby("ZENTRYDATE")["ZEXITDATE"].max().dropna())
        closed = visits.dropna(subset=["t_end"])
        assert sorted(closed["t_end"].dt.round("us")) == sorted(last_exit)
        # confidence 0 is what routined states: exactly the visits with no ZCONFIDENCE 1.0 row
        conf1 = set(cocoa_to_us(rows.loc[rows["ZCONFIDENCE"] == 1.0, "ZENTRYDATE"]))
        assert ((visits["confidence"] == 1.0) == visits["t_start"].dt.round("us").isin(conf1)).all()
        assert extra.map(lambda e: e["detected_utc"] is not None and e["data_points"] is not None).all()
    assert (jads["new"].places["confidence"] == 0).sum() == 54  # type: ignore[attr-defined]


def test_real_two_extractions_in_one_case_give_207_visits(jads: dict[str, object], tmp_path: Path) -> None:
    """Both real caches ingested into ONE case (294 visit places, one per file's visit);
    fused, the case holds the 207 distinct visits (87 in both files), and no open visit is
    closed by a row of either file (the one open in the old file and closed in the new is
    kept closed)."""
    from routetrace.app.ingest import ingest
    from routetrace.case import open_case

    folder = REALDATA / "ios" / "routined_jads"
    rep = ingest(tmp_path / "case", [folder / "Cache.sqlite", folder / "oud_Cache.sqlite"], subject_id="phone")
    assert not rep.errors and rep.rows["places"] == 126 + 168
    places = open_case(tmp_path / "case").table("places")
    fused = merge_places(places)
    assert len(fused) == 207
    from routetrace.app.analysis import run_chronology

    run_chronology(tmp_path / "case")  # the case's own fusion, as the CLI's chronology does it
    merged = open_case(tmp_path / "case").table("places_merged")
    assert (merged["kind"] == "visit").sum() == 207 and len(merged) == len(fused)
    assert fused["also_seen_in"].notna().sum() == 87
    assert fused.loc[fused["also_seen_in"].notna(), "flags"].str.contains("duplicate_merged").all()
    rows = pd.concat([_visit_rows(folder / n) for n in ("Cache.sqlite", "oud_Cache.sqlite")])
    assert _open_but_closed_later(fused, rows) == 0
    assert merge_places(pd.concat([jads["old"].places, jads["new"].places],  # type: ignore[attr-defined]
                                  ignore_index=True))["t_start"].tolist() == \
        fused["t_start"].tolist()  # order of inputs never changes the set of visits


def _visit(pk: int, typ: int, conf: float, entry: pd.Timestamp, exit_: pd.Timestamp | None,
           detected: pd.Timestamp, lat: float, lon: float, unc: float = 30.0) -> dict[str, object]:
    return {"Z_PK": pk, "ZTYPE": typ, "ZSOURCE": 1, "ZCONFIDENCE": conf, "ZDATAPOINTCOUNT": 10 + pk,
            "ZDETECTIONDATE": cocoa([detected])[0], "ZENTRYDATE": cocoa([entry])[0],
            "ZEXITDATE": np.nan if exit_ is None else cocoa([exit_])[0],
            "ZLOCATIONLATITUDE": lat, "ZLOCATIONLONGITUDE": lon, "ZLOCATIONUNCERTAINTY": unc,
            "ZPLACEINFERENCECONFIDENCE": 0.9 if conf else np.nan}


def test_generated_arrival_and_departure_rows_are_one_visit(tmp_path: Path) -> None:
    """Arrival rows (type 1, no exit) and departure rows (type 3) of one ZENTRYDATE, with the
    position estimate moved ~50 m and a second departure row with a later exit: one visit,
    closed, with the latest row's exit and position, every Z_PK in its record."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    m = pd.Timedelta
    v = pd.DataFrame([
        _visit(5, 1, 0.0, t0, None, t0 + m("5min"), 51.0, 3.7, 80.0),
        _visit(6, 1, 1.0, t0, None, t0 + m("6min"), 51.0, 3.7, 80.0),
        _visit(7, 3, 0.0, t0, t0 + m("1h"), t0 + m("64min"), 51.0004, 3.7003, 40.0),
        _visit(9, 3, 1.0, t0, t0 + m("2h"), t0 + m("125min"), 51.0005, 3.7004, 35.0),
        _visit(8, 1, 0.0, t0 + m("3h"), None, t0 + m("184min"), 51.2, 3.9),  # still there
    ])
    res = load(write_routined(tmp_path / "Cache.sqlite", {"ZRTVISITMO": v}))
    assert_count_rule(res)
    assert res.records_read == 2  # one record per visit, its rows listed in it
    p = res.places.sort_values("t_start").reset_index(drop=True)
    assert p["record"].tolist() == ["ZRTVISITMO/Z_PK=5+6+7+9", "ZRTVISITMO/Z_PK=8"]
    first = p.iloc[0]
    assert first["t_end"] == t0 + m("2h")  # the latest departure row's exit
    assert (first["lat"], first["lon"], first["radius_m"]) == (51.0005, 3.7004, 35.0)
    assert first["confidence"] == 1.0
    e = json.loads(first["extra"])
    assert e["rows"] == 4 and e["types"] == [1, 3] and not e["arrival_only"] and e["data_points"] == 19
    assert e["detected_utc"] == "2025-10-24T12:05:00Z" and e["first_detected_utc"] == "2025-10-24T10:05:00Z"
    assert e["place_inference_confidence"] == 0.9
    assert pd.isna(p["t_end"].iloc[1]) and json.loads(p["extra"].iloc[1])["arrival_only"]


def test_generated_fusion_keeps_the_closed_copy_of_a_visit(tmp_path: Path) -> None:
    """An older extraction holds a visit open (arrival rows only); the newer one holds the same
    visit closed under other Z_PKs (one purged). Fused: one visit, closed, listing the other."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    m = pd.Timedelta
    arr = [_visit(5, 1, 0.0, t0, None, t0 + m("5min"), 51.0, 3.7), _visit(6, 1, 1.0, t0, None, t0 + m("6min"), 51.0, 3.7)]
    dep = [_visit(7, 3, 1.0, t0, t0 + m("1h"), t0 + m("64min"), 51.0004, 3.7003)]
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = load(write_routined(tmp_path / "old" / "Cache.sqlite", {"ZRTVISITMO": pd.DataFrame(arr)}))
    new = load(write_routined(tmp_path / "new" / "Cache.sqlite", {"ZRTVISITMO": pd.DataFrame(arr[1:] + dep)}))
    for order in ([old, new], [new, old]):
        fused = merge_places(pd.concat([r.places for r in order], ignore_index=True))
        assert len(fused) == 1
        kept = fused.iloc[0]
        assert kept["source_id"] == new.source_id and kept["t_end"] == t0 + m("1h")
        assert kept["record"] == "ZRTVISITMO/Z_PK=6+7"
        assert kept["also_seen_in"] == f"{old.source_id}:ZRTVISITMO/Z_PK=5+6"
        assert "duplicate_merged" in kept["flags"]


def _local_with_transitions(tmp_path: Path) -> tuple[Path, pd.Timestamp]:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    h = pd.Timedelta("1h")
    a, b = bytes(range(16)), bytes(range(1, 17))
    p = write_routined(tmp_path / "Local.sqlite", {
        "ZRTLEARNEDLOCATIONOFINTERESTMO": pd.DataFrame({
            "Z_PK": [1, 2], "ZLOCATIONLATITUDE": [50.84, 51.05], "ZLOCATIONLONGITUDE": [4.35, 3.72],
            "ZLOCATIONHORIZONTALUNCERTAINTY": [40.0, 60.0], "ZPLACECREATIONDATE": cocoa([t0, t0]),
            "ZPLACEEXPIRATIONDATE": cocoa([t0 + pd.Timedelta("28D"), t0 + pd.Timedelta("30D")]),
            "ZDATAPOINTCOUNT": [120, 7], "ZPLACETYPE": [1, 0]}),
        "ZRTLEARNEDLOCATIONOFINTERESTVISITMO": pd.DataFrame({
            "Z_PK": [1, 2], "ZLOCATIONOFINTEREST": [1, 2], "ZIDENTIFIER": [a, b],
            "ZENTRYDATE": cocoa([t0, t0 + 2 * h]), "ZEXITDATE": cocoa([t0 + h, t0 + 3 * h]),
            "ZEXPIRATIONDATE": cocoa([t0 + pd.Timedelta("28D")] * 2), "ZDATAPOINTCOUNT": [30, 12],
            "ZLOCATIONLATITUDE": [50.84, 51.05], "ZLOCATIONLONGITUDE": [4.35, 3.72],
            "ZLOCATIONHORIZONTALUNCERTAINTY": [30.0, 30.0], "ZCONFIDENCE": [1.0, 1.0]}),
        "ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO": pd.DataFrame({
            "Z_PK": [1, 2], "ZSTARTDATE": cocoa([t0 + h, t0 + 3 * h]),
            "ZSTOPDATE": [cocoa([t0 + 2 * h])[0], np.nan], "ZPREDOMINANTMOTIONACTIVITYTYPE": [4, 9],
            "ZVISITIDENTIFIERORIGIN": [a, b], "ZVISITIDENTIFIERDESTINATION": [b, None],
            "ZLOCATIONOFINTEREST": [2, 2]}),
        "ZRTVEHICLEEVENTMO": pd.DataFrame({
            "Z_PK": [1], "ZDATE": cocoa([t0 + 2 * h]), "ZLOCDATE": cocoa([t0 + 2 * h]),
            "ZLOCLATITUDE": [51.049], "ZLOCLONGITUDE": [3.721], "ZLOCUNCERTAINTY": [20.0],
            "ZUSERSETLOCATION": [0], "ZVEHICLEIDENTIFIER": ["AA:BB:CC:00:11:22"], "ZIDENTIFIER": ["EV-1"]}),
        "ZRTVEHICLEEVENTHISTORYMO": pd.DataFrame({
            "Z_PK": [1, 2, 3], "ZDATE": [*cocoa([t0 - pd.Timedelta("1D"), t0 - pd.Timedelta("2D")]), np.nan],
            "ZLOCLATITUDE": [51.0, np.nan, 51.0], "ZLOCLONGITUDE": [3.7, np.nan, 3.7],
            "ZLOCUNCERTAINTY": [15.0, np.nan, 15.0], "ZIDENTIFIER": ["EV-0", "EV-00", "EV-000"]}),
    })
    return p, t0


def test_learned_place_expiry_is_an_attribute_not_an_end_of_presence(tmp_path: Path) -> None:
    """A learned place's ZPLACEEXPIRATIONDATE is when routined will forget it, not 'present
    until'; it was stored as t_end. Now t_end is NA and the expiry is extra.expires_utc."""
    p, t0 = _local_with_transitions(tmp_path)
    res = load(p)
    assert_count_rule(res)
    loi = res.places[res.places["kind"] == "learned"].sort_values("record")
    assert loi["t_end"].isna().all()
    assert (loi["t_start"] == t0).all()
    e = [json.loads(x) for x in loi["extra"]]
    assert [x["expires_utc"] for x in e] == ["2025-11-21T10:00:00Z", "2025-11-23T10:00:00Z"]
    assert [x["data_points"] for x in e] == [120, 7]
    lv = res.places[res.places["kind"] == "learned_visit"].sort_values("t_start")
    assert lv["t_end"].tolist() == [t0 + pd.Timedelta("1h"), t0 + pd.Timedelta("3h")]  # an exit is an end
    assert json.loads(lv["extra"].iloc[0])["expires_utc"] == "2025-11-21T10:00:00Z"


def test_learned_transitions_become_events_with_motion_type(tmp_path: Path) -> None:
    """ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO (was not read): one event per transition, from
    ZSTARTDATE to ZSTOPDATE, at its origin visit, with the motion type and both visits named."""
    p, t0 = _local_with_transitions(tmp_path)
    res = load(p)
    assert_count_rule(res)
    tr = res.events[res.events["kind"] == "learned_transition"].sort_values("t_utc")
    assert tr["record"].tolist() == ["ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO/Z_PK=1",
                                     "ZRTLEARNEDLOCATIONOFINTERESTTRANSITIONMO/Z_PK=2"]
    assert tr["t_utc"].tolist() == [t0 + pd.Timedelta("1h"), t0 + pd.Timedelta("3h")]
    assert tr["t_end"].iloc[0] == t0 + pd.Timedelta("2h") and pd.isna(tr["t_end"].iloc[1])
    assert (tr["lat"].tolist(), tr["lon"].tolist()) == ([50.84, 51.05], [4.35, 3.72])  # origin visits
    first, second = (json.loads(e) for e in tr["extra"])
    assert first["motion_type"] == 4 and first["motion"] == "driving"
    assert first["origin"] == "ZRTLEARNEDLOCATIONOFINTERESTVISITMO/Z_PK=1"
    assert first["destination"] == "ZRTLEARNEDLOCATIONOFINTERESTVISITMO/Z_PK=2"
    assert second["motion_type"] == 9 and "motion" not in second and "destination" not in second


def test_vehicle_events_and_their_history(tmp_path: Path) -> None:
    """ZRTVEHICLEEVENTHISTORYMO (earlier parked-car positions) was not read and the vehicle's
    ZVEHICLEIDENTIFIER was dropped. History rows are parked_car events too; one without a
    position stays an event without a point, one without a date is a reject."""
    p, _t0 = _local_with_transitions(tmp_path)
    res = load(p)
    assert_count_rule(res)
    pc = res.events[res.events["kind"] == "parked_car"].sort_values("t_utc")
    assert pc["record"].tolist() == ["ZRTVEHICLEEVENTHISTORYMO/Z_PK=2", "ZRTVEHICLEEVENTHISTORYMO/Z_PK=1",
                                     "ZRTVEHICLEEVENTMO/Z_PK=1"]
    ex = [json.loads(e) for e in pc["extra"]]
    assert ex[2]["vehicle_id"] == "AA:BB:CC:00:11:22" and ex[2]["identifier"] == "EV-1" and "history" not in ex[2]
    assert ex[1]["history"] and ex[1]["identifier"] == "EV-0" and ex[1]["loc_uncertainty_m"] == 15.0
    assert pc["lat"].isna().tolist() == [True, False, False]
    assert dict(zip(res.rejects["record"], res.rejects["reason"], strict=True)) == {
        "ZRTVEHICLEEVENTHISTORYMO/Z_PK=3": "ZDATE missing or not a plausible Cocoa time"}


def _cloud(tmp_path: Path) -> tuple[Path, pd.Timestamp]:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    h = pd.Timedelta("1h")
    folder = tmp_path / "private/var/mobile/Library/Caches/com.apple.routined"
    folder.mkdir(parents=True)
    p = write_routined(folder / "Cloud-V2.sqlite", {
        "ZRTDEVICEMO": pd.DataFrame({"Z_PK": [1, 2], "ZDEVICECLASS": ["iPhone", "iPad"],
                                     "ZDEVICEMODEL": ["iPhone15,2", "iPad13,1"], "ZDEVICENAME": ["A's iPhone", "A's iPad"]}),
        "ZRTADDRESSMO": pd.DataFrame({"Z_PK": [1], "ZMAPITEM": [1], "ZTHOROUGHFARE": ["Rue Fictive"],
                                      "ZLOCALITY": ["Bruxelles"]}),
        "ZRTMAPITEMMO": pd.DataFrame({"Z_PK": [1], "ZNAME": ["Hotel Fictif"], "ZADDRESS": [1],
                                      "ZLATITUDE": [50.84], "ZLONGITUDE": [4.35], "ZUNCERTAINTY": [25.0]}),
        "ZRTLEARNEDPLACEMO": pd.DataFrame({"Z_PK": [1, 2], "ZMAPITEM": [1, np.nan], "ZTYPE": [0, 1],
                                           "ZDEVICE": [1, 1], "ZCUSTOMLABEL": [None, "Home"],
                                           "ZCREATIONDATE": cocoa([t0, t0]),
                                           "ZEXPIRATIONDATE": cocoa([t0 + pd.Timedelta("90D")] * 2)}),
        "ZRTLEARNEDVISITMO": pd.DataFrame({
            "Z_PK": [1, 2], "ZPLACE": [2, 1], "ZDEVICE": [2, 2], "ZOUTBOUND": [1, np.nan], "ZINBOUND": [np.nan, 1],
            "ZENTRYDATE": cocoa([t0, t0 + 2 * h]), "ZEXITDATE": cocoa([t0 + h, t0 + 3 * h]),
            "ZLOCATIONLATITUDE": [51.05, 50.84], "ZLOCATIONLONGITUDE": [3.72, 4.35],
            "ZLOCATIONUNCERTAINTY": [50.0, 40.0], "ZCONFIDENCE": [0.9, 1.0], "ZDATAPOINTCOUNT": [12, 40]}),
        "ZRTLEARNEDTRANSITIONMO": pd.DataFrame({
            "Z_PK": [1], "ZORIGIN": [1], "ZDESTINATION": [2], "ZDEVICE": [2], "ZPREDOMINANTMOTIONACTIVITYTYPE": [1],
            "ZSTARTDATE": cocoa([t0 + h]), "ZSTOPDATE": cocoa([t0 + 2 * h])}),
    }, cloud=True)
    return p, t0


def test_cloud_v2_is_recognised_and_loads_visits_places_and_transitions(tmp_path: Path) -> None:
    """Cloud-V2.sqlite (visits synced from the Apple ID's other devices) has none of the
    tables the sniffer looked for: discovery listed it as unreadable (UnknownFormat). It now
    sniffs as ios-routined: learned visits named after their learned place and carrying the
    device that recorded them, learned places at their map item, and transitions."""
    from routetrace.loaders.ios_discovery import discover_and_load

    p, t0 = _cloud(tmp_path)
    res = load(p)  # no --format: content sniffing
    assert res.source["format"].iloc[0] == "ios-routined"
    assert_count_rule(res)
    assert res.records_read == 2 + 2 + 1
    lv = res.places[res.places["kind"] == "learned_visit"].sort_values("t_start")
    assert lv["name"].tolist() == ["Home", "Hotel Fictif"]
    assert lv["address"].tolist()[1] == "Rue Fictive, Bruxelles"
    e = json.loads(lv["extra"].iloc[0])
    assert e["device_info"] == {"class": "iPad", "model": "iPad13,1", "name": "A's iPad"} and e["data_points"] == 12
    lp = res.places[res.places["kind"] == "learned"]
    assert lp["record"].tolist() == ["ZRTLEARNEDPLACEMO/Z_PK=1"]
    assert (lp["lat"].iloc[0], lp["lon"].iloc[0], lp["radius_m"].iloc[0]) == (50.84, 4.35, 25.0)
    assert lp["t_end"].isna().all() and json.loads(lp["extra"].iloc[0])["expires_utc"] == "2026-01-22T10:00:00Z"
    assert dict(zip(res.rejects["record"], res.rejects["reason"], strict=True)) == {
        "ZRTLEARNEDPLACEMO/Z_PK=2": "no position: its map item (ZMAPITEM) has no latitude/longitude"}
    tr = res.events.iloc[0]
    assert (tr["kind"], tr["t_utc"], tr["t_end"], tr["lat"]) == ("learned_transition", t0 + pd.Timedelta("1h"),
                                                                 t0 + pd.Timedelta("2h"), 51.05)
    assert json.loads(tr["extra"])["motion"] == "walking"
    assert json.loads(tr["extra"])["destination"] == "ZRTLEARNEDVISITMO/Z_PK=2"
    found = discover_and_load(tmp_path)
    row = found.report[found.report["artifact"] == "routined Cloud-V2.sqlite"].iloc[0]
    assert (row["status"], row["format"], row["n_places"], row["n_events"]) == ("loaded", "ios-routined", 3, 1)


def test_generated_arrival_row_detected_after_the_departure_does_not_reopen_the_visit(tmp_path: Path) -> None:
    """An arrival row rewritten (detected) after the departure row: the visit stays closed,
    with the departure row's exit and position (was: the latest row overall, open)."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    m = pd.Timedelta
    v = pd.DataFrame([_visit(7, 3, 1.0, t0, t0 + m("1h"), t0 + m("64min"), 51.0004, 3.7003, 40.0),
                      _visit(8, 1, 1.0, t0, None, t0 + m("70min"), 51.0, 3.7, 80.0)])
    res = load(write_routined(tmp_path / "Cache.sqlite", {"ZRTVISITMO": v}))
    assert_count_rule(res)
    p = res.places.iloc[0]
    assert p["record"] == "ZRTVISITMO/Z_PK=7+8" and p["t_end"] == t0 + m("1h")
    assert (p["lat"], p["radius_m"]) == (51.0004, 40.0)


def test_infinite_or_text_keys_in_learned_and_visit_rows_are_judged_row_by_row(tmp_path: Path) -> None:
    """Damaged rows holding 'inf' (pandas reads it as infinity) or text where routined stores
    an integer key or code: int() of infinity would fail the whole file; the value is
    treated as missing and each row is judged on its own."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    v = pd.DataFrame([{**_visit(5, 1, 1.0, t0, None, t0, 51.0, 3.7), "ZTYPE": "inf", "ZSOURCE": "1e999",
                       "ZDATAPOINTCOUNT": "inf"}])
    lv = pd.DataFrame({"Z_PK": [1], "ZPLACE": ["inf"], "ZDEVICE": ["x"], "ZENTRYDATE": cocoa([t0]),
                       "ZLOCATIONLATITUDE": [51.0], "ZLOCATIONLONGITUDE": [3.7]})
    tr = pd.DataFrame({"Z_PK": [1], "ZORIGIN": ["inf"], "ZDESTINATION": [1], "ZSTARTDATE": cocoa([t0]),
                       "ZPREDOMINANTMOTIONACTIVITYTYPE": ["inf"]})
    lp = pd.DataFrame({"Z_PK": [1], "ZMAPITEM": ["inf"], "ZCREATIONDATE": cocoa([t0])})
    res = load(write_routined(tmp_path / "Local.sqlite", {"ZRTVISITMO": v, "ZRTLEARNEDVISITMO": lv,
                                                           "ZRTLEARNEDTRANSITIONMO": tr, "ZRTLEARNEDPLACEMO": lp}))
    assert_count_rule(res)
    assert sorted(res.places["kind"]) == ["learned_visit", "visit"]
    assert json.loads(res.places.loc[res.places["kind"] == "visit", "extra"].iloc[0])["types"] == []
    ev = json.loads(res.events["extra"].iloc[0])
    assert "motion_type" not in ev and ev["destination"] == "ZRTLEARNEDVISITMO/Z_PK=1"
    assert res.rejects["record"].tolist() == ["ZRTLEARNEDPLACEMO/Z_PK=1"]
