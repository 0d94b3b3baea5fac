"""Long mutation-fuzz run over every loader family: no unhandled exception, no hang.

Seeds: every file of ../shared/realdata (when present) and of the generated sample case,
grouped by family (the folder or the detected format). Each input is a seed with 1-4
random mutations (bit flips, truncations, splices with another seed of the family,
nasty tokens such as NaN/1e309/deep nesting, deletions, repeats), loaded with the seed's
own format forced (so the loader itself, not only the sniffer, meets the bytes) and,
for one input in four, sniffed. Zip/tar containers (the corpus's archives, the sample's
Takeout zip and a generated tar) form one more family, read through ``load_many``
(safe extraction, then every member loaded). Warnings are errors, as in the test suite.

Reproducible inputs: input ``i`` of a family is a pure function of (seed, family, i), given
the family's seed files (their fingerprint, ``corpus``, is in every ledger line): its own
``random.Random(f"{seed}:{family}:{i}")`` picks the seed file, the splice partner, the
mutations and whether the format is forced. So a run can be split into shards, spread over
processes or machines, continued later, and any single input replayed on its own.

Ledger: every finished chunk (``--chunk`` consecutive inputs of one family, default 500)
appends one JSON line to bench/results/fuzz_ledger.jsonl: family, start, count, seed, corpus,
counts per status, inputs over 10 s, slowest input, peak memory, wall and CPU seconds,
python version, routetrace commit, the first example per exception kind and every
unhandled / hanging / slow input. An interrupted run loses at most its unfinished chunks.

Statuses: ok / error (a deliberate RoutetraceError) / wrapped (a parser's own exception
turned into CorruptSource by the loader boundary: handled, but a hardening target) /
unhandled (anything else escaping, or a LoaderBug: a loader breaking its own count rule;
must be 0) / hang (interrupted after ``--hang-seconds`` of CPU time; must be 0);
inputs using more than 10 s of CPU must be 0 too. Times per input are CPU (process) time, so
a run at low priority on a busy machine measures the loader, not the machine's load.

Sweep (``--sweep N``): inputs ``[0, N)`` of every family run again at the current commit,
skipping only chunks already run at this very commit (so an interrupted sweep resumes). The
report opens with the **sweep**: what the newest commit in the ledger ran, on its own, so its
figures state one commit (its provenance line names it); the whole history follows.

Report: bench/results/fuzz.md is rewritten from the ledger at the end of every run and by
``--report``: distinct inputs per family (the union of the ledger's index ranges), the
outcome counts (each input once: where chunks overlap the latest run counts), CPU time and
rate, and how many CPU-hours remain to reach ``--per-family`` inputs in every family.

Usage:
  python bench/fuzz.py --resume --max-seconds 5400    # continue towards 100,000 per family,
                                                      # fewest-covered families first, in chunks
  python bench/fuzz.py --resume --jobs 16             # 16 processes, even on a single family
  python bench/fuzz.py --families csv,gpx --start 0 --count 2000   # one shard: inputs [0, 2000)
  python bench/fuzz.py --replay csv:1234 [--replay-out FILE]       # one input: ops and outcome
  python bench/fuzz.py --sweep 10000 --jobs 2         # inputs [0, 10000) of every family, run
                                                      # again at this commit (#23: one commit)
  python bench/fuzz.py --report                       # rewrite fuzz.md from the ledger only
Other options: --seed S, --per-family N, --chunk N, --ledger FILE, --report-out FILE,
--hang-seconds S. Without --resume the range asked for is run even where already covered.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import heapq
import json
import multiprocessing
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import code_fingerprint, command_line, head_commit, uncommitted

from routetrace.errors import LoaderBug, RoutetraceError
from routetrace.evidence import is_archive
from routetrace.fuzzing import MUTATION_KINDS, load_bytes_outcome, mutate
from routetrace.loaders import detect_format, load_many
from routetrace.samples import generate
from routetrace.testing import assert_count_rule

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REALDATA = ROOT.parent / "shared" / "realdata"
ARCHIVE = "archive (zip/tar via load_many)"
#: structure families (#20): inputs built from parts, not byte mutations of one seed
ARCHIVE_STRUCT = "archive-structure (members via load_many)"
WAL_DAMAGE = "wal-damage (Photos.sqlite + -wal via load_many)"
STRUCTURED = (ARCHIVE_STRUCT, WAL_DAMAGE)
WAL_ASSETS = 40  # assets committed one by one to the wal-damage seed's -wal
SKIP_SUFFIX = ("-wal", "-shm", "-journal", ".md", "SHA256SUMS")
LEDGER = HERE / "results" / "fuzz_ledger.jsonl"
REPORT = HERE / "results" / "fuzz.md"
DEFAULT_SEED = 20251024
TARGET = 100_000
SLOW_S = 10.0
STATUSES = ("ok", "error", "wrapped", "unhandled", "hang")
MAX_FLAGGED = 50  # unhandled / hanging / slow inputs kept per ledger line
TAR_MTIME = 1761264000  # 2025-10-24: fixed tar header times, so the tar seed is byte-stable

Seed = tuple[bytes, str, str]  # (bytes, file name, format)
Corpus = dict[str, list[Seed]]


# --- seeds ---------------------------------------------------------------------------------

def _stable_tarinfo(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def seeds(tmp: Path) -> dict[str, list[tuple[Path, str]]]:
    """Family -> [(seed file, its format)] from realdata and the sample case."""
    files: list[Path] = []
    if REALDATA.exists():
        files += sorted(p for p in REALDATA.rglob("*") if p.is_file())
    sample = tmp / "sample"
    generate(sample, seed=7)
    files += sorted(p for p in (sample / "evidence").rglob("*") if p.is_file())
    fam: dict[str, list[tuple[Path, str]]] = collections.defaultdict(list)
    for f in files:
        if f.name.endswith(SKIP_SUFFIX) or f.stat().st_size > 4 << 20:
            continue
        try:
            fmt = detect_format(f).name
        except RoutetraceError:
            if is_archive(f):  # zip/tar containers: fuzzed through load_many
                fam[ARCHIVE].append((f, ARCHIVE))
            continue
        fam[fmt].append((f, fmt))
    # a tar seed too (the corpus holds zips only): the sample's GPX and CSV files, with
    # fixed header times and owners so that its bytes (and so every input) are reproducible
    tar = tmp / "seed.tar"
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for p in sorted((sample / "evidence").rglob("*"))[:6]:
            if p.is_file() and p.stat().st_size < 1 << 20:
                tf.add(p, arcname=p.relative_to(sample).as_posix(), filter=_stable_tarinfo)
    fam[ARCHIVE].append((tar, ARCHIVE))
    # archive-structure: member payloads (a GPX, a KML, a CSV of the sample); wal-damage: a
    # Photos.sqlite and its -wal of WAL_ASSETS one-asset commits (salts fixed: byte-stable)
    for p in sorted((sample / "evidence").rglob("*")):
        if p.suffix in (".gpx", ".kml", ".csv") and p.stat().st_size < 256 << 10:
            fam[ARCHIVE_STRUCT].append((p, ARCHIVE_STRUCT))
    db = _wal_seed(tmp / "wal-seed")
    fam[WAL_DAMAGE] += [(db, WAL_DAMAGE), (Path(str(db) + "-wal"), WAL_DAMAGE)]
    return dict(sorted(fam.items()))


def _wal_seed(folder: Path) -> Path:
    """Photos.sqlite (one asset) whose WAL_ASSETS further assets live in its -wal only."""
    import shutil
    import sqlite3

    import pandas as pd

    from routetrace.samples.ios_db import cocoa, fix_wal_salts, write_photos

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "Photos.sqlite"
    t0 = cocoa([pd.Timestamp("2025-10-24T10:00Z")])[0]
    write_photos(db, pd.DataFrame({"Z_PK": [1], "ZDATECREATED": [t0], "ZLATITUDE": [49.0],
                                   "ZLONGITUDE": [4.0], "ZFILENAME": ["IMG_0.JPG"], "ZTRASHEDSTATE": [0]}),
                 pd.DataFrame({"Z_PK": [1], "ZASSET": [1], "ZTIMEZONEOFFSET": [3600]}))
    work = folder / "work.sqlite"
    shutil.copyfile(db, work)
    con = sqlite3.connect(work)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    for i in range(WAL_ASSETS):
        con.execute("INSERT INTO ZASSET (Z_PK, Z_ENT, Z_OPT, ZDATECREATED, ZLATITUDE, ZLONGITUDE, "
                    "ZFILENAME, ZTRASHEDSTATE) VALUES (?, 3, 1, ?, ?, 4.0, ?, 0)",
                    (i + 2, t0 + 60 * (i + 1), 50.0 + i * 1e-4, f"IMG_{i + 1}.JPG"))
        con.commit()
    shutil.copyfile(Path(str(work) + "-wal"), Path(str(db) + "-wal"))
    con.close()
    for p in folder.glob("work.sqlite*"):
        p.unlink()
    fix_wal_salts(Path(str(db) + "-wal"))
    return db


def load_corpus(tmp: Path) -> Corpus:
    """The seeds' bytes, read once: family -> [(bytes, file name, format)]."""
    return {f: [(p.read_bytes(), p.name, fmt) for p, fmt in items] for f, items in seeds(tmp).items()}


