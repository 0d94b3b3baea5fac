"""Nothing lost at the edges (#20): archives, folders, SQLite companions, resources.

Each case drives the CLI the way the defect was found and reads what an analyst reads:
the exit status, ``quality.csv`` and ``case.json``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from routetrace import evidence
from routetrace.case import open_case
from routetrace.cli import main
from routetrace.samples.ios_db import cocoa, write_photos
from routetrace.testing import hash_tree


def _gpx(lat: float = 51.0, n: int = 1, minute: int = 0) -> str:
    pts = "".join(f'<trkpt lat="{lat + i * 1e-4:.4f}" lon="3"><time>2025-10-24T20:{minute:02d}:{i:02d}Z'
                  "</time></trkpt>" for i in range(n))
    return f'<gpx version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>'


def _kml(name: str = "pin", lat: float = 51.0) -> str:
    return ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>'
            f"<name>{name}</name><Point><coordinates>3,{lat}</coordinates></Point></Placemark>"
            "</Document></kml>")


def _zip(path: Path, members: list[tuple[str, str | bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name: that is the point
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                if name.endswith("/"):
                    zf.writestr(zipfile.ZipInfo(name), b"")
                else:
                    zf.writestr(name, data)
    return path


def _ingest(case: Path, *inputs: Path | str, extra: tuple[str, ...] = ()) -> tuple[int, pd.DataFrame, dict]:
    rc = main(["ingest", str(case), *map(str, inputs), "-q", *extra])
    q = pd.read_csv(case / "quality.csv", dtype=str, keep_default_na=False)
    manifest = json.loads((case / "case.json").read_text())
    return rc, q, {**manifest, "sources": open_case(case).source_records()}


def _file_rows(q: pd.DataFrame) -> dict[str, str]:
    f = q[q["level"] == "file"]
    return dict(zip(f["path"], f["reason"], strict=True))


# --- archives -----------------------------------------------------------------------------

def test_zip_holding_one_kml_somewhere_is_an_archive_not_a_kmz(tmp_path: Path) -> None:
    # an iPhone file-system extraction with one .kml deep inside: every member is read
    z = _zip(tmp_path / "extraction.zip", [
        ("private/var/mobile/Downloads/route.kml", _kml()),
        ("private/var/mobile/track.gpx", _gpx(n=3)),
        ("private/var/mobile/other/walk.gpx", _gpx(52.0, n=2)),
    ])
    rc, _q, m = _ingest(tmp_path / "case", z)
    assert rc == 0
    assert sorted((s["member"], s["format"]) for s in m["sources"]) == [
        ("private/var/mobile/Downloads/route.kml", "kml"),
        ("private/var/mobile/other/walk.gpx", "gpx"),
        ("private/var/mobile/track.gpx", "gpx")]


def test_kmz_holding_two_kml_and_a_gpx_reads_all_three(tmp_path: Path) -> None:
    z = _zip(tmp_path / "trip.kmz", [("doc.kml", _kml("a")), ("more/b.kml", _kml("b", 52.0)),
                                      ("track.gpx", _gpx(n=4))])
    rc, _q, m = _ingest(tmp_path / "case", z)
    assert rc == 0
    assert sorted(s["member"] for s in m["sources"]) == ["doc.kml", "more/b.kml", "track.gpx"]
    assert sum(s["records_read"] for s in m["sources"]) == 6


def test_a_real_kmz_with_its_icons_is_one_source(tmp_path: Path) -> None:
    z = _zip(tmp_path / "pins.kmz", [("doc.kml", _kml()), ("files/icon.png", b"\x89PNG\r\n\x1a\n" + b"\x01" * 40)])
    rc, q, m = _ingest(tmp_path / "case", z)
    assert rc == 0 and [s["format"] for s in m["sources"]] == ["kmz"]
    assert not _file_rows(q)


def test_members_that_cannot_be_placed_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    z = _zip(tmp_path / "clash.zip", [
        ("t.gpx", _gpx(51.0)), ("t.gpx", _gpx(52.0)),  # the same name twice
        ("a/b.gpx", _gpx(53.0)), ("a\\b.gpx", _gpx(54.0)), ("./a/b.gpx", _gpx(55.0)),
        ("x", "not a folder"), ("x/y.gpx", _gpx(56.0)),  # a file where a folder is needed
        ("empty.gpx", b""), ("notes.bin", b"\x01\x02\x03"),
    ])
    rc, q, m = _ingest(tmp_path / "case", z)
    assert rc == 0  # the archive as a whole did not fail
    assert sorted(s["member"] for s in m["sources"]) == ["a/b.gpx", "t.gpx"]
    rows = _file_rows(q)
    shown = str(z)
    for member in ("t.gpx", "a\\b.gpx", "./a/b.gpx", "x/y.gpx"):
        assert "name collides with member" in rows[f"{shown}!{member}"]
    assert "no loader recognises" in rows[f"{shown}!x"]
    assert "empty file" in rows[f"{shown}!empty.gpx"]
    assert "no loader recognises" in rows[f"{shown}!notes.bin"]
    # 9 members: 2 sources + 7 file rows, none lost
    assert len(m["sources"]) + len(rows) == 9
    assert m["quality"]["file_errors"] == len(rows) == 7


def test_every_skipped_file_has_a_reason_in_quality_csv(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    (ev / "good.gpx").write_text(_gpx(n=2))
    (ev / "empty.bin").write_bytes(b"")
    (ev / "zero.bin").write_bytes(b"\x00" * 300_000)
    _zip(ev / "empty.zip", [])
    _zip(ev / "folders.zip", [("a/", b""), ("a/b/", b"")])
    (ev / "link.gpx").symlink_to(ev / "good.gpx")
    (ev / "linkdir").symlink_to(ev / "sub")
    os.mkfifo(ev / "pipe")
    rc, q, m = _ingest(tmp_path / "case", ev)
    assert rc == 0
    assert [Path(s["path"]).name for s in m["sources"]] == ["good.gpx"]
    rows = {Path(p).name: why for p, why in _file_rows(q).items()}
    assert "empty file (0 bytes)" in rows["empty.bin"]
    assert "300000 bytes, zero bytes in its first 65536" in rows["zero.bin"]
    assert "archive holds no files (no members at all)" in rows["empty.zip"]
    assert "archive holds no files (only 2 folder entries)" in rows["folders.zip"]
    assert "a symbolic link, not followed" in rows["link.gpx"]
    assert "a symbolic link, not followed" in rows["linkdir"]
    assert "named pipe" in rows["pipe"]
    assert m["quality"]["file_errors"] == len(rows) == 7


def test_nothing_loadable_exits_non_zero_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = _zip(tmp_path / "empty.zip", [])
    assert main(["ingest", str(tmp_path / "case"), str(z)]) == 1
    assert "archive holds no files" in capsys.readouterr().err
    rc, q, m = _ingest(tmp_path / "case", z)
    assert rc == 1
    assert m["quality"]["file_errors"] == len(_file_rows(q)) == 1


def test_all_zero_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "wiped.bin"
    with open(big, "wb") as fh:
        fh.truncate(256 << 20)  # 256 MiB of zeros (sparse: costs no disk)
    import time

    t0 = time.perf_counter()
    rc, q, _m = _ingest(tmp_path / "case", big)
    took = time.perf_counter() - t0
    assert rc == 1 and "zero bytes in its first 65536" in _file_rows(q)[str(big)]
    assert took < 5, f"an all-zero file took {took:.1f} s"


def test_tar_gz_bomb_is_refused_like_the_zip(tmp_path: Path) -> None:
    zeros = b"\x00" * (64 << 20)
    tgz = tmp_path / "bomb.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("first.gpx")
        data = _gpx(n=2).encode()
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("Records.json")
        info.size = len(zeros)
        tf.addfile(info, io.BytesIO(zeros))
        info = tarfile.TarInfo("after.gpx")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    assert tgz.stat().st_size < 200_000  # ~1000:1
    z = _zip(tmp_path / "bomb.zip", [("Records.json", zeros)])
    _rc, q, m = _ingest(tmp_path / "case", tgz, z)
    rows = _file_rows(q)
    assert "compression-ratio limit of 200" in rows[f"{tgz}!Records.json"]
    assert "members after it are not read" in rows[f"{tgz}!Records.json"]
    assert "compression ratio" in rows[f"{z}!Records.json"]
    assert [s["member"] for s in m["sources"]] == ["first.gpx"]


def test_reingest_keeps_case_json_and_quality_csv_in_step(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "good.gpx").write_text(_gpx())
    (ev / "bad.gpx").write_text("<gpx><trk>")
    for _ in range(3):
        rc, q, m = _ingest(tmp_path / "case", ev)
        assert rc == 0
    assert m["quality"]["file_errors"] == len(_file_rows(q)) == 1


# --- SQLite companions --------------------------------------------------------------------

def _photos_with_wal(folder: Path, n: int, *, lat: float = 50.0, seed_main: Path | None = None) -> Path:
    """Photos.sqlite whose ``n`` assets are committed one by one to its -wal only."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "Photos.sqlite"
    if seed_main is None:
        write_photos(db, pd.DataFrame({"Z_PK": [1], "ZDATECREATED": [cocoa([pd.Timestamp("2025-10-24T10:00Z")])[0]],
                                       "ZLATITUDE": [49.0], "ZLONGITUDE": [4.0], "ZFILENAME": ["IMG_0.JPG"],
                                       "ZTRASHEDSTATE": [0]}),
                     pd.DataFrame({"Z_PK": [1], "ZASSET": [1], "ZTIMEZONEOFFSET": [3600]}))
    else:
        shutil.copyfile(seed_main, db)
    work = folder / ".work"
    work.mkdir()
    shutil.copyfile(db, work / "Photos.sqlite")
    con = sqlite3.connect(work / "Photos.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    t0 = cocoa([pd.Timestamp("2025-10-24T11:00Z")])[0]
    for i in range(n):
        con.execute("INSERT INTO ZASSET (Z_PK, Z_ENT, Z_OPT, ZDATECREATED, ZLATITUDE, ZLONGITUDE, ZFILENAME, "
                    "ZTRASHEDSTATE) VALUES (?, 3, 1, ?, ?, 4.0, ?, 0)", (i + 2, t0 + 60 * i, lat + i * 1e-4,
                                                                         f"IMG_{i + 1}.JPG"))
        con.commit()
    shutil.copyfile(Path(str(work / "Photos.sqlite") + "-wal"), Path(str(db) + "-wal"))
    con.close()
    shutil.rmtree(work)
    return db


def test_same_database_with_another_wal_is_another_source(tmp_path: Path) -> None:
    a = _photos_with_wal(tmp_path / "a", 100)
    b = _photos_with_wal(tmp_path / "b", 100, lat=40.0, seed_main=a)
    assert a.read_bytes() == b.read_bytes()  # the main files are identical
    rc, _q, m = _ingest(tmp_path / "case", a.parent, b.parent)
    assert rc == 0 and len(m["sources"]) == 2
    assert all(s["records_read"] == 101 and s["n_rejects"] == 0 for s in m["sources"])
    assert all("-wal=" in s["companions"] and "file=" in s["companions"] for s in m["sources"])


def test_verify_fails_after_the_wal_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _photos_with_wal(tmp_path / "ev", 100)
    rc, _q, _m = _ingest(tmp_path / "case", db.parent)
    assert rc == 0
    assert main(["verify", str(tmp_path / "case"), "-q"]) == 0
    Path(str(db) + "-wal").write_bytes(b"")  # the WAL emptied
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "case")]) == 1
    got = capsys.readouterr()
    err = got.out + got.err  # the rows are the result (stdout), the verdict a message (stderr)
    assert "changed  source " in err and "missing  source part" in err and "Photos.sqlite-wal" in err


