"""Photos.sqlite, consolidated.db and knowledgeC loaders (real samples + generated)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from routetrace.fuzzing import mutate
from routetrace.loaders import load
from routetrace.samples.ios_db import cocoa, write_photos
from routetrace.testing import (
    assert_count_rule,
    assert_page_loss,
    damage_page,
    hash_tree,
    unread_keys,
)


def _ios(realdata_dir: Path) -> Path:
    return realdata_dir / "ios"


def test_photos_10_15_7_generic_asset(realdata_dir: Path) -> None:
    folder = _ios(realdata_dir) / "photos_osxphotos_10.15.7"
    before = hash_tree(folder)
    res = load(folder / "Photos.sqlite")
    assert hash_tree(folder) == before
    assert_count_rule(res)
    assert res.source["format"].iloc[0] == "ios-photos"
    assert res.records_read == 29
    assert len(res.fixes) == 13 and (res.fixes["fix_kind"] == "photo").all()
    assert res.fixes["record"].str.startswith("ZGENERICASSET/Z_PK=").all()
    assert len(res.rejects) == 1 and "123456789012345" in res.rejects["reason"].iloc[0]
    assert len(res.events) == 28 and (res.events["kind"] == "photo").all()
    assert res.events["text"].notna().all()
    assert (res.fixes["lat"] != -180).all() and res.fixes["lat"].between(-90, 90).all()
    assert (res.fixes["lon"] < 0).any()  # western hemisphere kept (no > 0 filter)
    unlocated = res.events[res.events["lat"].isna()]
    assert unlocated["flags"].str.contains("sentinel_na").all()
    assert res.events["flags"].str.contains("trashed").sum() == 2
    tzd = res.events[res.events["flags"].str.contains("tz_disagreement")]
    assert len(tzd) >= 1
    for e in tzd["extra"]:
        x = json.loads(e)
        assert x["tz_offset_s"] != x["inferred_tz_offset_s"]
    assert "-wal=" in str(res.source["companions"].iloc[0])


def test_photos_wal_is_read(realdata_dir: Path, tmp_path: Path) -> None:
    folder = _ios(realdata_dir) / "photos_osxphotos_10.15.7"
    shutil.copyfile(folder / "Photos.sqlite", tmp_path / "Photos.sqlite")
    with_wal = load(folder / "Photos.sqlite")
    main_only = load(tmp_path / "Photos.sqlite")
    cols = ["record", "t_utc", "lat", "lon", "text", "flags", "extra"]
    assert not with_wal.events[cols].equals(main_only.events[cols])


def test_photos_26_1_asset(realdata_dir: Path) -> None:
    folder = _ios(realdata_dir) / "photos_osxphotos_26.1"
    before = hash_tree(folder)
    res = load(folder / "Photos.sqlite")
    assert hash_tree(folder) == before
    assert_count_rule(res)
    assert res.records_read == 16 and len(res.fixes) == 3
    assert res.fixes["record"].str.startswith("ZASSET/Z_PK=").all()
    assert res.rejects["reason"].str.contains("123456789012345").sum() == 1
    # ZGPSHORIZONTALACCURACY: -1 is "unknown" -> NA, real values kept
    assert res.fixes["h_acc_m"].notna().sum() >= 1 and (res.fixes["h_acc_m"].dropna() > 0).all()


def test_generated_photos_with_wal(tmp_path: Path) -> None:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    assets = pd.DataFrame({"Z_PK": [1, 2], "ZDATECREATED": [cocoa([t0])[0], int(cocoa([t0])[0])],
                           "ZLATITUDE": [-33.9, -180.0], "ZLONGITUDE": [-70.1, -180.0],
                           "ZFILENAME": ["IMG_1.HEIC", "IMG_2.HEIC"], "ZTRASHEDSTATE": [0, 1]})
    attrs = pd.DataFrame({"Z_PK": [1, 2], "ZASSET": [1, 2], "ZTIMEZONEOFFSET": [-10800, 3600],
                          "ZINFERREDTIMEZONEOFFSET": [-10800, 7200],
                          "ZGPSHORIZONTALACCURACY": [5.0, -1.0]})
    wal = pd.DataFrame({"Z_PK": [3], "ZDATECREATED": [1e15], "ZLATITUDE": [50.0],
                        "ZLONGITUDE": [4.0], "ZFILENAME": ["IMG_3.JPG"], "ZTRASHEDSTATE": [0]})
    files = write_photos(tmp_path / "Photos.sqlite", assets, attrs, wal, None)
    assert [f.name for f in files] == ["Photos.sqlite", "Photos.sqlite-wal"]
    res = load(tmp_path / "Photos.sqlite")
    assert_count_rule(res)
    assert res.records_read == 3  # the WAL-only asset is read
    assert res.rejects["record"].tolist() == ["ZASSET/Z_PK=3"]
    fx = res.fixes.iloc[0]
    assert (fx["lat"], fx["lon"], fx["h_acc_m"]) == (-33.9, -70.1, 5.0)
    e2 = res.events.set_index("record").loc["ZASSET/Z_PK=2"]
    assert e2["flags"] == "sentinel_na|trashed|tz_disagreement"
    assert res.events["t_utc"].tolist() == [t0, t0]  # REAL and INTEGER storage


def test_consolidated_harvest_and_caches(realdata_dir: Path) -> None:
    p = _ios(realdata_dir) / "consolidated_danielmihalcea_2011.db"
    before = hash_tree(p)
    res = load(p)
    assert hash_tree(p) == before
    assert_count_rule(res)
    assert res.source["format"].iloc[0] == "ios-consolidated"
    # harvest tables are the device's fixes: WifiLocationHarvest 53 + CellLocationHarvest 3
    assert len(res.fixes) == 56
    assert res.fixes["record"].str.contains("Harvest/").all()
    cache = res.extra_tables["cache_positions"]
    assert cache["flags"].str.contains("cache_not_device").all()
    assert set(cache["table"]) == {"WifiLocation", "CellLocation", "CellLocationLocal"}
    assert len(cache) == 18590 + 1074 + 34 - 209
    zero = res.rejects[res.rejects["reason"].str.contains("placeholder")]
    assert len(zero) == 209 == len(res.rejects)
    assert not set(cache["record"]) & set(res.fixes["record"])
    assert res.fixes["h_acc_m"].dropna().gt(0).all() and res.fixes["speed_mps"].dropna().ge(0).all()


def test_knowledgec_empty_is_a_fact(realdata_dir: Path) -> None:
    p = _ios(realdata_dir) / "knowledgeC_plaso_macos10.14.db"
    before = hash_tree(p)
    res = load(p)
    assert hash_tree(p) == before
    assert_count_rule(res)
    assert res.source["format"].iloc[0] == "ios-knowledgec"
    assert res.records_read == 0 and len(res.places) == 0 and len(res.rejects) == 0
    assert int(res.source["records_read"].iloc[0]) == 0


def test_knowledgec_location_rows(realdata_dir: Path, tmp_path: Path) -> None:
    import sqlite3

    p = tmp_path / "knowledgeC.db"
    shutil.copyfile(_ios(realdata_dir) / "knowledgeC_plaso_macos10.14.db", p)
    con = sqlite3.connect(p)
    con.execute("INSERT INTO ZSTRUCTUREDMETADATA (Z_PK, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LATITUDE, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LONGITUDE, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__DISPLAYNAME) "
                "VALUES (9001, -22.9, -43.2, 'Praia'), (9002, 0.0, 0.0, 'nowhere')")
    con.execute("INSERT INTO ZOBJECT (Z_PK, ZSTREAMNAME, ZSTARTDATE, ZENDDATE, ZSTRUCTUREDMETADATA) "
                "VALUES (8001, '/app/activity', 600000000, 600000060, 9001), "
                "(8002, '/app/activity', 600000000, 600000060, 9002)")
    con.commit()
    con.close()
    res = load(p)
    assert_count_rule(res)
    assert res.records_read == 2
    pl = res.places.iloc[0]
    assert (pl["kind"], pl["lat"], pl["lon"], pl["name"]) == ("app_location", -22.9, -43.2, "Praia")
    assert pl["t_start"] == pd.Timestamp("2020-01-06T10:40:00Z")  # 600000000 + 978307200 s
    assert res.rejects["record"].tolist() == ["ZOBJECT/Z_PK=8002"]


@pytest.mark.parametrize("name", ["Photos.sqlite", "Cache.sqlite"])
def test_sniffers_do_not_collide(tmp_path: Path, name: str) -> None:
    from routetrace.loaders import detect_format
    from routetrace.samples.ios_db import write_routined

    if name == "Photos.sqlite":
        write_photos(tmp_path / name, pd.DataFrame({"Z_PK": [1]}), pd.DataFrame({"Z_PK": [1]}))
        assert detect_format(tmp_path / name).name == "ios-photos"
    else:
        write_routined(tmp_path / name, {})
        assert detect_format(tmp_path / name).name == "ios-routined"


def test_consolidated_rowid_repeated_by_a_damaged_scan(realdata_dir: Path, tmp_path: Path) -> None:
    """Fuzz input ios-consolidated:38538 (one flipped bit): the scan of WifiLocation returns a
    rowid twice. Its later copy is a reject naming the scan row (was: a broken count rule)."""
    data = (_ios(realdata_dir) / "consolidated_danielmihalcea_2011.db").read_bytes()
    p = tmp_path / "consolidated.db"
    p.write_bytes(mutate(data, [("flip", 34650785, 451496082)]))
    res = load(p, format="ios-consolidated")
    assert_count_rule(res)
    rep = res.rejects[res.rejects["reason"].str.startswith("rowid repeated in the table scan")]
    assert len(rep) == 1 and rep["record"].str.match(r"^WifiLocation/rowid=\d+ \(scan row \d+\)$").all()
    assert len(res.fixes) == 56


def test_two_attribute_rows_for_one_asset(tmp_path: Path) -> None:
    """Two ZADDITIONALASSETATTRIBUTES rows for one asset (or a damaged b-tree repeating a Z_PK,
    fuzz input ios-photos:53616) give the asset twice: the first is used, the copy is a reject."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    assets = pd.DataFrame({"Z_PK": [1, 2], "ZDATECREATED": cocoa([t0, t0]), "ZLATITUDE": [50.1, 50.2],
                           "ZLONGITUDE": [4.1, 4.2], "ZFILENAME": ["IMG_1.HEIC", "IMG_2.HEIC"],
                           "ZTRASHEDSTATE": [0, 0]})
    attrs = pd.DataFrame({"Z_PK": [1, 2, 3], "ZASSET": [1, 1, 2], "ZTIMEZONEOFFSET": [3600, 7200, 3600]})
    write_photos(tmp_path / "Photos.sqlite", assets, attrs)
    res = load(tmp_path / "Photos.sqlite")
    assert_count_rule(res)
    assert res.fixes["record"].tolist() == ["ZASSET/Z_PK=1", "ZASSET/Z_PK=2"]
    assert res.rejects["record"].tolist() == ["ZASSET/Z_PK=1 (row 1)"]
    assert res.rejects["reason"].iloc[0].startswith("Z_PK repeated in the query")