def corpus_id(items: Sequence[Seed]) -> str:
    """Fingerprint of a family's seed files (names, formats, contents, order)."""
    h = hashlib.sha256()
    for data, name, fmt in items:
        h.update(f"{name}\0{fmt}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()[:16]


def resolve_family(name: str, families: Iterable[str]) -> str:
    """An exact family name, or a unique prefix of one ('archive')."""
    fams = list(families)
    if name in fams:
        return name
    hits = [f for f in fams if f.startswith(name)]
    if len(hits) == 1:
        return hits[0]
    raise SystemExit(f"unknown or ambiguous family {name!r}; families: {', '.join(fams)}")


# --- one input -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FuzzInput:
    family: str
    index: int
    seed_file: str
    seed_format: str
    other_file: str
    ops: tuple[tuple[str, int, int], ...]
    format: str | None  # forced format, None = sniffed (ignored for archives)
    data: bytes = field(repr=False)


def make_input(items: Sequence[Seed], *, seed: int, family: str, index: int) -> FuzzInput:
    """Input ``index`` of ``family``: a pure function of (seed, family, index) and the seeds."""
    rng = random.Random(f"{seed}:{family}:{index}")
    if family == ARCHIVE_STRUCT:
        return _archive_structure_input(items, rng, family=family, index=index)
    if family == WAL_DAMAGE:
        return _wal_damage_input(items, rng, family=family, index=index)
    data, name, fmt = items[rng.randrange(len(items))]
    other, other_name, _ = items[rng.randrange(len(items))]
    ops = tuple((rng.choice(MUTATION_KINDS), rng.randrange(1 << 30), rng.randrange(1 << 30))
                for _ in range(rng.randint(1, 4)))
    forced = None if rng.random() < 0.25 else fmt
    return FuzzInput(family=family, index=index, seed_file=name, seed_format=fmt,
                     other_file=other_name, ops=ops, format=forced,
                     data=mutate(data, ops, other=other))


def archive_outcome(data: bytes, *, name: str, tmp_dir: Path) -> tuple[str, str]:
    """Load a (mutated) archive with load_many: every member an outcome, nothing escaping."""
    path = tmp_dir / name
    path.write_bytes(data)
    try:
        outs = list(load_many(path))
        for o in outs:
            if o.result is not None:
                assert_count_rule(o.result)
        bad = [o for o in outs if o.error is not None]
        bugs = [o.error for o in bad if isinstance(o.error, LoaderBug)]
        if bugs:  # a member's loader broke its own count rule: a defect
            return "unhandled", f"LoaderBug: {bugs[0].one_line()[-160:]}"
        wrapped = [o.error for o in bad if o.error is not None and o.error.__cause__ is not None
                   and not isinstance(o.error.__cause__, RoutetraceError)
                   and str(o.error.message).startswith("cannot be read as")]
        if wrapped:
            cause = wrapped[0].__cause__
            return "wrapped", f"{type(cause).__name__}: {str(cause)[:120]}"
        return ("ok" if not bad else "error"), f"{len(outs)} outcomes, {len(bad)} errors"
    except RoutetraceError as exc:
        return "error", exc.one_line()[-160:]
    except Exception as exc:  # the point of fuzzing: report, don't crash the run
        return "unhandled", f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        path.unlink(missing_ok=True)


# --- structure families (#20) ----------------------------------------------------------------

#: member names that collide, escape, need a folder where a file is, or mean a KMZ
_NAMES = ("a.gpx", "a.gpx", "./a.gpx", "a\\b.gpx", "a/b.gpx", "a", "a/", "doc.kml", "DOC.KML",
          "files/x.kml", "x.kml", "../up.gpx", "/abs.gpx", "d/e/f.csv", "d/e", "", "t.csv",
          "n\x1b[2K.gpx", "\u202egpx.kml")
_CONTAINERS = ("zip", "kmz", "tar", "tar.gz")


def _archive_structure_input(items: Sequence[Seed], rng: random.Random, *, family: str,
                             index: int) -> FuzzInput:
    """An archive built from 1-8 members: names from :data:`_NAMES`, payloads from the
    seeds (or empty, all zero, a small bomb), folder and link entries, a container kind,
    and at times cut short. ``ops`` records every choice, so the input replays."""
    kind = rng.choice(_CONTAINERS)
    ops: list[tuple[str, int, int]] = [("container", _CONTAINERS.index(kind), 0)]
    members: list[tuple[str, bytes | None]] = []  # None: a symbolic link (tar only)
    for _ in range(rng.randint(1, 8)):
        n, what = rng.randrange(len(_NAMES)), rng.randrange(10)
        ops.append(("member", n, what))
        payload = (items[rng.randrange(len(items))][0] if what < 6 else b"" if what == 6
                   else b"\x00" * 4096 if what == 7 else b"\x00" * (2 << 20) if what == 8 else None)
        members.append((_NAMES[n], payload))
    data = _build_archive(kind, members)
    if rng.random() < 0.15:
        cut = rng.randrange(max(len(data), 1))
        ops.append(("truncate", cut, 0))
        data = data[:cut]
    name = f"input.{kind}"
    return FuzzInput(family=family, index=index, seed_file=name, seed_format=ARCHIVE_STRUCT,
                     other_file="", ops=tuple(ops), format=None, data=data)


def _build_archive(kind: str, members: Sequence[tuple[str, bytes | None]]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    if kind in ("zip", "kmz"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are the point
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, payload in members:
                    if name.endswith("/") or payload is None:
                        zf.writestr(zipfile.ZipInfo(name or "/"), b"")
                    else:
                        zf.writestr(zipfile.ZipInfo(name or "-", date_time=(2025, 10, 24, 0, 0, 0)), payload)
        return buf.getvalue()
    with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w", format=tarfile.GNU_FORMAT) as tf:
        for name, payload in members:
            info = _stable_tarinfo(tarfile.TarInfo(name or "-"))
            if payload is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            elif name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tf.addfile(_stable_tarinfo(info))
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    if kind == "tar.gz":  # gzip's header time is set from the clock: fix it (bytes 4..7)
        raw = bytearray(buf.getvalue())
        raw[4:8] = TAR_MTIME.to_bytes(4, "little")
        return bytes(raw)
    return buf.getvalue()


def _archive_members(path: Path) -> list[str] | None:
    """The regular-file (and link) members an archive lists, or None when unreadable."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return [i.filename for i in zf.infolist() if not i.is_dir()]
        with tarfile.open(path) as tf:
            return [m.name for m in tf if not m.isdir()]
    except Exception:  # a damaged archive: its members cannot be listed
        return None


def archive_structure_outcome(data: bytes, *, name: str, tmp_dir: Path) -> tuple[str, str]:
    """:func:`archive_outcome`, and no silent loss: every member the archive lists is an
    outcome (a source or an error), unless the archive is one outcome as a whole (a KMZ,
    or an archive refused or unreadable as a whole). A member left without one is
    ``unhandled`` ("silent loss")."""
    path = tmp_dir / name
    path.write_bytes(data)
    try:
        listed = _archive_members(path)
        outs = list(load_many(path))
    except Exception as exc:  # the point of fuzzing: report, don't crash the run
        path.unlink(missing_ok=True)
        return "unhandled", f"{type(exc).__name__}: {str(exc)[:160]}"
    path.unlink(missing_ok=True)
    whole = [o for o in outs if o.path == str(path)]
    if not outs:
        return "unhandled", "silent loss: the archive gave no outcome at all"
    if listed and not whole:
        seen = {o.path[len(str(path)) + 1:] for o in outs}
        # a tar bomb's refusal says that the members after it are not read: not silent
        stops = [o.path[len(str(path)) + 1:] for o in outs if o.error is not None
                 and "members after it are not read" in o.error.message]
        unread = set(listed[listed.index(stops[0]) + 1:]) if stops and stops[0] in listed else set()
        lost = [m for m in listed if m not in seen and m not in unread and not (m == "" and any(
            s.startswith("member #") for s in seen))]
        if lost:
            return "unhandled", f"silent loss: member(s) {lost[:3]!r} left no outcome"
    status, detail = archive_outcome(data, name=name, tmp_dir=tmp_dir)
    return status, detail


_WORKER_DB: dict[str, bytes] = {}  # the wal-damage seed's database, set by its input maker

_WAL_OPS = ("flip", "salt", "checksum", "truncate", "drop", "swap", "header", "append", "zero")


def _wal_damage_input(items: Sequence[Seed], rng: random.Random, *, family: str,
                      index: int) -> FuzzInput:
    """The seed's -wal with 1-3 damages: a flipped page byte, a changed salt or checksum,
    cut short, a frame dropped, two frames swapped, a damaged header, bytes appended, a
    zeroed tail. ``other_file`` carries the database's file name."""
    by_name = {name: data for data, name, _ in items}
    _WORKER_DB["db"] = by_name["Photos.sqlite"]  # the database the damaged -wal goes with
    _WORKER_DB["wal"] = by_name["Photos.sqlite-wal"]
    wal = bytearray(by_name["Photos.sqlite-wal"])
    page = int.from_bytes(wal[8:12], "big")
    size = 24 + page
    ops = []
    for _ in range(rng.randint(1, 3)):
        op, a, b = rng.choice(_WAL_OPS), rng.randrange(1 << 30), rng.randrange(1 << 30)
        ops.append((op, a, b))
        wal = _damage_wal(wal, op, a, b, size=size)
    return FuzzInput(family=family, index=index, seed_file="Photos.sqlite-wal",
                     seed_format=WAL_DAMAGE, other_file="Photos.sqlite", ops=tuple(ops),
                     format=None, data=bytes(wal))


def _damage_wal(wal: bytearray, op: str, a: int, b: int, *, size: int) -> bytearray:
    n = max((len(wal) - 32) // size, 1)
    k, j = a % n, b % n
    at = 32 + k * size
    if op == "flip" and at + size <= len(wal):
        wal[at + 24 + b % (size - 24)] ^= 1 << (a % 8)
    elif op in ("salt", "checksum") and at + 24 <= len(wal):
        wal[at + (8 if op == "salt" else 16) + b % 8] ^= 0xFF
    elif op == "truncate":
        wal = wal[:a % (len(wal) + 1)]
    elif op == "drop" and at + size <= len(wal):
        del wal[at:at + size]
    elif op == "swap" and max(at, 32 + j * size) + size <= len(wal) and k != j:
        other = 32 + j * size
        wal[at:at + size], wal[other:other + size] = wal[other:other + size], wal[at:at + size]
    elif op == "header" and len(wal) >= 32:
        wal[a % 32] ^= 0xFF
    elif op == "append":
        wal += bytes((a >> s) & 0xFF for s in range(0, 24, 8)) * (1 + b % 2000)
    elif op == "zero" and len(wal) > 32:
        start = 32 + a % (len(wal) - 32)
        wal[start:] = bytes(len(wal) - start)
    return wal


def _consistent_prefix(wal: bytes) -> bool:
    """True when ``wal`` is the seed's -wal cut at a frame boundary (or empty): a WAL
    captured earlier, whole in itself, whose missing commits nothing can detect."""
    seed = _WORKER_DB["wal"]
    size = 24 + int.from_bytes(seed[8:12], "big")
    return not wal or (seed.startswith(wal) and len(wal) >= 32 and (len(wal) - 32) % size == 0)


def wal_outcome(data: bytes, *, db: str, tmp_dir: Path) -> tuple[str, str]:
    """Load the seed database with the damaged -wal through load_many. ``unhandled`` when
    anything escapes, the count rule breaks, or assets are missing with neither a
    ``-wal/frames`` reject nor a file error ("silent loss"), unless the damaged WAL is the
    seed's cut at a frame boundary (see :func:`_consistent_prefix`)."""
    import shutil

    folder = tmp_dir / "wal-damage"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        (folder / db).write_bytes(_WORKER_DB["db"])
        (folder / f"{db}-wal").write_bytes(data)
        outs = list(load_many(folder))
        (out,) = outs
        if out.error is not None:
            bug = isinstance(out.error, LoaderBug)
            return ("unhandled" if bug else "error"), out.error.one_line()[-160:]
        res = out.result
        assert res is not None
        assert_count_rule(res)
        assets = set(res.events["record"].astype(str)) | set(res.fixes["record"].astype(str))
        wal_rejects = [r for r in res.rejects["record"].astype(str) if "-wal/" in r]
        if len(assets) < 1 + WAL_ASSETS and not wal_rejects and not _consistent_prefix(data):
            return "unhandled", (f"silent loss: {1 + WAL_ASSETS - len(assets)} asset(s) missing "
                                 "and no -wal reject")
        return "ok", f"{len(assets)} assets, {len(wal_rejects)} -wal reject(s)"
    except Exception as exc:
        return "unhandled", f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Hang(BaseException):
    """Raised by SIGPROF in an input using more than --hang-seconds of CPU time (not an
    Exception, so no loader's ``except Exception`` swallows it)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang


def run_input(inp: FuzzInput, *, work: Path, hang_seconds: float = 0.0) -> tuple[str, str, float, float]:
    """Load one input; return (status, detail, wall seconds, CPU seconds)."""
    work.mkdir(parents=True, exist_ok=True)
    alarm = hang_seconds > 0 and threading.current_thread() is threading.main_thread()
    # CPU time, not wall time: on a shared machine a starved input is not a hang
    previous = signal.signal(signal.SIGPROF, _on_alarm) if alarm else None
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if alarm:
            signal.setitimer(signal.ITIMER_PROF, hang_seconds)
        if inp.seed_format == ARCHIVE_STRUCT:
            status, detail = archive_structure_outcome(inp.data, name=inp.seed_file, tmp_dir=work)
        elif inp.seed_format == WAL_DAMAGE:
            status, detail = wal_outcome(inp.data, db=inp.other_file, tmp_dir=work)
        elif inp.seed_format == ARCHIVE:
            status, detail = archive_outcome(inp.data, name=inp.seed_file, tmp_dir=work)
        else:
            status, detail = load_bytes_outcome(inp.data, name=inp.seed_file, tmp_dir=work,
                                                format=inp.format)
    except Hang:
        status, detail = "hang", f"Hang: interrupted after {hang_seconds:g} s of CPU time"
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
    return status, " ".join(detail.split()), time.perf_counter() - t0, time.process_time() - c0


# --- one chunk -------------------------------------------------------------------------------

def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def _peak_mib(reset_ok: bool) -> float:
    if reset_ok:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def run_chunk(items: Sequence[Seed], *, family: str, seed: int, start: int, count: int,
              work: Path, hang_seconds: float = 0.0) -> dict[str, Any]:
    """Run inputs [start, start+count) of one family; return its ledger record."""
    work = work / str(os.getpid()) / _safe(family)
    reset_ok = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    counts: collections.Counter[str] = collections.Counter()
    slow, slowest, slowest_index = 0, 0.0, start
    examples: dict[str, dict[str, Any]] = {}
    flagged: list[dict[str, Any]] = []
    for i in range(start, start + count):
        inp = make_input(items, seed=seed, family=family, index=i)
        status, detail, dt, cpu = run_input(inp, work=work, hang_seconds=hang_seconds)
        counts[status] += 1
        slow += cpu > SLOW_S
        if cpu > slowest:
            slowest, slowest_index = cpu, i
        if status in ("unhandled", "wrapped", "hang"):
            key = f"{status}: {detail.split(':')[0]}"
            examples.setdefault(key, {"index": i, "seed_file": inp.seed_file,
                                      "ops": [list(o) for o in inp.ops], "format": inp.format,
                                      "detail": detail[:200]})
        if (status in ("unhandled", "hang") or cpu > SLOW_S) and len(flagged) < MAX_FLAGGED:
            flagged.append({"index": i, "status": status, "seconds": round(dt, 3),
                            "cpu_seconds": round(cpu, 3), "detail": detail[:200]})
    return {
        "family": family, "start": start, "count": count, "seed": seed,
        "corpus": corpus_id(items), "seeds": len(items),
        "counts": {s: counts[s] for s in STATUSES},
        "slow": slow, "slowest_s": round(slowest, 4), "slowest_index": slowest_index,
        "peak_mib": round(_peak_mib(reset_ok), 1), "peak_kind": "VmHWM" if reset_ok else "ru_maxrss",
        "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3),
        "examples": examples, "flagged": flagged,
        "loader_bug_is_unhandled": True,  # chunks without this key counted a LoaderBug as error
    }


# --- ledger and coverage -----------------------------------------------------------------------

def read_ledger(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(records, number of unreadable lines, e.g. one cut short by a killed writer)."""
    if not path.exists():
        return [], 0
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("family"), str) and \
                isinstance(rec.get("start"), int) and isinstance(rec.get("count"), int):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def append_ledger(path: Path, rec: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open ranges, as sorted disjoint ranges."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def gaps(merged: Sequence[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of [lo, hi) that ``merged`` (sorted, disjoint) does not cover."""
    out, pos = [], lo
    for a, b in merged:
        if b <= pos:
            continue
        if a >= hi:
            break
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < hi:
        out.append((pos, hi))
    return out


def covered_ranges(records: Iterable[dict[str, Any]], seed: int) -> dict[str, list[tuple[int, int]]]:
    by: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for r in records:
        if r.get("seed") == seed:
            by[r["family"]].append((r["start"], r["start"] + r["count"]))
    return {f: merge(rs) for f, rs in by.items()}


def plan(families: Sequence[str], covered: dict[str, list[tuple[int, int]]], *, lo: int, hi: int,
         chunk: int, resume: bool) -> list[tuple[str, int, int]]:
    """Chunks (family, start, count) to run, round-robin: always the family with the fewest
    inputs covered so far (counting the chunks already planned) goes next.

    With ``resume`` only the gaps of [lo, hi) not in the ledger; otherwise all of [lo, hi).
    Chunk boundaries fall on multiples of ``chunk`` where the range allows.
    """
    todo: dict[str, list[tuple[int, int]]] = {}
    for f in families:
        ranges = gaps(covered.get(f, []), lo, hi) if resume else [(lo, hi)]
        pieces = []
        for a, b in ranges:
            pos = a
            while pos < b:
                end = min(b, (pos // chunk + 1) * chunk)
                pieces.append((pos, end - pos))
                pos = end
        if pieces:
            todo[f] = pieces
    # (inputs covered, chunks given this run, family order, family): ties go round-robin
    heap = [(sum(b - a for a, b in covered.get(f, [])), 0, n, f)
            for n, f in enumerate(families) if f in todo]
    heapq.heapify(heap)
    out = []
    while heap:
        done, turns, n, f = heapq.heappop(heap)
        start, count = todo[f].pop(0)
        out.append((f, start, count))
        if todo[f]:
            heapq.heappush(heap, (done + count, turns + 1, n, f))
    return out


# --- running -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(corpus: Corpus, work: Path, seed: int, hang_seconds: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warnings.simplefilter("error")
    _WORKER.update(corpus=corpus, work=work, seed=seed, hang_seconds=hang_seconds)


def _worker_chunk(family: str, start: int, count: int) -> dict[str, Any]:
    return run_chunk(_WORKER["corpus"][family], family=family, seed=_WORKER["seed"], start=start,
                     count=count, work=_WORKER["work"], hang_seconds=_WORKER["hang_seconds"])


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.flag = True
        print(f"signal {signum}: stopping after the chunk(s) in progress", flush=True)


def execute(chunks: Sequence[tuple[str, int, int]], corpus: Corpus, *, seed: int, jobs: int,
            ledger: Path, work: Path, max_seconds: float, hang_seconds: float,
            stop: _Stop, command: str | None = None) -> list[dict[str, Any]]:
    """Run the chunks in order (``jobs`` processes), append each finished one to the ledger."""
    deadline = time.monotonic() + max_seconds
    commit, python = git_commit(), sys.version.split()[0]
    command, dirty = command or command_line(), uncommitted(MEASURES)
    done: list[dict[str, Any]] = []

    def finish(rec: dict[str, Any]) -> None:
        rec.update(python=python, commit=commit, command=command, uncommitted=dirty,
                   finished_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        append_ledger(ledger, rec)
        done.append(rec)
        c = rec["counts"]
        rate = rec["count"] / rec["cpu_seconds"] if rec["cpu_seconds"] else float("nan")
        print(f"{rec['finished_utc']} {rec['family']} [{rec['start']}, {rec['start'] + rec['count']}): "
              f"ok {c['ok']} error {c['error']} wrapped {c['wrapped']} unhandled {c['unhandled']} "
              f"hang {c['hang']} >10s {rec['slow']} | {rec['seconds']:.1f} s wall, "
              f"{rate:.1f} inputs/CPU-s, slowest {rec['slowest_s']:.2f} s", flush=True)

    def may_start() -> bool:
        return not stop.flag and time.monotonic() < deadline

    if jobs <= 1:
        for f, start, count in chunks:
            if not may_start():
                break
            print(f"run {f} [{start}, {start + count})", flush=True)
            finish(run_chunk(corpus[f], family=f, seed=seed, start=start, count=count, work=work,
                             hang_seconds=hang_seconds))
        return done

    ctx = multiprocessing.get_context("fork") if sys.platform != "win32" else None
    queue = list(chunks)
    with warnings.catch_warnings():
        # Python >= 3.12 warns on fork() in a threaded parent; the workers reset their filters
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(corpus, work, seed, hang_seconds)) as pool:
            running: set[Future[dict[str, Any]]] = set()
            inflight: dict[Future[dict[str, Any]], tuple[str, int, int]] = {}
            while queue or running:
                while queue and len(running) < jobs and may_start():
                    f, start, count = queue.pop(0)
                    print(f"run {f} [{start}, {start + count})", flush=True)
                    fut = pool.submit(_worker_chunk, f, start, count)
                    running.add(fut)
                    inflight[fut] = (f, start, count)
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    try:
                        finish(fut.result())
                    except BrokenProcessPool:
                        # a worker died (a crash in a C parser?): the chunks in flight name
                        # the suspects; replay their inputs one by one to find it
                        suspects = sorted(inflight[x] for x in finished | running)
                        print("a worker process died; chunks in flight: "
                              + ", ".join(f"{f} [{a}, {a + c})" for f, a, c in suspects),
                              flush=True)
                        raise
    return done


# --- report --------------------------------------------------------------------------------------

@dataclass
class FamilySummary:
    family: str
    seeds: int = 0
    distinct: int = 0  # union of the ledger's index ranges
    counted: int = 0  # inputs in the outcome columns (each once)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    slow: int = 0
    slowest_s: float = 0.0
    slowest_index: int | None = None
    peak_mib: float = 0.0
    cpu_seconds: float = 0.0  # every chunk run, overlaps included
    wall_seconds: float = 0.0
    inputs_run: int = 0  # every chunk run, overlaps included
    corpora: set[str] = field(default_factory=set)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    flagged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """Inputs per CPU-second, measured."""
        return self.inputs_run / self.cpu_seconds if self.cpu_seconds > 0 else None

    def cpu_hours_left(self, target: int) -> float | None:
        rate = self.rate
        return None if rate is None else max(0, target - self.distinct) / rate / 3600


def summarize(records: Sequence[dict[str, Any]], *, seed: int,
              families: Mapping[str, int] | Iterable[str] = ()) -> dict[str, FamilySummary]:
    """Per family, from the ledger records of ``seed``. Outcome counts take each input once:
    records are taken latest first, and one overlapping a record already taken is left out
    of the outcome columns (its time still counts in CPU seconds and the rate).

    ``families``: families to list even when the ledger has none of them, optionally mapped
    to their number of seed files (used where the ledger does not say)."""
    out = {f: FamilySummary(f) for f in families}
    mine = [r for r in records if r.get("seed") == seed]
    taken: dict[str, list[tuple[int, int, dict[str, Any]]]] = collections.defaultdict(list)
    for rec in reversed(mine):
        s = out.setdefault(rec["family"], FamilySummary(rec["family"]))
        a, b = rec["start"], rec["start"] + rec["count"]
        s.inputs_run += rec["count"]
        s.cpu_seconds += rec.get("cpu_seconds", 0.0)
        s.wall_seconds += rec.get("seconds", 0.0)
        s.corpora.add(rec.get("corpus", "?"))
        if not s.seeds:
            s.seeds = rec.get("seeds", 0)  # the latest record's
        for key, ex in rec.get("examples", {}).items():
            if key not in s.examples or ex["index"] < s.examples[key]["index"]:
                s.examples[key] = ex
        later = [(x, y, r) for x, y, r in taken[rec["family"]] if a < y and x < b]
        for fl in rec.get("flagged", []):
            rerun = next((r for x, y, r in later if x <= fl["index"] < y), None)
            if rerun is not None:  # a later run of the same input: say what it found
                again = any(g["index"] == fl["index"] for g in rerun.get("flagged", []))
                fl = {**fl, "rerun": {"commit": (rerun.get("commit") or "unknown")[:10], "again": again}}
            s.flagged.append(fl)
        if later:
            continue  # an overlapped (older) record: its inputs are counted in a later one
        taken[rec["family"]].append((a, b, rec))
        s.counted += rec["count"]
        for st in STATUSES:
            s.counts[st] += rec.get("counts", {}).get(st, 0)
        s.slow += rec.get("slow", 0)
        if rec.get("slowest_s", 0.0) >= s.slowest_s:
            s.slowest_s, s.slowest_index = rec.get("slowest_s", 0.0), rec.get("slowest_index")
        s.peak_mib = max(s.peak_mib, rec.get("peak_mib", 0.0))
    for f, s in out.items():
        ranges = [(r["start"], r["start"] + r["count"]) for r in mine if r["family"] == f]
        s.distinct = sum(b - a for a, b in merge(ranges))
        s.flagged.sort(key=lambda x: x["index"])
        if not s.seeds and isinstance(families, Mapping):
            s.seeds = families.get(f, 0)
    return dict(sorted(out.items()))


def _hours(x: float) -> str:
    return f"{x:.1f}" if x >= 0.05 or x == 0 else f"{x:.2f}"


#: what the fuzz report measures (git pathspecs): the harness and every loader
MEASURES = ("bench/fuzz.py", "loaders/")


def sweep_commit(records: Sequence[dict[str, Any]], *, seed: int) -> str | None:
    """The commit of the newest chunk of ``seed`` (the ledger is appended as chunks finish)."""
    mine = [r for r in records if r.get("seed") == seed and r.get("commit")]
    return str(mine[-1]["commit"]) if mine else None


def sweep_provenance(records: Sequence[dict[str, Any]], *, commit: str) -> str:
    """The report's provenance line: the sweep's commit and command (what produced its
    figures), the measured code's fingerprint only when the tree is still that commit."""
    at = [r for r in records if r.get("commit") == commit]
    commands = collections.Counter(r.get("command") or "python bench/fuzz.py" for r in at)
    dirty = sorted({p for r in at for p in r.get("uncommitted", [])})
    rec: dict[str, Any] = {
        "commit": commit, "command": commands.most_common(1)[0][0] if commands else "unknown",
        "measures": list(MEASURES), "uncommitted": dirty,
        "machine_load": "not a timing figure (times per input are CPU seconds of that input)"}
    if commit == head_commit() and not dirty and not uncommitted(MEASURES):
        rec["code_sha256"] = code_fingerprint(MEASURES)
    return "<!-- provenance: " + json.dumps(rec, sort_keys=True) + " -->"


def render_sweep(records: Sequence[dict[str, Any]], *, seed: int, commit: str,
                 families: Mapping[str, int] | Iterable[str] = ()) -> list[str]:
    """The report's first section: only the chunks run at ``commit``, each input once; the
    ``families`` it did not run are listed with 0 inputs and named."""
    at = [r for r in records if r.get("seed") == seed and r.get("commit") == commit]
    summ = summarize(at, seed=seed, families=families)
    missing = [s.family for s in summ.values() if s.distinct == 0]
    tot: collections.Counter[str] = collections.Counter()
    rows = []
    for s in summ.values():
        c = s.counts
        rows.append(f"| {s.family} | {s.distinct:,} | {c['ok']:,} | {c['error']:,} | {c['wrapped']:,} | "
                    f"{c['unhandled']} | {c['hang']} | {s.slow} | {s.slowest_s:.2f} | {s.peak_mib:.0f} | "
                    f"{s.cpu_seconds:,.0f} |")
        tot.update(distinct=s.distinct, slow=s.slow, **c)
    sizes = [s.distinct for s in summ.values()]
    cpu = sum(s.cpu_seconds for s in summ.values())
    slowest = max(summ.values(), key=lambda s: s.slowest_s, default=None)
    return [
        f"## Sweep at commit {commit[:12]}", "",
        f"**At commit {commit[:12]}: {tot['distinct']:,} distinct inputs over {len(summ)} families "
        f"({min(sizes, default=0):,} to {max(sizes, default=0):,} each); unhandled {tot['unhandled']}, "
        f"hangs {tot['hang']}, inputs over 10 s {tot['slow']}"
        + (f"; slowest input {slowest.slowest_s:.2f} s CPU ({slowest.family} #{slowest.slowest_index})"
           if slowest is not None and slowest.slowest_index is not None else "")
        + f"; {cpu / 3600:.2f} CPU-hours.**"
        + (f" Not run at this commit: {len(missing)} families ({', '.join(missing)})." if missing else ""),
        "",
        "Only the chunks run at this one commit (`--sweep N` runs inputs [0, N) of every family "
        "again there); the history below adds every earlier run.", "",
        "| family (format) | inputs (distinct) | ok | error | wrapped | unhandled | hang | > 10 s "
        "| slowest (s) | peak MiB | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        f"| **total** | **{tot['distinct']:,}** | {tot['ok']:,} | {tot['error']:,} | {tot['wrapped']:,} | "
        f"**{tot['unhandled']}** | **{tot['hang']}** | **{tot['slow']}** | "
        f"{slowest.slowest_s if slowest else 0:.2f} | {max((s.peak_mib for s in summ.values()), default=0):.0f} "
        f"| {cpu:,.0f} |",
        "", "## All runs (history)", "",
    ]


def render_report(records: Sequence[dict[str, Any]], *, seed: int, target: int,
                  families: Mapping[str, int] | Iterable[str] = (), ledger_name: str = "fuzz_ledger.jsonl",
                  bad_lines: int = 0) -> str:
    summ = summarize(records, seed=seed, families=families)
    mine = [r for r in records if r.get("seed") == seed]
    others = len(records) - len(mine)
    reached = [s for s in summ.values() if s.distinct >= target]
    measured = [s for s in summ.values() if s.rate is not None]
    unmeasured = [s.family for s in summ.values() if s.rate is None]
    left = sum(s.cpu_hours_left(target) or 0.0 for s in measured)
    head = (f"**{len(reached)} of {len(summ)} families have reached the target of {target:,} distinct "
            f"inputs; about {_hours(left)} CPU-hours of fuzzing remain at each family's measured rate"
            + (f" (plus {len(unmeasured)} families not measured yet: {', '.join(unmeasured)})"
               if unmeasured else "") + ".**")
    commits = collections.Counter((r.get("commit") or "unknown")[:10] for r in mine)
    runs = sum(r["count"] for r in mine)
    strict = sum(r["count"] for r in mine if r.get("loader_bug_is_unhandled"))
    pythons = collections.Counter(r.get("python", "?") for r in mine)
    newest = sweep_commit(records, seed=seed)
    lines = [
        "# Mutation fuzz run (issue #10)", "",
        *([sweep_provenance(records, commit=newest), "", *render_sweep(records, seed=seed, commit=newest,
                                                                  families=families)]
          if newest else []),
        head, "",
        f"Seed {seed}. Input i of family F is reproducible on its own: `random.Random(\"{seed}:F:i\")` "
        "picks the seed file, splice partner, 1-4 mutations and forced/sniffed format; replay one with "
        f"`python bench/fuzz.py --seed {seed} --replay F:i`. Built from `{ledger_name}` "
        f"({len(mine)} chunks for this seed" + (f", {others} for other seeds not shown" if others else "")
        + (f", {bad_lines} unreadable lines skipped" if bad_lines else "") + "); routetrace commits: "
        + (", ".join(f"{c} ({n} chunks)" for c, n in commits.most_common()) or "none")
        + "; python " + (", ".join(sorted(pythons)) or "?") + "; warnings are errors.", "",
        "| family (format) | seeds | inputs (distinct) | target reached | ok | error | wrapped "
        "| unhandled | hang | > 10 s | slowest (s) | peak MiB | CPU s | inputs / CPU s | CPU h left |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    tot: collections.Counter[str] = collections.Counter()
    for s in summ.values():
        rate, hleft = s.rate, s.cpu_hours_left(target)
        reach = "yes" if s.distinct >= target else f"no ({100 * s.distinct / target:.1f} %)"
        c = s.counts
        lines.append(
            f"| {s.family} | {s.seeds or ''} | {s.distinct:,} | {reach} | {c['ok']:,} | {c['error']:,} | "
            f"{c['wrapped']:,} | {c['unhandled']} | {c['hang']} | {s.slow} | {s.slowest_s:.2f} | "
            f"{s.peak_mib:.0f} | {s.cpu_seconds:,.0f} | "
            f"{'' if rate is None else f'{rate:.1f}'} | {'' if hleft is None else _hours(hleft)} |")
        tot.update(distinct=s.distinct, counted=s.counted, slow=s.slow, **c)
    slowest = max(summ.values(), key=lambda s: s.slowest_s, default=None)
    cpu = sum(s.cpu_seconds for s in summ.values())
    wall = sum(s.wall_seconds for s in summ.values())
    peak = max((s.peak_mib for s in summ.values()), default=0.0)
    lines.append(
        f"| **total** | | **{tot['distinct']:,}** | **{len(reached)} of {len(summ)}** | {tot['ok']:,} | "
        f"{tot['error']:,} | {tot['wrapped']:,} | **{tot['unhandled']}** | **{tot['hang']}** | "
        f"**{tot['slow']}** | {slowest.slowest_s if slowest else 0:.2f} | {peak:.0f} | {cpu:,.0f} | | "
        f"{_hours(left)} |")
    lines += [
        "",
        f"Total: {tot['distinct']:,} distinct inputs of the {len(summ) * target:,} targeted "
        f"({len(summ)} families × {target:,}); unhandled {tot['unhandled']}, hangs {tot['hang']}, "
        f"inputs over 10 s {tot['slow']}"
        + (f"; slowest input {slowest.slowest_s:.2f} s ({slowest.family} #{slowest.slowest_index})"
           if slowest and slowest.slowest_index is not None else "")
        + f"; {cpu / 3600:.2f} CPU-hours and {wall / 3600:.2f} wall-hours spent.",
        "",
        "`inputs (distinct)` is the union of the ledger's index ranges (no input counted twice); the "
        "outcome columns count each input once (where chunks overlap, the latest run). `ok`: a "
        "LoadResult obeying the count rule; `error`: a deliberate RoutetraceError; `wrapped`: a "
        "parser's own exception turned into CorruptSource by the loader boundary (handled, a clear "
        "per-file error, but a hardening target); `unhandled`: anything else escaping, or a "
        "LoaderBug, a loader breaking its own count rule (a defect; "
        f"{strict:,} of the {runs:,} inputs run were classified so: the chunks before counted a "
        "count-rule break, then a plain RoutetraceError, as `error`); "
        "`hang`: interrupted by the harness's CPU-time alarm. `> 10 s` and `slowest` are CPU seconds "
        "per input (process time: a busy shared machine does not inflate them; chunks run before "
        "this change measured wall time, which is never less). `peak MiB`: the largest peak "
        "resident memory of a fuzzing process during one chunk of the family (imports included). "
        "`CPU s` and the rate include every chunk run; `CPU h left` = inputs still missing / rate.",
    ]
    notes = []
    for s in summ.values():
        if s.counted != s.distinct:
            notes.append(f"- {s.family}: {s.distinct - s.counted:,} covered inputs lie only in chunks "
                         "partly overlapped by later runs, so they are missing from the outcome columns.")
        if len(s.corpora) > 1:
            notes.append(f"- {s.family}: chunks were run with {len(s.corpora)} different seed sets "
                         f"({', '.join(sorted(s.corpora))}); an index names a different input in each.")
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", "## Unhandled, hanging and slow inputs", ""]
    flagged = [(s.family, x) for s in summ.values() for x in s.flagged]
    def rerun(x: dict[str, Any]) -> str:
        r = x.get("rerun")
        if r is None:
            return ""
        return (f" — **re-run at {r['commit']}: flagged again**" if r["again"] else
                f" — fixed: re-run at {r['commit']}, not flagged again (the table counts that run)")
    lines += [f"- {f} #{x['index']}: {x['status']}, {x['seconds']:.2f} s wall / {x['cpu_seconds']:.2f} s "
              f"CPU — {x['detail']} — replay: `python bench/fuzz.py --seed {seed} --replay '{f}:{x['index']}'`"
              + rerun(x) for f, x in flagged] or ["- none"]
    lines += ["", "## Exception types met (first example each)", "",
              "The example is the lowest-numbered input of that kind; replay it with "
              f"`python bench/fuzz.py --seed {seed} --replay FAMILY:INDEX`.", ""]
    ex = [f"- {s.family}: {k} — e.g. #{e['index']} {e['seed_file']} "
          f"ops={[tuple(o) for o in e['ops']]} format={e['format'] or 'sniffed'}: {e['detail']}"
          for s in summ.values() for k, e in sorted(s.examples.items())]
    lines += ex or ["- none"]
    return "\n".join(lines) + "\n"


def write_report(ledger: Path, out: Path, *, seed: int, target: int,
                 families: Mapping[str, int] | Iterable[str] = ()) -> str:
    records, bad = read_ledger(ledger)
    text = render_report(records, seed=seed, target=target, families=families,
                         ledger_name=ledger.name, bad_lines=bad)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


# --- command line ----------------------------------------------------------------------------------

def replay(corpus: Corpus, spec: str, *, seed: int, work: Path, hang_seconds: float,
           out: Path | None) -> int:
    fam_name, _, idx = spec.rpartition(":")
    if not fam_name or not idx.isdigit():
        raise SystemExit(f"--replay wants FAMILY:INDEX, got {spec!r}")
    family = resolve_family(fam_name, corpus)
    items = corpus[family]
    inp = make_input(items, seed=seed, family=family, index=int(idx))
    print(f"family {family!r}, input {inp.index} (seed {seed}, seed set {corpus_id(items)})")
    print(f"seed file: {inp.seed_file} ({inp.seed_format}); splice partner: {inp.other_file}")
    print(f"ops: {list(inp.ops)}")
    print(f"format: {'load_many' if inp.seed_format == ARCHIVE else inp.format or 'sniffed'}")
    print(f"mutated: {len(inp.data)} bytes, sha256 {hashlib.sha256(inp.data).hexdigest()}")
    if out is not None:
        out.write_bytes(inp.data)
        print(f"mutated bytes written to {out}")
    status, detail, dt, cpu = run_input(inp, work=work, hang_seconds=hang_seconds)
    print(f"outcome: {status} — {detail} ({dt:.3f} s wall, {cpu:.3f} s CPU)")
    return 1 if status in ("unhandled", "hang") or cpu > SLOW_S else 0


def main(argv: Sequence[str] | None = None, *, corpus: Corpus | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--families", default="", help="comma-separated families (or unique prefixes)")
    ap.add_argument("--per-family", type=int, default=TARGET, help="target inputs per family")
    ap.add_argument("--start", type=int, default=None, help="first input index of the shard")
    ap.add_argument("--count", type=int, default=None, help="inputs in the shard (default: up to --per-family)")
    ap.add_argument("--resume", action="store_true", help="skip inputs already in the ledger")
    ap.add_argument("--sweep", type=int, default=None, metavar="N",
                    help="run inputs [0, N) of every family at this commit (skips only what "
                         "this commit already ran)")
    ap.add_argument("--jobs", type=int, default=1, help="processes; a family's range is split among them")
    ap.add_argument("--chunk", type=int, default=500, help="inputs per ledger line")
    ap.add_argument("--max-seconds", type=float, default=float("inf"),
                    help="wall budget: no chunk starts after it")
    ap.add_argument("--hang-seconds", type=float, default=120.0,
                    help="interrupt an input after this long (0: never)")
    ap.add_argument("--ledger", type=Path, default=LEDGER)
    ap.add_argument("--report-out", type=Path, default=REPORT)
    ap.add_argument("--report", action="store_true", help="only rewrite the report from the ledger")
    ap.add_argument("--replay", metavar="FAMILY:I", help="re-run one input and print its ops and outcome")
    ap.add_argument("--replay-out", type=Path, default=None, help="with --replay: write the mutated bytes")
    args = ap.parse_args(argv)
    if args.chunk < 1 or args.jobs < 1:
        ap.error("--chunk and --jobs must be >= 1")
    stop = _Stop()
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM,)} if in_main else {}
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="routetrace-fuzz-") as tmpd:
            warnings.simplefilter("error")  # as in the test suite: a warning is a defect too
            tmp = Path(tmpd)
            corpus = corpus if corpus is not None else load_corpus(tmp)
            if args.replay:
                return replay(corpus, args.replay, seed=args.seed, work=tmp / "work",
                              hang_seconds=args.hang_seconds, out=args.replay_out)
            if args.report:
                write_report(args.ledger, args.report_out, seed=args.seed, target=args.per_family,
                             families={f: len(v) for f, v in corpus.items()})
                print(f"report written to {args.report_out}")
                return 0
            wanted = [resolve_family(f, corpus) for f in filter(None, args.families.split(","))]
            families = wanted or list(corpus)
            lo = args.start or 0
            hi = lo + args.count if args.count is not None else max(lo, args.per_family)
            records, _ = read_ledger(args.ledger)
            if args.sweep is not None:  # this commit's own coverage decides what is left
                here = git_commit()
                records = [r for r in records if here is not None and r.get("commit") == here]
                lo, hi, args.resume = 0, args.sweep, True
            chunks = plan(families, covered_ranges(records, args.seed), lo=lo, hi=hi,
                          chunk=args.chunk, resume=args.resume)
            print(f"{len(chunks)} chunks ({sum(c for _, _, c in chunks):,} inputs) over "
                  f"{len({f for f, _, _ in chunks})} families; {args.jobs} process(es); "
                  f"ledger {args.ledger}", flush=True)
            try:
                done = execute(chunks, corpus, seed=args.seed, jobs=args.jobs, ledger=args.ledger,
                               work=tmp / "work", max_seconds=args.max_seconds,
                               hang_seconds=args.hang_seconds, stop=stop,
                               command=" ".join(["python bench/fuzz.py", *(argv if argv is not None
                                                                           else sys.argv[1:])]))
            except KeyboardInterrupt:
                print("interrupted: the chunk in progress is lost, finished ones are in the ledger")
                done = []
            except BrokenProcessPool:
                write_report(args.ledger, args.report_out, seed=args.seed, target=args.per_family,
                             families={f: len(v) for f, v in corpus.items()})
                return 2
            write_report(args.ledger, args.report_out, seed=args.seed, target=args.per_family,
                         families={f: len(v) for f, v in corpus.items()})
            bad = sum(r["counts"]["unhandled"] + r["counts"]["hang"] + r["slow"] for r in done)
            print(f"{len(done)} chunks, {sum(r['count'] for r in done):,} inputs this run; unhandled/"
                  f"hang/slow inputs this run: {bad}; report written to {args.report_out}")
            return 1 if bad else 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