def _damage_frame(wal: Path, frame: int) -> None:
    data = bytearray(wal.read_bytes())
    page = struct.unpack(">I", data[8:12])[0]
    data[32 + (frame - 1) * (24 + page) + 24 + 100] ^= 0xFF
    wal.write_bytes(bytes(data))


def test_damaged_wal_frame_is_a_reject_naming_the_frames(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "ev", 100)
    wal = Path(str(db) + "-wal")
    full = evidence.check_wal(wal)
    assert full.fault is None and full.commits == 100
    _damage_frame(wal, 51)
    before = hash_tree(db.parent)
    _rc, q, m = _ingest(tmp_path / "case", db.parent)
    assert hash_tree(db.parent) == before
    (src,) = m["sources"]
    rej = q[q["level"] == "record"]
    (rec,) = rej["record"].tolist()
    assert rec == f"Photos.sqlite-wal/frames 51..{full.frames}"
    assert "frame 51 damaged" in rej["reason"].iloc[0]
    assert src["records_read"] == 51 + 1  # 1 + 50 assets read, the lost frames one reject
    assert src["n_rejects"] == 1


def test_wal_cut_mid_frame_is_a_reject_naming_the_frame(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "ev", 10)
    wal = Path(str(db) + "-wal")
    n = evidence.check_wal(wal).frames
    wal.write_bytes(wal.read_bytes()[:-1000])
    _rc, q, m = _ingest(tmp_path / "case", db.parent)
    rej = q[q["level"] == "record"]
    assert rej["record"].tolist() == [f"Photos.sqlite-wal/frames {n}..{n}"]
    assert f"frame {n} cut short" in rej["reason"].iloc[0]
    assert m["sources"][0]["records_read"] == 10 + 1  # 9 WAL assets + 1 main + the reject


