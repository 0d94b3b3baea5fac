"""Read-only access to evidence files: hashing, private SQLite copies, safe archives.

Nothing in routetrace writes to, or beside, an input. SQLite databases are copied together
with their ``-wal``, ``-shm`` and ``-journal`` companions into a private temporary folder
and opened there read-only: the WAL holds committed rows, so reading the main file alone
gives wrong counts, and opening the original (even read-only) may create or change its
``-shm``. Archives are read member by member into a private folder with size, ratio and
path checks; no member is ever written outside that folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from .errors import CorruptSource, UnsafeArchive

__all__ = [
    "ArchiveLimits",
    "SQLITE_COMPANIONS",
    "companions",
    "extract_archive",
    "is_archive",
    "private_sqlite",
    "sha256_file",
]

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of the file's bytes as 64 lower-case hex digits (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def companions(path: str | os.PathLike[str]) -> list[Path]:
    """Return the existing SQLite companion files (``-wal``, ``-shm``, ``-journal``) of ``path``."""
    p = Path(path)
    return [Path(str(p) + sfx) for sfx in SQLITE_COMPANIONS if Path(str(p) + sfx).is_file()]


class EvidenceConnection(sqlite3.Connection):
    """A connection to a private copy of a SQLite evidence file (see :func:`private_sqlite`).

    ``invalid_text`` counts the TEXT values read that were not valid UTF-8 (a damaged or
    hostile file); they are decoded with U+FFFD for the bad bytes instead of failing the
    whole file, and loaders state the count in the source's ``time_basis`` notes.
    """

    invalid_text: int = 0

    def decode_text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_text += 1
            return raw.decode("utf-8", errors="replace")


def _unreadable(exc: Exception, src: Path) -> CorruptSource:
    # SQLite's own message about a damaged schema can quote bytes that are not UTF-8
    why = "damaged schema: SQLite's error message is not UTF-8" if isinstance(exc, UnicodeDecodeError) else exc
    return CorruptSource(f"not a readable SQLite database ({why})", path=str(src))


def invalid_text_note(con: sqlite3.Connection) -> str:
    """``"; N TEXT value(s) ..."`` for a source's notes when ``con`` met invalid UTF-8, else ``""``."""
    n = getattr(con, "invalid_text", 0)
    return (f"; {n} TEXT value(s) not valid UTF-8 (damaged file?), read with U+FFFD for the bad "
            "bytes") if n else ""


#: at most this many unreadable key ranges per table before :func:`read_rows` gives up on it
MAX_FAULTS = 1000