def test_consolidated_damaged_page_costs_its_rows_not_the_file(tmp_path: Path) -> None:
    """A leaf page of LocationHarvest overwritten: the rows before and after it are fixes, and
    the rowids it held are named exactly by the rejects (was: the whole database refused)."""
    p = tmp_path / "consolidated.db"
    n = 3000
    t0 = pd.Timestamp("2011-04-20T10:00:00Z")
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE TableInfo (TableName TEXT, Version INTEGER)")
    con.execute("CREATE TABLE WifiLocation (MAC TEXT, Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT)")
    con.execute("CREATE TABLE CellLocation (MCC INTEGER, Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT)")
    con.execute("CREATE TABLE LocationHarvest (Timestamp FLOAT, Latitude FLOAT, Longitude FLOAT, "
                "HorizontalAccuracy FLOAT, Speed FLOAT, Course FLOAT)")
    ts = cocoa([t0 + pd.Timedelta(seconds=10 * i) for i in range(n)])
    con.executemany("INSERT INTO LocationHarvest VALUES (?, ?, ?, ?, ?, ?)",
                    [(float(ts[i]), 51.0 + i * 1e-5, 3.7, 5.0, 1.0, 90.0) for i in range(n)])
    con.commit()
    con.close()
    damage_page(p)
    before = hash_tree(tmp_path)
    res = load(p)
    assert hash_tree(tmp_path) == before
    assert_page_loss(res, table="LocationHarvest", key="rowid", n=n)