def test_hot_rollback_journal_is_rolled_back_on_the_private_copy(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "src", 0)
    ev = tmp_path / "ev"
    ev.mkdir()
    work = tmp_path / "work.sqlite"
    shutil.copyfile(db, work)
    con = sqlite3.connect(work, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA cache_size=1")
    con.execute("BEGIN")
    con.execute("UPDATE ZASSET SET ZLATITUDE = -1")
    con.execute("CREATE TABLE pad(x)")
    con.executemany("INSERT INTO pad VALUES (?)", [(b"\x01" * 2000,) for _ in range(400)])
    journal = Path(str(work) + "-journal")
    assert journal.stat().st_size > 0
    shutil.copyfile(work, ev / "Photos.sqlite")  # seized mid-write
    shutil.copyfile(journal, ev / "Photos.sqlite-journal")
    con.execute("ROLLBACK")
    con.close()
    before = hash_tree(ev)
    rc, q, m = _ingest(tmp_path / "case", ev)
    assert hash_tree(ev) == before
    assert rc == 0, _file_rows(q)
    (src,) = m["sources"]
    assert src["records_read"] == 1 and "-journal=" in src["companions"]
    fixes = open_case(tmp_path / "case").table("fixes")
    assert fixes["lat"].tolist() == [49.0]  # the committed value, not the half-written -1


def test_private_copy_runs_with_trusted_schema_off(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "ev", 1)
    with evidence.private_sqlite(db) as con:
        assert con.execute("PRAGMA trusted_schema").fetchone()[0] == 0


# --- resources ----------------------------------------------------------------------------

def test_memory_error_is_a_file_error_and_the_ingest_goes_on(tmp_path: Path) -> None:
    # a 200 KB Records.json nested 100,000 deep drove the JSON parser past any memory; under
    # a 3 GB address-space limit that is a MemoryError, which ended the whole folder ingest
    import resource
    import subprocess
    import sys

    ev = tmp_path / "ev"
    ev.mkdir()
    d = 100_000
    (ev / "Records.json").write_text('{"locations": [{"latitudeE7": 1, "longitudeE7": 2, "timestamp": '
                                     '"2024-01-01T00:00:00Z", "x": ' + "[" * d + "]" * d + "}]}")
    (ev / "ok.gpx").write_text(_gpx())  # read after Records.json

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    run = subprocess.run([sys.executable, "-m", "routetrace.cli", "ingest", str(tmp_path / "case"), str(ev)],
                         preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    q = pd.read_csv(tmp_path / "case" / "quality.csv", dtype=str, keep_default_na=False)
    paths = {Path(s["path"]).name: s for s in open_case(tmp_path / "case").source_records()}
    assert "ok.gpx" in paths
    rows = {Path(p).name: why for p, why in _file_rows(q).items()}
    # either a file error (out of memory) or, where nesting is capped, a source with rejects
    assert ("ran out of memory" in rows.get("Records.json", "")
            or paths.get("Records.json", {}).get("n_rejects", 0) > 0), (rows, paths)


def test_time_budget_per_file_is_a_file_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `--format teltonika` on zeros ran for many minutes (quadratic on a 1 MB file)
    slow = tmp_path / "wiped.bin"
    slow.write_bytes(b"\x00" * (8 << 20))
    small = tmp_path / "small.bin"
    small.write_bytes(b"\x00" * 2000)
    import time

    t0 = time.perf_counter()
    rc = main(["ingest", str(tmp_path / "case"), str(slow), str(small), "--format", "teltonika",
               "--file-timeout-s", "1.5"])
    took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 0, err
    q = pd.read_csv(tmp_path / "case" / "quality.csv", dtype=str, keep_default_na=False)
    assert "time budget of 1.5 s per file" in _file_rows(q)[str(slow)]
    m = json.loads((tmp_path / "case" / "case.json").read_text())
    assert "sources" not in m  # listed by the sources table: case.json does not grow per file
    assert [Path(s["path"]).name for s in open_case(tmp_path / "case").source_records()] == ["small.bin"]
    assert m["quality"]["file_errors"] == 1
    assert took < 60


# --- outputs ------------------------------------------------------------------------------

_SOCKET = re.compile(r"^socket\((AF_INET6?), (SOCK_\w+)[^)]*\)\s+= (\d+)")
_CONNECT = re.compile(r"^(connect|sendto|sendmsg)\((\d+), .*?sa_family=(AF_INET6?), "
                      r"sin6?_port=htons\((\d+)\).*?inet_(?:addr|pton)\((?:AF_INET6, )?\"([^\"]+)\"")


def _new_fds(line: str) -> list[str]:
    """File descriptors a traced call hands out: socket/accept results, socketpair's pair,
    and descriptors received with SCM_RIGHTS."""
    out = []
    if m := re.match(r"^(socket|accept4?)\(.*\)\s+= (\d+)$", line):
        out.append(m.group(2))
    if m := re.match(r"^socketpair\(.*\[(\d+), (\d+)\]\)\s+= 0", line):
        out += [m.group(1), m.group(2)]
    for m in re.finditer(r"cmsg_data=\[([\d, ]+)\]", line):
        out += [x.strip() for x in m.group(1).split(",")]
    return out


def _network_calls(logs: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """(DNS calls, outside TCP connects, outside UDP connects) in the per-thread logs of
    ``strace -ff -e trace=network`` (one file a thread: no call is split by another
    thread's); a socket's type is looked up from its ``socket()`` call."""
    dns, tcp, udp = [], [], []
    for log in logs:
        kind: dict[str, str] = {}  # fd -> socket type, for AF_INET/AF_INET6 sockets
        probed: set[str] = set()  # UDP sockets connected to an outside address
        for line in log.read_text(errors="replace").splitlines():
            for fd in _new_fds(line):  # a number reused by another socket is not the probe
                probed.discard(fd)
                kind.pop(fd, None)
            if m := _SOCKET.match(line):
                kind[m.group(3)] = m.group(2)
            elif (c := re.match(r"^(sendto|sendmsg|sendmmsg)\((\d+), ", line)) and c.group(2) in probed:
                tcp.append(line)  # a datagram sent to the outside address the socket was connected to
            elif (c := re.match(r"^(connect|sendto|sendmsg)\((\d+), ", line)) and not _CONNECT.match(line) \
                    and c.group(2) in kind and "sa_family=AF_UNIX" not in line and (
                        c.group(1) == "connect" or "sa_family=" in line):
                tcp.append(line)  # an address strace did not spell out: counted, never assumed safe
            elif m := _CONNECT.match(line):
                call, fd, _fam, port, addr = m.groups()
                if port == "53":
                    dns.append(line)
                elif addr in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                    continue
                elif kind.get(fd) == "SOCK_DGRAM" and call == "connect":
                    udp.append(line)
                    probed.add(fd)
                else:
                    tcp.append(line)
    return dns, tcp, udp


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed: the socket audit "
                    "of the exhibit command needs it (apt-get install strace)")
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM"),
                    reason="PNG/PDF exhibits need Debian's chromium")
def test_exhibit_makes_no_dns_query_and_no_outside_connect(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "a.gpx").write_text(_gpx(n=30))
    assert main(["ingest", str(tmp_path / "case"), str(tmp_path / "a.gpx"), "-q"]) == 0
    assert main(["chronology", str(tmp_path / "case"), "-q"]) == 0  # exhibit needs one (#18)
    log = tmp_path / "trace"
    run = subprocess.run(["strace", "-ff", "-v", "-e", "trace=network", "-o", str(log), sys.executable, "-m",
                          "routetrace.cli", "exhibit", str(tmp_path / "case"), "--out", str(tmp_path / "ex"), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "ex" / "exhibit.png").exists() and (tmp_path / "ex" / "exhibit.pdf").exists()
    dns, tcp, udp = _network_calls(sorted(tmp_path.glob("trace.*")))
    assert not dns, dns[:5]  # was 40 connects to port 53 (clients2.google.com, accounts.google.com)
    assert not tcp, tcp[:5]
    isolation = json.loads((tmp_path / "ex" / "manifest.json").read_text())["browser_network_isolation"]
    if isolation.startswith("none"):
        pytest.skip(f"no network namespace for Chromium here ({isolation}): with its switches alone, its "
                    "host resolver still asks the kernel for a route to 2001:4860:4860::8888 (a UDP connect)")
    assert isolation.startswith("network namespace"), isolation
    # was 2 per exhibit: Chromium's host resolver asking the kernel which source address would
    # reach 2001:4860:4860::8888 (a UDP connect() and getsockname()) before resolving the
    # on-device models' manifest host; now no outside connect is even attempted
    assert not udp, udp[:5]


#: hidden characters a device can put in a name: bidi override, isolates, marks, C1 controls
#: (CSI, NEL), zero-width space and joiner, BOM; XML 1.0 carries all of them
_HIDDEN_NAME = "Safe\u202ehouse\u2066A\u2069\u200eB\u009b2K\u0085C\u200bD\u200dE\ufeffF"
_HIDDEN_SHOWN = "Safe[U+202E]house[U+2066]A[U+2069][U+200E]B[U+009B]2K[U+0085]C[U+200B]D[U+200D]E[U+FEFF]F"


def _hidden_case(tmp_path: Path) -> tuple[Path, str]:
    """A case from one GPX whose waypoint name and file name carry hidden characters: a
    20-minute stop at the waypoint, then a drive; chronology drawn. Returns the case and the
    file's name."""
    stay = "".join(f'<trkpt lat="51.05000" lon="3.72000"><time>2025-10-24T20:{i:02d}:00Z</time></trkpt>'
                   for i in range(21))
    drive = "".join(f'<trkpt lat="{51.05 + i * 0.002:.5f}" lon="3.72000"><time>2025-10-24T20:{21 + i:02d}:00Z'
                    "</time></trkpt>" for i in range(1, 10))
    name = "track\u202egpx.exe"
    (tmp_path / f"{name}.gpx").write_text(
        '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        f'<wpt lat="51.05001" lon="3.72001"><name>{_HIDDEN_NAME}</name></wpt>'
        f"<trk><name>{_HIDDEN_NAME}</name><trkseg>{stay}{drive}</trkseg></trk></gpx>", encoding="utf-8")
    case = tmp_path / "case"
    assert main(["ingest", str(case), str(tmp_path / f"{name}.gpx"), "-q", "--subject", "S\u202e1"]) == 0
    assert main(["chronology", str(case), "-q"]) == 0
    return case, name


def _raw_hidden(text: str) -> list[str]:
    from routetrace.display import HIDDEN

    return sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(text) if c not in "\t\n\r\f"})  # pdftotext: \f a page


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("ROUTETRACE_CHROMIUM"),
                    reason="PNG/PDF exhibits need Debian's chromium")
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="reading the PDF's text needs pdftotext "
                    "(poppler-utils, installed by .ci/install)")
