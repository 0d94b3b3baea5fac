"""Hostile containers and inputs (issue 10, item 2): each is a clear refusal, never a traceback.

Zip bombs by absolute size, nested zips, tar members with absolute paths, ``..`` and hard
links, XML entity expansion (billion laughs, external entities) for every XML loader,
SQLite files with corrupt pages or malicious schemas (a view named like an expected
table, triggers, CHECK/DEFAULT expressions: opened read-only, nothing fires, the input
stays byte-identical), and extremely long strings. In a folder ingest the other files
still load and every refused file is listed in quality.csv.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from routetrace.app.ingest import ingest
from routetrace.errors import CorruptSource, LoaderBug, RoutetraceError, UnsafeArchive
from routetrace.evidence import ArchiveLimits, extract_archive, private_sqlite
from routetrace.loaders import REGISTRY, load, load_many
from routetrace.testing import assert_count_rule, hash_tree

GPX_OK = ('<?xml version="1.0"?>\n<gpx version="1.1" creator="t" '
          'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
          '<trkpt lat="51.0" lon="3.8"><time>2025-10-24T20:00:00Z</time></trkpt>'
          '<trkpt lat="51.001" lon="3.8"><time>2025-10-24T20:01:00Z</time></trkpt>'
          '</trkseg></trk></gpx>\n')

BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
                  + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                            for i in range(1, 10))
                  + ']>\n')
XXE = ('<?xml version="1.0"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n')

XML_BODIES = {
    "gpx": ('<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
            '<wpt lat="51" lon="3"><time>2025-10-24T20:00:00Z</time><name>{ent}</name></wpt></gpx>\n'),
    "kml": ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>{ent}</name>'
            '<TimeStamp><when>2025-10-24T20:00:00Z</when></TimeStamp>'
            '<Point><coordinates>3,51</coordinates></Point></Placemark></Document></kml>\n'),
}
XML_FORMATS = sorted(f for f in XML_BODIES if f in REGISTRY)


def _outcome(path: Path, **kw: object) -> tuple[str, str]:
    """("ok", ...) with the count rule checked, or ("error", message); anything else raises
    (a LoaderBug, a loader breaking its own count rule, too)."""
    try:
        res = load(path, **kw)  # type: ignore[arg-type]
    except LoaderBug:
        raise
    except RoutetraceError as exc:
        return "error", exc.one_line()
    assert_count_rule(res)
    return "ok", f"{len(res.fixes)} fixes, {len(res.places)} places, {len(res.rejects)} rejects"


# --- archives ---------------------------------------------------------------------------

def test_zip_over_the_absolute_total_limit_is_refused_as_a_whole(tmp_path: Path) -> None:
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(4):
            zf.writestr(f"part{i}.gpx", GPX_OK + " " * 30_000)
    lim = ArchiveLimits(max_total_bytes=100_000, max_member_bytes=1 << 20, max_ratio=1e9)
    with pytest.raises(UnsafeArchive, match="exceeds the limit of 100000"):
        extract_archive(z, tmp_path / "o", limits=lim)


def test_zip_member_over_the_absolute_member_limit_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "member.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("huge.gpx", GPX_OK + " " * 50_000)
        zf.writestr("small.gpx", GPX_OK)
    rep = extract_archive(z, tmp_path / "o", limits=ArchiveLimits(max_member_bytes=10_000))
    assert [m.name for m in rep.members] == ["small.gpx"]
    assert rep.refused[0][0] == "huge.gpx" and "member limit of 10000" in rep.refused[0][1]
    assert not (tmp_path / "o" / "huge.gpx").exists()


def test_zip_member_that_lies_about_its_size_is_cut_and_refused(tmp_path: Path) -> None:
    """A header that declares fewer bytes than the data inflates to (a stealth bomb)."""
    z = tmp_path / "liar.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("liar.gpx", GPX_OK)
    raw = bytearray(z.read_bytes())
    declared = len(GPX_OK.encode())
    # shrink the declared uncompressed size in the central directory only
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24: cd + 28] = (declared // 2).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    try:
        rep = extract_archive(z, tmp_path / "o")
    except CorruptSource:
        return  # zipfile noticed the mismatch itself: a clear refusal too
    assert not rep.members
    assert rep.refused and ("larger than its header" in rep.refused[0][1] or "Bad" in rep.refused[0][1])


def test_nested_zip_is_not_expanded_without_limits_and_the_rest_loads(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("deep.json", b"\x00" * (8 << 20))  # a bomb one level down
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("inner.zip", inner.getvalue())
        zf.writestr("ok/track.gpx", GPX_OK)
    before = hash_tree(tmp_path)
    outcomes = {o.path.split("!")[-1]: o for o in load_many(outer)}
    assert hash_tree(tmp_path) == before
    assert outcomes["ok/track.gpx"].result is not None
    assert len(outcomes["ok/track.gpx"].result.fixes) == 2
    nested = outcomes["inner.zip"]
    assert nested.result is None and isinstance(nested.error, RoutetraceError)
    assert "inner.zip" in nested.error.one_line()


def test_damaged_zip_member_is_refused_and_the_others_extract(tmp_path: Path) -> None:
    z = tmp_path / "damaged.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/first.gpx", GPX_OK * 20)
        zf.writestr("b/second.gpx", GPX_OK.replace("20:0", "22:0"))
    raw = bytearray(z.read_bytes())
    # point the first member's central-directory entry at a local header offset far beyond
    # the file (a seek that fails), as a truncated or spliced zip does
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 42: cd + 46] = (0x7FFFFFF0).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    rep = extract_archive(z, tmp_path / "o")
    assert [m.name for m in rep.members] == ["b/second.gpx"]
    assert rep.refused and rep.refused[0][0] == "a/first.gpx"
    outcomes = list(load_many(z))
    good = [o for o in outcomes if o.result is not None]
    assert len(good) == 1 and len(good[0].result.fixes) == 2
    assert any(o.error is not None and "first.gpx" in o.path for o in outcomes)


def test_zip_member_with_an_empty_name_is_refused_and_the_others_extract(tmp_path: Path) -> None:
    """Fuzz archive:81659: a damaged central directory gave a member an empty name, and
    zipfile's own ZipInfo.is_dir() raised IndexError on it, out of load_many."""
    z = tmp_path / "noname.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x.gpx", GPX_OK)  # its name is blanked below
        zf.writestr("b/second.gpx", GPX_OK.replace("20:0", "22:0"))
    raw = bytearray(z.read_bytes())
    cd = raw.find(b"PK\x01\x02")  # first central-directory entry: name length at +28
    raw[cd + 28: cd + 30] = (0).to_bytes(2, "little")
    raw[cd + 46: cd + 46 + len("x.gpx")] = b""  # drop the name bytes the length no longer counts
    raw[-6 - 4: -6] = (int.from_bytes(raw[-6 - 4: -6], "little") - 5).to_bytes(4, "little")  # CD size
    z.write_bytes(bytes(raw))
    rep = extract_archive(z, tmp_path / "o")
    assert [m.name for m in rep.members] == ["b/second.gpx"]
    assert rep.refused == [("member #1 (no name)",
                            "a member with an empty name (damaged directory entry): not extracted")]
    good = [o for o in load_many(z) if o.result is not None]
    assert len(good) == 1 and len(good[0].result.fixes) == 2