@pytest.mark.parametrize("at", [0.25, 0.9])
def test_photos_damaged_page_costs_its_rows_not_the_file(tmp_path: Path, at: float) -> None:
    """One page overwritten, in the asset table (0.25 of the file) or in the attribute table
    (0.9): assets whose rows are unreadable are named by one reject per Z_PK range; assets
    whose attribute rows are unreadable are still loaded (was: the whole library refused)."""
    n = 3000
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    pks = list(range(1, n + 1))
    assets = pd.DataFrame({"Z_PK": pks, "ZDATECREATED": cocoa([t0 + pd.Timedelta(minutes=i) for i in range(n)]),
                           "ZLATITUDE": [50.0 + i * 1e-4 for i in range(n)], "ZLONGITUDE": 4.1,
                           "ZFILENAME": [f"IMG_{i:04d}.HEIC" for i in pks], "ZTRASHEDSTATE": 0})
    attrs = pd.DataFrame({"Z_PK": pks, "ZASSET": pks, "ZTIMEZONEOFFSET": 3600,
                          "ZORIGINALFILENAME": [f"original_{i:04d}.HEIC" for i in pks]})
    p = write_photos(tmp_path / "Photos.sqlite", assets, attrs)[0]
    damage_page(p, at=at)
    res = load(p)
    if at < 0.5:
        assert_page_loss(res, table="ZASSET", n=n)
    else:
        assert_count_rule(res)
        faults = res.rejects[res.rejects["reason"].str.startswith("rows unreadable")]
        loaded = set(res.fixes["record"].str.removeprefix("ZASSET/Z_PK=").astype(int))
        assert faults["record"].str.match(r"^ZADDITIONALASSETATTRIBUTES/Z_PK \d+").all()
        assert faults["reason"].str.contains("loaded without their time-zone").all()
        assert loaded == set(pks)  # every asset, some without attributes
        extra = res.fixes.set_index(res.fixes["record"].str.removeprefix("ZASSET/Z_PK=").astype(int))["extra"]
        bare = {k for k, v in extra.items() if json.loads(v).get("original_filename") is None}
        assert bare == unread_keys(faults["record"])  # the attribute rows lost (Z_PK = ZASSET here)