def test_hidden_characters_are_shown_escaped_in_every_exhibit(tmp_path: Path) -> None:
    import subprocess

    from routetrace.maps.static import open_exhibit

    case, _name = _hidden_case(tmp_path)
    ex = tmp_path / "ex"
    assert main(["exhibit", str(case), "--out", str(ex), "-q"]) == 0
    with open_exhibit(ex / "exhibit.html") as (page, _rep):
        page_text = page.evaluate("document.body.innerText")
        data = page.evaluate("JSON.stringify(window.routetraceData)")
        title = page.title()
        # every marker's popup, opened: its text is what a reader clicking sees
        popups = page.evaluate("""(() => { const out = []; const map = Object.values(window).find(
            v => v && v._layers && v.getCenter); map.eachLayer(l => { if (l.getPopup && l.getPopup()) {
            l.openPopup(); const c = l.getPopup().getElement(); if (c) out.push(c.innerText); }});
            return out.join('\\n'); })()""")
    pdf_text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(ex / "exhibit.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
    kml = (ex / "exhibit.kml").read_text(encoding="utf-8")
    for where, text in (("page text", page_text), ("page data", data), ("title", title), ("popups", popups),
                        ("PDF text", pdf_text), ("KML", kml)):
        assert not _raw_hidden(text), (where, _raw_hidden(text))
    assert _HIDDEN_SHOWN in data and _HIDDEN_SHOWN in popups  # the waypoint, a place on the map
    for shown in ("track[U+202E]gpx.exe.gpx", "S[U+202E]1"):  # the file (sources) and the subject
        assert shown in page_text and shown in popups and shown in pdf_text.replace("\n", ""), shown
    assert _HIDDEN_SHOWN in kml
    # machine-readable exports keep the evidence exact
    chrono = pd.read_csv(ex / "chronology.csv", dtype=str, keep_default_na=False)
    assert (chrono == "S\u202e1").to_numpy().any()
    names = [f["properties"].get("name") for f in json.loads((ex / "exhibit.geojson").read_text())["features"]]
    assert _HIDDEN_NAME in names


def _carpark_case(tmp_path: Path, fence_name: str) -> tuple[Path, Path]:
    """A case with 40 minutes of fixes inside one car park, and that car park's GeoJSON."""
    pts = "".join(f'<trkpt lat="51.00001" lon="3.00001"><time>2025-10-24T{22 + i // 60:02d}:{i % 60:02d}:00Z'
                  "</time></trkpt>" for i in range(40))
    (tmp_path / "car.gpx").write_text(f'<gpx version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>')
    assert main(["ingest", str(tmp_path / "case"), str(tmp_path / "car.gpx"), "-q"]) == 0
    ring = [[2.999, 50.999], [3.001, 50.999], [3.001, 51.001], [2.999, 51.001], [2.999, 50.999]]
    fences = tmp_path / "fences.geojson"
    fences.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": fence_name},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    return tmp_path / "case", fences


def test_geofence_name_with_dollars_is_drawn_as_text(tmp_path: Path) -> None:
    case, fences = _carpark_case(tmp_path, "P $5 - $10 \u202eevil")
    assert main(["carparks", str(case), "--geofences", str(fences), "-q"]) == 0
    svg = (case / "figures" / "carparks_hour_of_week.svg").read_text()
    assert "P $5 - $10 [U+202E]evil" in svg  # plain text, the bidi override shown escaped
    assert main(["verify", str(case), "-q"]) == 0


def test_a_failed_stage_writes_no_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case, fences = _carpark_case(tmp_path, "P1")
    (case / "figures").write_text("a file where the figures folder goes: drawing cannot finish")
    assert main(["carparks", str(case), "--geofences", str(fences)]) == 1
    assert not (case / "tables" / "carpark_visits.parquet").exists()
    assert not list(case.glob(".figures-*"))
    (case / "figures").unlink()
    capsys.readouterr()
    assert main(["verify", str(case)]) == 0, capsys.readouterr().err


def test_control_and_bidi_characters_in_names_reach_the_terminal_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "a\x1b[2K\rok\u202etxt.gpx"
    (tmp_path / name).write_text(_gpx())
    (tmp_path / "bad\x1b[31m.gpx").write_text("<gpx><trk>")
    assert main(["ingest", str(tmp_path / "case"), str(tmp_path / name), str(tmp_path / "bad\x1b[31m.gpx")]) == 0
    assert main(["info", str(tmp_path / "case")]) == 0
    (tmp_path / name).write_text(_gpx(52.0))
    assert main(["verify", str(tmp_path / "case")]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert "a[U+001B][2K[U+000D]ok[U+202E]txt.gpx" in text and "bad[U+001B][31m.gpx" in text


# --- soak ---------------------------------------------------------------------------------

def _nmea(lat: float, n: int = 3) -> str:
    """``n`` RMC sentences with valid checksums, one a second, at latitude ``lat``."""
    def s(body: str) -> str:
        c = 0
        for ch in body.encode():
            c ^= ch
        return f"${body}*{c:02X}"

    dm = f"{int(lat):02d}{(lat % 1) * 60:07.4f}"
    return "\r\n".join(s(f"GPRMC,2000{k:02d}.00,A,{dm},N,00352.2000,E,10.0,90.0,241025,,") for k in range(n)) + "\r\n"


def _igc(i: int) -> str:
    b = [f"B1101{k:02d}{50 + i % 30:02d}{i % 60:02d}{i % 1000:03d}N00006198WA0058700558" for k in range(3)]
    return "\r\n".join(["AXCSAAA Flight:1", f"HFDTEDATE:{1 + i % 28:02d}0324,01", *b]) + "\r\n"


def _tcx(lat: float) -> str:
    pts = "".join(f"<Trackpoint><Time>2024-03-01T08:00:{k:02d}Z</Time><Position><LatitudeDegrees>{lat + k * 1e-4:.5f}"
                  "</LatitudeDegrees><LongitudeDegrees>4.35</LongitudeDegrees></Position></Trackpoint>"
                  for k in range(2))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase '
            'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"><Activities><Activity Sport="Biking">'
            '<Id>2024-03-01T08:00:00Z</Id><Lap StartTime="2024-03-01T08:00:00Z"><TotalTimeSeconds>60'
            f"</TotalTimeSeconds><Track>{pts}</Track></Lap></Activity></Activities></TrainingCenterDatabase>")


def _records(lat: float, *, extra: str = "") -> str:
    """A Takeout Records.json with two locations; ``extra`` is JSON text put in the first."""
    first = f'{{"latitudeE7": {round(lat * 1e7)}, "longitudeE7": 38700000, "timestamp": "2025-10-24T20:00:00Z"'
    return ('{"locations": [' + first + (f', "x": {extra}' if extra else "") + "}, " + first.replace(
        "20:00:00Z", "20:01:00Z") + "}]}")


def _tgz(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _good_file(folder: Path, i: int) -> None:
    """The ``i``-th small, sound evidence file: ten formats in turn, each one's content its own."""
    lat = 40 + i * 1e-3
    sub = folder / f"{i // 100:02d}"
    sub.mkdir(parents=True, exist_ok=True)
    write: dict[int, tuple[str, str | bytes]] = {
        0: ("gpx", _gpx(lat, n=1 + i % 5, minute=i % 60)), 1: ("kml", _kml(f"pin {i}", lat)),
        3: ("nmea", _nmea(lat)), 4: ("igc", _igc(i)), 5: ("tcx", _tcx(lat)),
        6: ("csv", f"timestamp,latitude,longitude\n2025-10-24T20:00:00Z,{lat:.4f},3.7\n"
                   f"2025-10-24T20:01:00Z,{lat + 1e-4:.4f},3.7\n"),
        7: ("json", _records(lat))}
    kind = i % 10
    if kind in write:
        ext, data = write[kind]
        name = "Records.json" if ext == "json" else f"f{i:04d}.{ext}"
        (sub / (f"{i:04d}" if ext == "json" else "")).mkdir(exist_ok=True)
        target = sub / f"{i:04d}" / name if ext == "json" else sub / name
        target.write_bytes(data if isinstance(data, bytes) else data.encode())
    elif kind == 2:
        _zip(sub / f"f{i:04d}.kmz", [("doc.kml", _kml(f"kmz {i}", lat))])
    elif kind == 8:
        _zip(sub / f"f{i:04d}.zip", [(f"d/t{j}.gpx", _gpx(lat + j * 1e-4, n=2)) for j in range(3)])
    else:
        _tgz(sub / f"f{i:04d}.tar.gz", [(f"x/{i}.gpx", _gpx(lat, n=3).encode())])


def _cut_kmz(path: Path, tmp: Path, j: int) -> None:
    path.write_bytes(_zip(tmp / "whole.kmz", [("doc.kml", _kml(f"pin {j}"))]).read_bytes()[:60])


def _cut_wal(folder: Path, j: int) -> None:
    wal = Path(str(_photos_with_wal(folder, 10, lat=50.0 + j * 0.01)) + "-wal")
    wal.write_bytes(wal.read_bytes()[:-1000])


def _empty_zip(path: Path, j: int) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.comment = f"{j}".encode()  # holds nothing; the comment keeps each one's bytes its own


#: The ways #20 found evidence lost, one damaged file each: (name, writer of that file given
#: the folder for side files and the file's number ``j``, which makes its bytes its own).
_DAMAGES: list[tuple[str, Callable[[Path, Path, int], object]]] = [
    ("empty.gpx", lambda p, _t, j: p.write_bytes(b"" if j == 0 else b" " * j)),
    ("wiped.bin", lambda p, _t, j: p.write_bytes(b"\x00" * (100_000 + j))),
    ("cut.gpx", lambda p, _t, j: p.write_text(_gpx(1.0 + j, n=5)[:-40])),
    ("cut.kml", lambda p, _t, j: p.write_text(_kml(f"pin {j}")[:-30])),
    ("empty.zip", lambda p, _t, j: _empty_zip(p, j)),
    ("folders.zip", lambda p, _t, j: _zip(p, [(f"a{j}/", b""), (f"a{j}/b/", b"")])),
    ("clash.zip", lambda p, _t, j: _zip(p, [("t.gpx", _gpx(1.0 + j)), ("t.gpx", _gpx(2.0 + j)), ("x", "x"),
                                            ("x/y.gpx", _gpx(3.0 + j))])),
    ("bomb.zip", lambda p, _t, j: _zip(p, [(f"{j}/Records.json", b"\x00" * (8 << 20))])),
    ("bomb.tar.gz", lambda p, _t, j: _tgz(p, [(f"{j}/Records.json", b"\x00" * (8 << 20))])),
    ("phone", lambda p, _t, j: _damage_frame(Path(str(_photos_with_wal(p, 30, lat=50.0 + j * 0.01)) + "-wal"), 12)),
    ("phone-cut", lambda p, _t, j: _cut_wal(p, j)),
    ("deep.json", lambda p, _t, j: p.write_text(_records(51.0 + j, extra="[" * 1000 + "]" * 1000))),
    ("long.json", lambda p, _t, j: p.write_text(_records(51.0 + j, extra='"' + "a" * 100_000 + '"'))),
    ("link.gpx", lambda p, t, _j: p.symlink_to(t / "target.gpx")),
    ("cut.kmz", _cut_kmz),
    ("cut.nmea", lambda p, _t, j: p.write_text(_nmea(10.0 + j, n=4)[:-20])),
]


def _soak_folder(root: Path, n_entries: int) -> tuple[Path, list[Path]]:
    """A folder of ``n_entries`` evidence entries (a database with its -wal is one): the
    sample case, two iPhone photo libraries with WALs, small files of ten formats and, at
    least 5 % and every kind at least once, files damaged in each way #20 found. Returns the
    folder and the damaged entries."""
    from routetrace.samples import generate

    ev = root / "ev"
    generate(ev / "sample", seed=7)
    _photos_with_wal(ev / "phone-ok", 20)
    _photos_with_wal(ev / "phone-ok-2", 5, lat=45.0)
    (root / "target.gpx").write_text(_gpx(33.0))
    bad = ev / "damaged"
    bad.mkdir()
    damaged = []
    for j in range(max(len(_DAMAGES), n_entries // 20)):
        name, write = _DAMAGES[j % len(_DAMAGES)]
        p = bad / f"{j:03d}-{name}"
        write(p, root, j)
        damaged.append(p if "." in name else p / "Photos.sqlite")  # "phone": a folder with its WAL
    have = len(_entries(ev))
    for i in range(n_entries - have):
        _good_file(ev / "files", i)
    assert len(_entries(ev)) == n_entries
    return ev, damaged


def _entries(ev: Path) -> list[Path]:
    return [p for p in ev.rglob("*") if (p.is_file() or p.is_symlink()) and not p.name.endswith("-wal")
            and ".work" not in p.parts]


def _soak(tmp_path: Path, n_entries: int, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    ev, damaged = _soak_folder(tmp_path, n_entries)
    capsys.readouterr()
    t0 = time.perf_counter()
    rc = main(["ingest", str(tmp_path / "case"), str(ev), "--json", "-q", "--tz", "Europe/Brussels"])
    took = time.perf_counter() - t0
    summary = json.loads(capsys.readouterr().out)
    q = pd.read_csv(tmp_path / "case" / "quality.csv", dtype=str, keep_default_na=False)
    m = json.loads((tmp_path / "case" / "case.json").read_text())
    m["sources"] = open_case(tmp_path / "case").source_records()
    files = q[q["level"] == "file"]
    # exit status, the summary, case.json, the sources table and quality.csv agree
    assert rc == 0
    assert len(summary["errors"]) == len(files) == m["quality"]["file_errors"]
    assert len(summary["added"]) == len(m["sources"]) and not summary["duplicates"]
    assert len(q[q["level"] == "record"]) == m["quality"]["rejected_records"] == sum(
        s["n_rejects"] for s in m["sources"])
    # every entry is a source, a file error, or both (archive members)
    named = [s["path"] for s in m["sources"]] + files["path"].tolist()
    for p in _entries(ev):
        assert any(x == str(p) or x.startswith(f"{p}!") for x in named), f"{p} left no trace"
    # every damaged entry has its row in quality.csv (a file error or a record reject)
    rows = q["path"].tolist()
    for p in damaged:
        assert any(x == str(p) or x.startswith(f"{p}!") for x in rows), f"{p} damaged, and no quality row"
    # the count rule, from the stored tables: records read = produced + rejected, per source
    case = open_case(tmp_path / "case")
    produced: dict[str, set[str]] = {}
    for name in case.table_names():
        t = case.table(name)
        if {"source_id", "record"} <= set(t.columns) and name != "rejects":
            for sid, rec in zip(t["source_id"].astype(str), t["record"].astype(str), strict=True):
                produced.setdefault(sid, set()).add(rec)
    for s in m["sources"]:
        assert len(produced.get(s["source_id"], ())) + s["n_rejects"] == s["records_read"], s["path"]
    # the damages are each reported
    reasons = " | ".join(q["reason"])
    for what in ("empty file", "zero bytes in its first", "malformed XML", "archive holds no files",
                 "only 2 folder entries", "name collides", "compression ratio", "compression-ratio limit",
                 "symbolic link", "damaged zip archive: its central directory cannot be read",
                 "frame 12 damaged", "cut short", "levels deep (limit", "holds a string of 100,000 bytes"):
        assert what in reasons, what
    print(f"soak: {n_entries} entries ({len(damaged)} damaged), {len(m['sources'])} sources, "
          f"{len(files)} file errors, {m['quality']['rejected_records']} rejects; ingest {took:.1f} s")


def test_soak_every_file_is_a_source_an_error_or_a_quality_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _soak(tmp_path, 200, capsys)


@pytest.mark.slow
def test_soak_of_1000_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _soak(tmp_path, 1000, capsys)


def test_a_frame_with_one_damaged_salt_is_not_taken_for_an_old_generation(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "ev", 20)
    wal = Path(str(db) + "-wal")
    n = evidence.check_wal(wal).frames
    data = bytearray(wal.read_bytes())
    page = struct.unpack(">I", data[8:12])[0]
    data[32 + 9 * (24 + page) + 8] ^= 0x01  # frame 10: first byte of salt-1
    wal.write_bytes(bytes(data))
    check = evidence.check_wal(wal)
    assert check.fault is not None and check.fault[0] == f"Photos.sqlite-wal/frames 10..{n}"
    assert "frame 10 damaged (one salt" in check.fault[1]


def test_a_symlinked_wal_is_not_followed_but_recorded(tmp_path: Path) -> None:
    db = _photos_with_wal(tmp_path / "src", 5)
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.copyfile(db, ev / "Photos.sqlite")
    (ev / "Photos.sqlite-wal").symlink_to(Path(str(db) + "-wal"))
    rc, q, m = _ingest(tmp_path / "case", ev)
    assert rc == 0
    (src,) = m["sources"]
    assert src["records_read"] == 1 and not src["companions"]  # read without the linked WAL
    assert "a symbolic link, not followed" in _file_rows(q)[str(ev / "Photos.sqlite-wal")]
