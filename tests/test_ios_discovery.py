"""iOS extraction discovery and the phone-A sample extraction."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest

from routetrace.loaders import load_many
from routetrace.loaders.ios_discovery import discover, discover_and_load
from routetrace.samples import write_ios
from routetrace.samples.scenario import build_scenario
from routetrace.testing import assert_count_rule, hash_tree


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ios_sample")
    files = write_ios.write(build_scenario(seed=7), out)
    return out / files[0].path


def test_sample_is_deterministic(sample_zip: Path, tmp_path: Path) -> None:
    again = write_ios.write(build_scenario(seed=7), tmp_path)
    b = (tmp_path / again[0].path).read_bytes()
    assert hashlib.sha256(b).hexdigest() == hashlib.sha256(sample_zip.read_bytes()).hexdigest()
    names = zipfile.ZipFile(sample_zip).namelist()
    assert names == sorted(names)
    assert any(n.endswith("Media/PhotoData/Photos.sqlite-wal") for n in names)


def test_discover_zip_reports_every_artifact(sample_zip: Path) -> None:
    before = hash_tree(sample_zip)
    found = discover_and_load(sample_zip, subject_id="phone-A")
    assert hash_tree(sample_zip) == before
    rep = found.report.set_index("artifact")
    assert rep.loc["routined Cache.sqlite", "status"] == "loaded"
    assert rep.loc["routined Local.sqlite", "status"] == "loaded"
    assert rep.loc["Photos.sqlite", "format"] == "ios-photos"
    assert rep.loc["consolidated.db", "status"] == "not found"
    assert rep.loc["knowledgeC.db", "status"] == "not found"
    photos = found.report[found.report["artifact"] == "DCIM photo"]
    assert len(photos) == 2 and (photos["format"] == "exif").all()
    for res in found.results.values():
        assert_count_rule(res)
        assert (res.fixes["subject_id"] == "phone-A").all()
    # the safehouse photo is committed only in the WAL and is found
    ph = next(r for m, r in found.results.items() if m.endswith("Photos.sqlite"))
    assert "IMG_0412.JPG" in set(ph.events["text"])
    # the wrong camera clock is reported
    flags = {m.rsplit("/", 1)[-1]: r.fixes["flags"].iloc[0] for m, r in found.results.items()
             if m.endswith(".JPG")}
    assert "clock_offset" in flags["IMG_0398.JPG"] and "clock_offset" not in flags["IMG_0412.JPG"]


def test_discover_folder_and_tar_rooted_elsewhere(sample_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dump"
    with zipfile.ZipFile(sample_zip) as zf:
        for name in zf.namelist():
            dst = folder / "Extraction_2025" / name.removeprefix("filesystem1/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(zf.read(name))
    # an empty knowledgeC and an unreadable consolidated.db
    kc = folder / "Extraction_2025/private/var/mobile/Library/CoreDuet/Knowledge/knowledgeC.db"
    kc.parent.mkdir(parents=True)
    con = sqlite3.connect(kc)
    con.execute("CREATE TABLE ZOBJECT (Z_PK INTEGER PRIMARY KEY, ZSTREAMNAME VARCHAR, "
                "ZSTARTDATE TIMESTAMP, ZENDDATE TIMESTAMP, ZSTRUCTUREDMETADATA INTEGER, ZSOURCE INTEGER)")
    con.execute("CREATE TABLE ZSTRUCTUREDMETADATA (Z_PK INTEGER PRIMARY KEY, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LATITUDE FLOAT, "
                "Z_DKLOCATIONAPPLICATIONACTIVITYMETADATAKEY__LONGITUDE FLOAT)")
    con.execute("CREATE TABLE ZSOURCE (Z_PK INTEGER PRIMARY KEY, ZBUNDLEID VARCHAR)")
    con.commit()
    con.close()
    cons = folder / "Extraction_2025/private/var/root/Library/Caches/locationd/consolidated.db"
    cons.parent.mkdir(parents=True)
    cons.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    rep = discover(folder).set_index("artifact")
    assert rep.loc["routined Cache.sqlite", "status"] == "loaded"
    assert rep.loc["knowledgeC.db", "status"] == "empty"
    assert rep.loc["knowledgeC.db", "records_read"] == 0
    assert rep.loc["consolidated.db", "status"] == "unreadable"
    assert str(rep.loc["consolidated.db", "detail"])
    tar = tmp_path / "dump.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(folder / "Extraction_2025", arcname="Extraction_2025")
    rep_t = discover(tar).set_index("artifact")
    assert rep_t.loc["Photos.sqlite", "status"] == "loaded"


def test_load_many_finds_the_same_artifacts(sample_zip: Path) -> None:
    outcomes = list(load_many(sample_zip, subject_id="phone-A"))
    assert all(o.error is None for o in outcomes)
    formats = sorted(o.result.source["format"].iloc[0] for o in outcomes if o.result is not None)
    assert formats == ["exif", "exif", "ios-photos", "ios-routined", "ios-routined"]


def test_not_an_extraction(tmp_path: Path) -> None:
    from routetrace.errors import LoaderError

    p = tmp_path / "x.txt"
    p.write_bytes(io.BytesIO(b"hello").getvalue())
    with pytest.raises(LoaderError):
        discover(p)
    with pytest.raises(LoaderError):
        discover(tmp_path / "missing")
