"""Read-only evidence: private SQLite copies with WAL, safe archives."""

from __future__ import annotations

import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest

from routetrace.errors import CorruptSource
from routetrace.evidence import extract_archive, private_sqlite
from routetrace.loaders import load_many
from routetrace.testing import hash_tree


def _wal_db(folder: Path) -> Path:
    """A database whose last rows live only in its -wal (as on a seized phone)."""
    db = folder / "ev.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("CREATE TABLE t(x)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    con.commit()
    # copy the three files while the connection still holds the WAL un-checkpointed
    snap = folder / "seized"
    snap.mkdir()
    for sfx in ("", "-wal", "-shm"):
        src = Path(str(db) + sfx)
        if src.exists():
            (snap / ("ev.sqlite" + sfx)).write_bytes(src.read_bytes())
    con.close()
    return snap / "ev.sqlite"


def test_private_sqlite_reads_the_wal_and_leaves_inputs_untouched(tmp_path: Path) -> None:
    db = _wal_db(tmp_path)
    assert Path(str(db) + "-wal").stat().st_size > 0
    before = hash_tree(db.parent)
    with private_sqlite(db) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 10
        with pytest.raises(sqlite3.OperationalError):
            con.execute("INSERT INTO t VALUES (99)")
    assert hash_tree(db.parent) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["ev.sqlite", "ev.sqlite-shm", "ev.sqlite-wal"]


def test_private_sqlite_refuses_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    with pytest.raises(CorruptSource, match="bad.sqlite"):
        with private_sqlite(bad):
            pass


def test_private_sqlite_damaged_schema_with_bytes_not_utf8(tmp_path: Path) -> None:
    # SQLite's "malformed database schema" message quotes the damaged name: not UTF-8 here,
    # so Python cannot even decode the error; it is still a CorruptSource naming the file
    db = tmp_path / "schema.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t(a)")
    con.commit()
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_master SET name = CAST(X'74FF' AS TEXT), "
                "sql = CAST(X'435245415445205441424C452074FF2861' AS TEXT) WHERE name = 't'")
    con.commit()
    con.close()
    with pytest.raises(CorruptSource, match=r"schema.sqlite: .*damaged schema: SQLite's error message is not UTF-8"):
        with private_sqlite(db):
            pass


def test_zip_with_traversal_and_absolute_paths_is_refused_member_by_member(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    gpx = ('<gpx version="1.1"><trk><trkseg><trkpt lat="51" lon="3">'
           '<time>2025-10-24T20:00:00Z</time></trkpt></trkseg></trk></gpx>')
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../escape.gpx", gpx)
        zf.writestr("/abs/escape.gpx", gpx)
        zf.writestr("ok/track.gpx", gpx)
    dest = tmp_path / "out"
    dest.mkdir()
    report = extract_archive(z, dest)
    assert [m.name for m in report.members] == ["ok/track.gpx"]
    assert len(report.refused) == 2 and all("unsafe path" in why for _, why in report.refused)
    assert not (tmp_path / "escape.gpx").exists() and not Path("/abs/escape.gpx").exists()
    outcomes = list(load_many(z))
    good = [o for o in outcomes if o.result is not None]
    bad = [o for o in outcomes if o.error is not None]
    assert len(good) == 1 and len(good[0].result.fixes) == 1
    assert len(bad) == 2 and all("unsafe path" in str(o.error) for o in bad)


def test_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.json", b"\x00" * (20 << 20))
    report = extract_archive(z, tmp_path / "o")
    assert not report.members and "compression ratio" in report.refused[0][1]


def test_tar_symlink_is_refused(tmp_path: Path) -> None:
    t = tmp_path / "links.tar"
    with tarfile.open(t, "w") as tf:
        info = tarfile.TarInfo("passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    report = extract_archive(t, tmp_path / "o")
    assert not report.members and "link" in report.refused[0][1]


def test_folder_with_mixed_files_loads_the_good_ones(tmp_path: Path) -> None:
    (tmp_path / "a.gpx").write_text('<gpx version="1.1"><wpt lat="51" lon="3"><name>x</name></wpt></gpx>')
    (tmp_path / "b.bin").write_bytes(b"\x00\x01garbage")
    (tmp_path / "c.gpx").write_text('<gpx version="1.1"><wpt lat="51" lon="3">')
    outcomes = {Path(o.path).name: o for o in load_many(tmp_path)}
    assert outcomes["a.gpx"].result is not None
    assert "no loader recognises" in str(outcomes["b.bin"].error)
    assert "malformed XML" in str(outcomes["c.gpx"].error)