def _tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]], path: Path) -> Path:
    with tarfile.open(path, "w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def test_tar_absolute_and_dotdot_members_are_refused(tmp_path: Path) -> None:
    data = GPX_OK.encode()
    t = _tar_with([(tarfile.TarInfo("/tmp/routetrace-abs-escape.gpx"), data),
                   (tarfile.TarInfo("../../routetrace-dotdot-escape.gpx"), data),
                   (tarfile.TarInfo("a/../../routetrace-mid-escape.gpx"), data),
                   (tarfile.TarInfo("good/track.gpx"), data)], tmp_path / "evil.tar")
    dest = tmp_path / "x" / "y" / "o"
    dest.mkdir(parents=True)
    rep = extract_archive(t, dest)
    assert [m.name for m in rep.members] == ["good/track.gpx"]
    assert len(rep.refused) == 3 and all("unsafe path" in why for _, why in rep.refused)
    assert not Path("/tmp/routetrace-abs-escape.gpx").exists()
    assert not list(tmp_path.rglob("routetrace-*-escape.gpx"))
    outcomes = list(load_many(t))
    assert sum(o.result is not None for o in outcomes) == 1
    assert sum(isinstance(o.error, UnsafeArchive) for o in outcomes) == 3


def test_tar_hardlink_and_device_members_are_refused(tmp_path: Path) -> None:
    hard = tarfile.TarInfo("passwd-hard")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "/etc/passwd"
    dev = tarfile.TarInfo("null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    fifo = tarfile.TarInfo("fifo")
    fifo.type = tarfile.FIFOTYPE
    t = _tar_with([(hard, None), (dev, None), (fifo, None),
                   (tarfile.TarInfo("t.gpx"), GPX_OK.encode())], tmp_path / "links.tar")
    rep = extract_archive(t, tmp_path / "o")
    assert [m.name for m in rep.members] == ["t.gpx"]
    assert sorted(n for n, _ in rep.refused) == ["fifo", "null", "passwd-hard"]
    assert all("not a regular file" in why for _, why in rep.refused)
    assert sorted(p.name for p in (tmp_path / "o").rglob("*")) == ["t.gpx"]


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "sym.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("passwd")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    rep = extract_archive(z, tmp_path / "o")
    assert not rep.members and "link" in rep.refused[0][1]


# --- XML entity expansion -----------------------------------------------------------------

@pytest.mark.parametrize("fmt", XML_FORMATS)
@pytest.mark.parametrize("attack", ["billion_laughs", "external_entity"])
def test_xml_entity_expansion_is_refused(fmt: str, attack: str, tmp_path: Path) -> None:
    head, ent = (BILLION_LAUGHS, "&lol9;") if attack == "billion_laughs" else (XXE, "&xxe;")
    p = tmp_path / f"attack.{fmt}"
    p.write_text(head + XML_BODIES[fmt].format(ent=ent), encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(RoutetraceError) as info:
        load(p, format=fmt)
    assert time.perf_counter() - t0 < 5
    msg = info.value.one_line()
    assert "attack." in msg and "root:" not in msg and "lollol" not in msg
    # sniffed as well (the sniffer must not expand entities either)
    with pytest.raises(RoutetraceError):
        load(p)


# --- SQLite: corrupt pages, malicious schemas ----------------------------------------------

def _db(path: Path, n: int = 2000) -> Path:
    con = sqlite3.connect(path)
    con.execute("PRAGMA page_size=1024")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, lat REAL, lon REAL, note TEXT)")
    con.executemany("INSERT INTO t VALUES (?,?,?,?)",
                    [(i, 51 + i * 1e-5, 3.8, "x" * 40) for i in range(n)])
    con.execute("CREATE INDEX t_lat ON t(lat)")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("damage", ["truncate_half", "zero_page_2", "garbage_last_pages",
                                    "bad_header_page_count"])
def test_sqlite_with_corrupt_pages_is_a_clear_error(damage: str, tmp_path: Path) -> None:
    db = _db(tmp_path / "ev.sqlite")
    raw = bytearray(db.read_bytes())
    page = 1024
    if damage == "truncate_half":
        raw = raw[: len(raw) // 2]
    elif damage == "zero_page_2":
        raw[page: 2 * page] = b"\x00" * page
    elif damage == "garbage_last_pages":
        raw[-3 * page:] = bytes((i * 37) % 251 for i in range(3 * page))
    else:
        raw[28:32] = (10 ** 6).to_bytes(4, "big")
        raw[page: page + 8] = b"\xff" * 8
    db.write_bytes(bytes(raw))
    before = hash_tree(tmp_path)
    try:
        with private_sqlite(db) as con:
            con.execute("SELECT count(*), sum(lat) FROM t").fetchall()
            con.execute("PRAGMA integrity_check").fetchall()
    except CorruptSource as exc:
        assert "ev.sqlite" in exc.one_line()
    except sqlite3.DatabaseError as exc:
        # a read through the connection meets the damage: the loaders' boundary wraps it
        assert "malformed" in str(exc) or "corrupt" in str(exc) or "not a database" in str(exc)
    assert hash_tree(tmp_path) == before


def test_corrupt_real_sqlite_through_the_loader(realdata_dir: Path, tmp_path: Path) -> None:
    src = realdata_dir / "ios" / "routined_jads" / "Cache.sqlite"
    raw = bytearray(src.read_bytes())
    page = int.from_bytes(raw[16:18], "big") or 65536
    cases = {
        "truncated.sqlite": bytes(raw[: len(raw) * 2 // 3]),
        "zeroed.sqlite": bytes(raw[:page * 3]) + b"\x00" * (page * 8) + bytes(raw[page * 11:]),
        "scrambled.sqlite": bytes(raw[:page]) + bytes(b ^ 0x5A for b in raw[page: page * 40])
        + bytes(raw[page * 40:]),
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        before = hash_tree(p)
        status, detail = _outcome(p, format="ios-routined") if "ios-routined" in REGISTRY \
            else _outcome(p)
        assert status in ("ok", "error"), detail
        assert hash_tree(p) == before


def _malicious(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE real_t(id INTEGER PRIMARY KEY, lat REAL, lon REAL);
        INSERT INTO real_t VALUES (1, 51.0, 3.8), (2, 51.1, 3.9);
        CREATE TABLE audit(msg TEXT);
        CREATE TRIGGER t_ins AFTER INSERT ON real_t BEGIN INSERT INTO audit VALUES ('fired'); END;
        CREATE TRIGGER t_del BEFORE DELETE ON real_t BEGIN DELETE FROM audit; END;
        CREATE TABLE checked(x INTEGER CHECK (abs(x) >= 0), y TEXT DEFAULT (hex(randomblob(8))));
        INSERT INTO checked(x) VALUES (1);
        CREATE VIEW ZRTCLLOCATIONMO AS
            WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
            SELECT x AS Z_PK, x AS ZTIMESTAMP, 51.0 AS ZLATITUDE, 3.8 AS ZLONGITUDE FROM c;
        CREATE VIEW ZRTVISITMO AS SELECT * FROM real_t;
    """)
    con.commit()
    con.close()
    return path


def test_malicious_schema_is_read_only_and_nothing_fires(tmp_path: Path) -> None:
    db = _malicious(tmp_path / "evil.sqlite")
    before = hash_tree(tmp_path)
    with private_sqlite(db) as con:
        assert con.execute("SELECT count(*) FROM real_t").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
        for stmt in ("INSERT INTO real_t VALUES (3, 0, 0)", "DELETE FROM real_t",
                     "UPDATE checked SET x = 2", "DROP VIEW ZRTCLLOCATIONMO"):
            with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
                con.execute(stmt)
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
        views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='view'")}
        assert views == {"ZRTCLLOCATIONMO", "ZRTVISITMO"}
    assert hash_tree(tmp_path) == before
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert check.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    check.close()


def test_views_named_like_routined_tables_are_not_read(tmp_path: Path) -> None:
    """An infinite recursive VIEW named ZRTCLLOCATIONMO must neither be loaded nor hang."""
    db = _malicious(tmp_path / "evil.sqlite")
    before = hash_tree(tmp_path)
    t0 = time.perf_counter()
    status, detail = _outcome(db)  # sniffed: views are not tables, so no loader claims it
    assert status == "error", detail
    if "ios-routined" in REGISTRY:
        status, detail = _outcome(db, format="ios-routined")
        if status == "ok":
            assert detail.startswith("0 fixes, 0 places")
    assert time.perf_counter() - t0 < 10
    assert hash_tree(tmp_path) == before


def test_routined_copy_with_trigger_and_view_stays_byte_identical(realdata_dir: Path,
                                                                  tmp_path: Path) -> None:
    if "ios-routined" not in REGISTRY:
        pytest.skip("ios-routined loader not registered")
    db = tmp_path / "Cache.sqlite"
    shutil.copyfile(realdata_dir / "ios" / "routined_jads" / "Cache.sqlite", db)
    db.chmod(0o644)
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE audit(msg TEXT);
        CREATE TRIGGER evil_i AFTER INSERT ON ZRTCLLOCATIONMO BEGIN INSERT INTO audit VALUES('i'); END;
        CREATE TRIGGER evil_d BEFORE DELETE ON ZRTCLLOCATIONMO BEGIN DELETE FROM ZRTVISITMO; END;
        CREATE TRIGGER evil_u AFTER UPDATE ON ZRTVISITMO BEGIN INSERT INTO audit VALUES('u'); END;
        DROP TABLE IF EXISTS ZRTHINTMO;
        CREATE VIEW ZRTHINTMO AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
            SELECT x AS Z_PK FROM c;
    """)
    con.commit()
    con.close()
    plain = load(realdata_dir / "ios" / "routined_jads" / "Cache.sqlite", format="ios-routined")
    before = hash_tree(tmp_path)
    res = load(db, format="ios-routined")
    assert_count_rule(res)
    assert hash_tree(tmp_path) == before
    assert len(res.fixes[res.fixes["fix_kind"] != "hint"]) == \
        len(plain.fixes[plain.fixes["fix_kind"] != "hint"])
    assert len(res.places) == len(plain.places)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    con.close()


# --- extremely long strings ----------------------------------------------------------------

def test_20mb_gpx_name_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "longname.gpx"
    p.write_text(GPX_OK.replace("<trk>", "<trk><name>" + "A" * (20 << 20) + "</name>"),
                 encoding="utf-8")
    t0 = time.perf_counter()
    status, detail = _outcome(p)
    assert time.perf_counter() - t0 < 30
    assert status in ("ok", "error"), detail
    if status == "ok":
        assert detail.startswith("2 fixes")


def test_5mb_csv_field_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "longfield.csv"
    p.write_text("time,lat,lon,name\n2025-10-24T20:00:00Z,51.0,3.8,ok\n"
                 f"2025-10-24T20:01:00Z,51.001,3.8,{'B' * (5 << 20)}\n"
                 "2025-10-24T20:02:00Z,51.002,3.8,ok\n", encoding="utf-8")
    status, detail = _outcome(p)
    assert status in ("ok", "error"), detail
    if status == "ok":
        assert detail.startswith(("3 fixes", "2 fixes"))


def test_1mb_json_string_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "Records.json"
    p.write_text(json.dumps({"locations": [
        {"latitudeE7": 510000000, "longitudeE7": 38000000, "timestamp": "2025-10-24T20:00:00Z",
         "source": "C" * (1 << 20)},
        {"latitudeE7": 510010000, "longitudeE7": 38000000, "timestamp": "D" * (1 << 20)},
        {"latitudeE7": 510020000, "longitudeE7": 38000000, "timestamp": "2025-10-24T20:02:00Z"},
    ]}), encoding="utf-8")
    status, detail = _outcome(p)
    assert status in ("ok", "error"), detail
    if status == "ok":
        assert "2 rejects" in detail  # the 1 MiB source string is cut (limit 64 KiB), and the bad time


# --- a folder ingest continues past every hostile file -------------------------------------

def test_ingest_of_a_hostile_folder_continues_and_reports(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    (ev / "good.gpx").write_text(GPX_OK, encoding="utf-8")
    (ev / "laughs.gpx").write_text(BILLION_LAUGHS + XML_BODIES["gpx"].format(ent="&lol9;"),
                                   encoding="utf-8")
    (ev / "xxe.gpx").write_text(XXE + XML_BODIES["gpx"].format(ent="&xxe;"), encoding="utf-8")
    raw = bytearray(_db(tmp_path / "tmp.sqlite").read_bytes())
    (ev / "truncated.sqlite").write_bytes(bytes(raw[: len(raw) // 3]))
    _malicious(ev / "evil.sqlite")
    with zipfile.ZipFile(ev / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.json", b"\x00" * (20 << 20))
        zf.writestr("inner/good2.gpx", GPX_OK.replace("20:0", "21:0"))
    _tar_with([(tarfile.TarInfo("../escape.gpx"), GPX_OK.encode())], ev / "escape.tar")
    (ev / "garbage.gpx").write_bytes(b"<gpx" + bytes(range(256)) * 10)
    before = hash_tree(ev)
    rep = ingest(tmp_path / "case", [ev], case_id="hostile")
    assert hash_tree(ev) == before
    assert sorted(Path(p.split("!")[-1]).name for p in rep.added) == ["good.gpx", "good2.gpx"]
    q = pd.read_csv(tmp_path / "case" / "quality.csv", dtype=str, keep_default_na=False)
    files = q[q["level"] == "file"]
    names = " ".join(files["path"])
    for bad in ("laughs.gpx", "xxe.gpx", "truncated.sqlite", "evil.sqlite", "bomb.json",
                "escape.gpx", "garbage.gpx"):
        assert bad in names, f"{bad} missing from quality.csv"
    assert (files["reason"].str.len() > 0).all()
    assert not files["reason"].str.contains("Traceback").any()
    assert rep.rows["fixes"] == 4