def read_rows(con: sqlite3.Connection, table: str, select: str, *, key: str, batch: int,
              faults: list[tuple[str, str]], where: str = "",
              name: str | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the rows of ``SELECT select FROM table`` in ``key`` order, reading past damage.

    ``select`` starts with ``key``, an integer key (``Z_PK``, the rowid in Core Data tables,
    so the order costs no sort). When SQLite finds the file malformed part-way, no row read
    so far is lost: reading goes on row by row; where the next row cannot be reached in
    sequence it is looked up on its own (a fresh descent of the b-tree), and where it cannot
    be read at all the next readable key is found by probing ever larger steps and halving
    back. Each key range that cannot be read is appended to ``faults`` as ``(record,
    reason)`` (``"ZTABLE/Z_PK 41..87"``): one rejected record for the count rule, since how
    many rows it held is unknown. A damaged b-tree can return rows out of key order: each is
    handed out once (its key may repeat one read in order: callers reject repeated keys);
    when a later round meets it again, or a key is not an integer, the row is left out and
    counted in one more fault. After :data:`MAX_FAULTS` ranges the rest of the table is one
    last fault.

    ``table`` may be a join (``"ZOBJECT o JOIN ZSTRUCTUREDMETADATA m ON ..."``) with ``key``
    the driving table's key (``"o.Z_PK"``), ``where`` a condition on the rows wanted, and
    ``name`` the table that faults are named after (``"ZOBJECT/Z_PK 41..87"``): a damaged
    page of a joined table then costs the driving rows that join to it.

    Example: ``for rows in read_rows(con, "ZT", "Z_PK, ZA", key="Z_PK", batch=50_000,
    faults=rejects): ...``
    """
    sql = _KeyedQuery(select, table, key, where)
    name = table if name is None else name
    left_out = yield from _read_rows(con, sql, name, batch=batch, faults=faults)
    if left_out:
        faults.append((f"{name}/rows out of {sql.key_name} order",
                       f"{left_out} row(s) returned again out of key order by a damaged "
                       "b-tree, or without an integer key: left out"))


def read_frame(con: sqlite3.Connection, table: str, select: str, columns: Sequence[str], *,
               key: str, faults: list[tuple[str, str]], where: str = "", name: str | None = None,
               batch: int = 50_000) -> pd.DataFrame:
    """:func:`read_rows` gathered into a DataFrame named ``columns``, typed as
    :func:`pandas.read_sql_query` types a query's rows (``coerce_float``; no dtype given).

    Example: ``df = read_frame(con, "WifiLocation", "rowid, Latitude", ["rid", "lat"],
    key="rowid", faults=rejects)``; an unreadable key range is one ``faults`` entry.
    """
    rows = [r for chunk in read_rows(con, table, select, key=key, batch=batch, faults=faults,
                                     where=where, name=name) for r in chunk]
    return pd.DataFrame.from_records(rows, columns=list(columns), coerce_float=True)


@dataclass(frozen=True)
class _KeyedQuery:
    """``SELECT select FROM source [WHERE where AND key op ?] ORDER BY key``."""

    select: str
    source: str
    key: str
    where: str = ""

    @property
    def key_name(self) -> str:  # "o.Z_PK" -> "Z_PK", for fault records
        return self.key.rpartition(".")[2]

    def sql(self, op: str | None = None, limit: int | None = None) -> str:
        conds = [c for c in (self.where and f"({self.where})", op and f"{self.key} {op} ?") if c]
        return (f"SELECT {self.select} FROM {self.source}"
                + (f" WHERE {' AND '.join(conds)}" if conds else "") + f" ORDER BY {self.key}"
                + ("" if limit is None else f" LIMIT {limit}"))


def _read_rows(con: sqlite3.Connection, q: _KeyedQuery, name: str, *, batch: int,
               faults: list[tuple[str, str]]) -> Generator[list[tuple[Any, ...]], None, int]:
    """:func:`read_rows` without its last fault; returns how many rows it left out."""
    last: int | None = None  # key of the last row handed out
    left_out = 0
    careful = False  # after a failure: one row at a time
    pending: list[tuple[Any, ...]] = []
    n_faults = 0

    odd: set[int] = set()  # keys met out of order: handed out once, later rounds may meet them again

    def take(rows: list[tuple[Any, ...]]) -> None:
        nonlocal last, left_out
        for row in rows:
            k = row[0]
            if not isinstance(k, int) or isinstance(k, bool):
                left_out += 1
            elif last is None or k > last:
                pending.append(row)
                last = k
            elif k not in odd:  # out of order (a damaged b-tree): kept once; its key may repeat
                odd.add(k)
                pending.append(row)
            else:
                left_out += 1

    while True:
        try:
            cur = (con.execute(q.sql()) if last is None else con.execute(q.sql(">"), (last,)))
            while rows := cur.fetchmany(1 if careful else batch):
                if not careful:  # the fast path: rows as SQLite gives them, `last` from the batch's end
                    k = rows[-1][0]
                    if isinstance(k, int) and not isinstance(k, bool) and (last is None or k > last):
                        last = k
                    yield rows
                    continue
                take(rows)
                if len(pending) >= batch:
                    yield pending
                    pending = []
            if pending:
                yield pending
            return left_out
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such "):
                raise  # "no such table/column": the query is wrong for this file, not a damaged page
            if pending:
                yield pending
                pending = []
            if not careful:
                careful = True  # re-read from `last`, row by row, to stop right at the damage
                continue
            after = -(2**63) if last is None else last
            row = _next_readable_row(con, q, after)
            key = q.key_name
            reason = f"rows unreadable: {exc} (a damaged page; how many rows it held is unknown)"
            if row is None or n_faults >= MAX_FAULTS:
                span = f"{key} (all)" if last is None else f"{key} > {last}"
                more = ("no later key could be read" if row is None else
                        f"more than {MAX_FAULTS} damaged ranges: the rest is not read")
                faults.append((f"{name}/{span}", f"{reason}; {more}"))
                return left_out
            k = row[0]
            if k > after + 1:
                span = (f"{key} < {k}" if last is None else f"{key} {last + 1}" if k == last + 2
                        else f"{key} {last + 1}..{k - 1}")
                faults.append((f"{name}/{span}", reason))
                n_faults += 1
            take([row])  # read on its own; go on row by row from it


def _next_readable_row(con: sqlite3.Connection, q: _KeyedQuery, after: int) -> tuple[Any, ...] | None:
    """The row with the smallest key > ``after`` that can be read, or None (see :func:`read_rows`)."""

    def probe(start: int) -> tuple[Any, ...] | bool | None:  # row, None past the end, False damaged
        try:
            row = con.execute(q.sql(">=", limit=1), (start,)).fetchone()
        except sqlite3.DatabaseError:
            return False
        if row is None:
            return None
        k = row[0]
        ok = isinstance(k, int) and not isinstance(k, bool) and k >= start
        return tuple(row) if ok else False  # a key before `start`: the b-tree is damaged here

    bad, step = after, 1
    while True:  # ever larger steps until a probe lands on a readable row (or past the end)
        start = after + step
        if start > 2**63 - 1:
            return None
        got = probe(start)
        if got is not False:
            break
        bad, step = start, step * 2
    good, found = start, got
    while good - bad > 1:  # halve back: the smallest start that still reads
        mid = (bad + good) // 2
        got = probe(mid)
        if got is False:
            bad = mid
        else:
            good, found = mid, got
    return found if isinstance(found, tuple) else None


@contextlib.contextmanager
def private_sqlite(path: str | os.PathLike[str]) -> Iterator[EvidenceConnection]:
    """Open a SQLite database from a private copy, read-only, with its companions.

    The copy (with ``-wal``/``-shm``/``-journal``) lives in a private temporary folder that
    is deleted afterwards. The WAL is applied when the copy is opened, so committed rows
    that were never checkpointed are seen. Triggers cannot fire: the connection is
    ``mode=ro`` and ``PRAGMA query_only`` is set.

    Raises
    ------
    CorruptSource
        When the file is not a SQLite database or is damaged.
    """
    src = Path(path)
    with tempfile.TemporaryDirectory(prefix="routetrace-sqlite-") as tmp:
        dst = Path(tmp) / "evidence.sqlite"
        shutil.copyfile(src, dst)
        for comp in companions(src):
            shutil.copyfile(comp, Path(str(dst) + comp.name[len(src.name):]))
        # A read-only open cannot replay a WAL without its -shm; a -wal without -shm is
        # replayed by one writable open of the private copy (the original is untouched).
        wal = Path(str(dst) + "-wal")
        if wal.exists():
            try:
                rw = sqlite3.connect(dst)
                rw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                rw.close()
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise _unreadable(exc, src) from exc
        try:
            con = sqlite3.connect(f"file:{dst}?mode=ro", uri=True, factory=EvidenceConnection)
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc, src) from exc
        try:
            con.text_factory = con.decode_text
            con.execute("PRAGMA query_only = ON")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            con.close()
            raise _unreadable(exc, src) from exc
        try:
            yield con
        finally:
            con.close()


#: What reading one damaged member can raise (bad CRC, bad seek offset, bad deflate data).
_MEMBER_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError,
                  ValueError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits that keep a hostile archive from exhausting the machine.

    Parameters
    ----------
    max_member_bytes
        Largest uncompressed member (default 8 GiB: a Photos.sqlite or a Takeout
        Records.json can be several GB).
    max_total_bytes
        Largest total uncompressed size extracted from one archive (default 64 GiB).
    max_ratio
        Largest compression ratio of one member (default 200: zip bombs reach 1000+;
        real JSON and SQLite compress 5-30x).
    max_members
        Largest number of members (default 2,000,000, a full-file-system extraction).
    """

    max_member_bytes: int = 8 << 30
    max_total_bytes: int = 64 << 30
    max_ratio: float = 200.0
    max_members: int = 2_000_000


@dataclass
class ExtractedMember:
    """One member extracted into the private folder (``path``), named as in the archive."""

    name: str
    path: Path


@dataclass
class ArchiveReport:
    """What :func:`extract_archive` did: extracted members and refused ones with reasons."""

    members: list[ExtractedMember] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True for zip (including KMZ-like zips is the caller's choice) and tar files."""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return True
    try:
        return tarfile.is_tarfile(p)
    except (OSError, tarfile.TarError):
        return False


def _safe_name(name: str) -> PurePosixPath | None:
    """Return a relative, normalised member path, or None if it escapes or is absolute."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(n).parts if p not in ("", ".")]
    if any(p == ".." for p in parts) or not parts:
        return None
    return PurePosixPath(*parts)


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    select: Callable[[str], bool] | None = None,
    limits: ArchiveLimits | None = None,
) -> ArchiveReport:
    """Extract the regular-file members of a zip or tar archive into ``dest``, safely.

    Members with absolute paths or ``..`` components, links, devices, members above the
    size or ratio limits are refused with a reason (never extracted); the others are
    written under ``dest`` only. ``select(name)`` may restrict which members are taken.

    Raises
    ------
    UnsafeArchive
        When the archive as a whole exceeds ``limits`` (member count or total size).
    CorruptSource
        When the archive cannot be read at all.
    """
    lim = limits or ArchiveLimits()
    src = Path(archive)
    out = Path(dest)
    report = ArchiveReport()
    total = 0

    def _place(name: str) -> Path | None:
        safe = _safe_name(name)
        if safe is None:
            report.refused.append((name, "unsafe path (absolute or '..'): not extracted"))
            return None
        target = out.joinpath(*safe.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as zf:
                infos = zf.infolist()
                if len(infos) > lim.max_members:
                    raise UnsafeArchive(f"{len(infos)} members exceed the limit of "
                                        f"{lim.max_members}", path=str(src))
                for i, info in enumerate(infos):
                    if not info.filename:  # a damaged central directory (zipfile's is_dir fails on it)
                        report.refused.append((f"member #{i + 1} (no name)", "a member with an empty "
                                               "name (damaged directory entry): not extracted"))
                        continue
                    if info.is_dir() or (select and not select(info.filename)):
                        continue
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode and not stat.S_ISREG(mode):
                        report.refused.append((info.filename, "not a regular file (link or device)"))
                        continue
                    if info.file_size > lim.max_member_bytes:
                        report.refused.append((info.filename, f"{info.file_size} bytes exceed the "
                                               f"member limit of {lim.max_member_bytes}"))
                        continue
                    ratio = info.file_size / max(info.compress_size, 1)
                    if ratio > lim.max_ratio:
                        report.refused.append((info.filename, f"compression ratio {ratio:.0f} "
                                               f"exceeds {lim.max_ratio:.0f} (zip bomb?)"))
                        continue
                    if total + info.file_size > lim.max_total_bytes:
                        raise UnsafeArchive(f"uncompressed size exceeds the limit of "
                                            f"{lim.max_total_bytes} bytes", path=str(src))
                    target = _place(info.filename)
                    if target is None:
                        continue
                    written = 0
                    try:
                        with zf.open(info) as fin, open(target, "wb") as fout:
                            while chunk := fin.read(_CHUNK):
                                written += len(chunk)
                                if written > info.file_size or written > lim.max_member_bytes:
                                    break
                                fout.write(chunk)
                    except _MEMBER_ERRORS as exc:  # one damaged member; the others still load
                        target.unlink(missing_ok=True)
                        report.refused.append((info.filename, f"damaged member, not extracted "
                                               f"({type(exc).__name__}: {exc})"))
                        continue
                    if written > info.file_size:
                        target.unlink()
                        report.refused.append((info.filename, "member larger than its header "
                                               "declares: not extracted"))
                        continue
                    total += written
                    report.members.append(ExtractedMember(info.filename, target))
        elif tarfile.is_tarfile(src):
            with tarfile.open(src) as tf:
                count = 0
                for m in tf:
                    count += 1
                    if count > lim.max_members:
                        raise UnsafeArchive(f"more than {lim.max_members} members", path=str(src))
                    if m.isdir() or (select and not select(m.name)):
                        continue
                    if not m.isreg():
                        report.refused.append((m.name, "not a regular file (link or device)"))
                        continue
                    if m.size > lim.max_member_bytes:
                        report.refused.append((m.name, f"{m.size} bytes exceed the member limit"))
                        continue
                    if total + m.size > lim.max_total_bytes:
                        raise UnsafeArchive("uncompressed size exceeds the limit", path=str(src))
                    target = _place(m.name)
                    if target is None:
                        continue
                    try:
                        member_file = tf.extractfile(m)
                        if member_file is None:
                            report.refused.append((m.name, "unreadable member"))
                            continue
                        with member_file, open(target, "wb") as fout:
                            shutil.copyfileobj(member_file, fout, _CHUNK)
                    except _MEMBER_ERRORS as exc:
                        target.unlink(missing_ok=True)
                        report.refused.append((m.name, f"damaged member, not extracted "
                                               f"({type(exc).__name__}: {exc})"))
                        continue
                    total += m.size
                    report.members.append(ExtractedMember(m.name, target))
        else:
            raise CorruptSource("not a zip or tar archive", path=str(src))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError,
            zlib.error, NotImplementedError, RuntimeError, OSError, ValueError) as exc:
        raise CorruptSource(f"damaged or unsupported archive ({exc})", path=str(src)) from exc
    return report