@pytest.mark.parametrize("at", [0.2, 0.75])
def test_knowledgec_damaged_page_costs_its_rows_not_the_file(tmp_path: Path, at: float) -> None:
    """One page overwritten, of ZOBJECT (0.2 of the file) or of the ZSTRUCTUREDMETADATA rows
    the objects join to (0.75): the objects that cannot be read are named by one reject per
    Z_PK range, the rest are places (was: the whole database refused)."""
    n = 3000
    p = tmp_path / "knowledgeC.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE ZOBJECT (Z_PK INTEGER PRIMARY KEY, ZSTREAMNAME VARCHAR, ZSTARTDATE TIMESTAMP, "
                "ZENDDATE TIMESTAMP, ZSTRUCTUREDMETADATA INTEGER, ZSOURCE INTEGER)")
    con.execute("CREATE TABLE ZSTRUCTUREDMETADATA (Z_PK INTEGER PRIMARY KEY, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LATITUDE FLOAT, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LONGITUDE FLOAT, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__DISPLAYNAME VARCHAR)")
    con.execute("CREATE TABLE ZSOURCE (Z_PK INTEGER PRIMARY KEY, ZBUNDLEID VARCHAR)")
    con.executemany("INSERT INTO ZOBJECT VALUES (?, '/app/locationActivity', ?, ?, ?, NULL)",
                    [(i, 600000000.0 + 60 * i, 600000030.0 + 60 * i, i) for i in range(1, n + 1)])
    con.executemany("INSERT INTO ZSTRUCTUREDMETADATA VALUES (?, ?, 4.35, ?)",
                    [(i, 50.8 + i * 1e-4, f"place {i:04d}") for i in range(1, n + 1)])
    con.commit()
    con.close()
    damage_page(p, at=at)
    assert_page_loss(load(p), table="ZOBJECT", n=n, rows="places")


def test_photos_blob_in_a_number_attribute_is_kept_as_text(tmp_path: Path) -> None:
    """A damaged row with a blob in ZKIND / ZTIMEZONEOFFSET: the asset is loaded and the value
    is kept in ``extra`` as hex (a bare float() on it failed the whole library)."""
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    assets = pd.DataFrame({"Z_PK": [1, 2], "ZDATECREATED": cocoa([t0, t0]), "ZLATITUDE": [50.1, 50.2],
                           "ZLONGITUDE": [4.1, 4.2], "ZKIND": [0, b"\x01\t"], "ZTRASHEDSTATE": 0})
    attrs = pd.DataFrame({"Z_PK": [1, 2], "ZASSET": [1, 2], "ZTIMEZONEOFFSET": [b"\xff", 3600]})
    write_photos(tmp_path / "Photos.sqlite", assets, attrs)
    res = load(tmp_path / "Photos.sqlite")
    assert_count_rule(res)
    extra = [json.loads(x) for x in res.fixes["extra"]]
    assert (extra[0]["kind"], extra[0]["tz_offset_s"]) == (0, "ff")
    assert (extra[1]["kind"], extra[1]["tz_offset_s"]) == ("0109", 3600)
