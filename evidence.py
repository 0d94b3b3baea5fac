"""Read-only access to evidence files: hashing, private SQLite copies, safe archives.

Nothing in routetrace writes to, or beside, an input. SQLite databases are copied together
with their ``-wal``, ``-shm`` and ``-journal`` companions into a private temporary folder
and opened there read-only: the WAL holds committed rows, so reading the main file alone
gives wrong counts, and opening the original (even read-only) may create or change its
``-shm``. Archives are read member by member into a private folder with size, ratio and
path checks; no member is ever written outside that folder.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import struct
import sys
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
    "IDENTITY_COMPANIONS",
    "SQLITE_COMPANIONS",
    "WalCheck",
    "check_wal",
    "companions",
    "extract_archive",
    "is_archive",
    "private_sqlite",
    "sha256_file",
    "source_identity",
]

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of the file's bytes as 64 lower-case hex digits (streamed).

    Parameters
    ----------
    path : str or os.PathLike
        The file; it is only read.

    Returns
    -------
    str
        64 lower-case hex digits.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.txt"
    ...     _ = p.write_text("hello")
    ...     sha256_file(p)
    '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def companions(path: str | os.PathLike[str]) -> list[Path]:
    """Return the existing SQLite companion files (``-wal``, ``-shm``, ``-journal``) of ``path``.

    A companion that is a symbolic link is not one: links in evidence are never followed
    (the folder walk records each link it skips, see :func:`routetrace.loaders.load_many`).

    Parameters
    ----------
    path : str or os.PathLike
        The database file.

    Returns
    -------
    list of pathlib.Path
        The companions that exist and are regular files, in the order ``-wal``, ``-shm``,
        ``-journal``.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> db = Path(tmp.name) / "Cache.sqlite"
    >>> con = sqlite3.connect(db)  # a database in WAL mode with rows not yet checkpointed
    >>> con.execute("PRAGMA journal_mode=WAL").fetchone(), con.execute("PRAGMA wal_autocheckpoint=0").fetchone()
    (('wal',), (0,))
    >>> _ = con.execute("CREATE TABLE t (x INTEGER)"); _ = con.execute("INSERT INTO t VALUES (1), (2)")
    >>> con.commit()
    >>> [p.name for p in companions(db)]
    ['Cache.sqlite-wal', 'Cache.sqlite-shm']
    >>> con.close(); tmp.cleanup()
    """
    p = Path(path)
    out = []
    for sfx in SQLITE_COMPANIONS:
        c = Path(str(p) + sfx)
        if c.is_file() and not c.is_symlink():
            out.append(c)
    return out


#: companions that hold database content, and so are part of a source's identity (the
#: ``-shm`` is an index SQLite rebuilds from the WAL: not content)
IDENTITY_COMPANIONS = ("-wal", "-journal")


def source_identity(path: str | os.PathLike[str]) -> tuple[str, dict[str, str]]:
    """Return ``(source_id, parts)``: the identity of an evidence file with its companions.

    For a file without content companions, ``source_id`` is the SHA-256 of its bytes and
    ``parts`` is empty. A SQLite database with a non-empty ``-wal`` or ``-journal`` beside
    it is one source made of several files (the WAL holds committed rows): ``parts`` maps
    ``"file"`` and each companion's suffix to its SHA-256, and ``source_id`` is the SHA-256
    of the text ``routetrace source v1`` followed by one ``NAME SHA256`` line per part in
    sorted order, so the same database with another WAL is another source, and
    ``routetrace verify`` sees a changed WAL.

    Example: ``sid, parts = source_identity("Photos.sqlite")``; ``parts["-wal"]``.

    Parameters
    ----------
    path : str or os.PathLike
        The evidence file; it is only read.

    Returns
    -------
    tuple of (str, dict of str to str)
        ``(source_id, parts)`` as described above.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> db = Path(tmp.name) / "Cache.sqlite"
    >>> con = sqlite3.connect(db)  # a database in WAL mode with rows not yet checkpointed
    >>> con.execute("PRAGMA journal_mode=WAL").fetchone(), con.execute("PRAGMA wal_autocheckpoint=0").fetchone()
    (('wal',), (0,))
    >>> _ = con.execute("CREATE TABLE t (x INTEGER)"); _ = con.execute("INSERT INTO t VALUES (1), (2)")
    >>> con.commit()
    >>> sid, parts = source_identity(db)
    >>> len(sid), sorted(parts)
    (64, ['-wal', 'file'])
    >>> con.close(); tmp.cleanup()
    """
    p = Path(path)
    main = sha256_file(p)
    with open(p, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            return main, {}
    parts = {c.name[len(p.name):]: sha256_file(c) for c in companions(p)
             if c.name[len(p.name):] in IDENTITY_COMPANIONS and c.stat().st_size > 0}
    if not parts:
        return main, {}
    parts["file"] = main
    text = "routetrace source v1\n" + "".join(f"{k} {v}\n" for k, v in sorted(parts.items()))
    return hashlib.sha256(text.encode("ascii")).hexdigest(), parts


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


def _settle_private_copy(dst: Path, src: Path) -> None:
    """Bring the private copy ``dst`` to its last committed state, as SQLite would on open.

    A read-only open cannot replay a WAL without its ``-shm``, nor roll back a hot
    ``-journal`` (it fails with "attempt to write a readonly database"): one writable open
    of the private copy does either (the original is untouched). A WAL is checkpointed
    (its committed frames copied into the main file); a hot rollback journal is rolled back
    by the first read.
    """
    wal, journal = Path(str(dst) + "-wal"), Path(str(dst) + "-journal")
    if not (wal.exists() or journal.exists()):
        return
    try:
        rw = sqlite3.connect(dst)
        try:
            rw.execute("PRAGMA trusted_schema = OFF")
            rw.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls back a hot journal
            if wal.exists():
                rw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            rw.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise _unreadable(exc, src) from exc


@contextlib.contextmanager
def private_sqlite(path: str | os.PathLike[str]) -> Iterator[EvidenceConnection]:
    """Open a SQLite database from a private copy, read-only, with its companions.

    The copy (with ``-wal``/``-shm``/``-journal``) lives in a private temporary folder that
    is deleted afterwards. The WAL is applied when the copy is opened, so committed rows
    that were never checkpointed are seen; a hot rollback journal (a write interrupted
    when the phone was seized) is rolled back on the copy, as SQLite itself would. Triggers
    cannot fire: the connection is ``mode=ro`` and ``PRAGMA query_only`` is set; functions
    named in the schema (views, generated columns) run only if SQLite deems them safe
    (``PRAGMA trusted_schema = OFF``).

    Raises
    ------
    CorruptSource
        When the file is not a SQLite database or is damaged.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; its companions beside it are copied with it.

    Returns
    -------
    contextmanager of EvidenceConnection
        A read-only connection to the private copy, closed (and the copy deleted) on exit.

    Example
    -------
    >>> import sqlite3, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> db = Path(tmp.name) / "Cache.sqlite"
    >>> con = sqlite3.connect(db)  # a database in WAL mode with rows not yet checkpointed
    >>> con.execute("PRAGMA journal_mode=WAL").fetchone(), con.execute("PRAGMA wal_autocheckpoint=0").fetchone()
    (('wal',), (0,))
    >>> _ = con.execute("CREATE TABLE t (x INTEGER)"); _ = con.execute("INSERT INTO t VALUES (1), (2)")
    >>> con.commit()
    >>> with private_sqlite(db) as c:  # the rows still in the -wal are seen
    ...     c.execute("SELECT count(*) FROM t").fetchone()
    (2,)
    >>> con.close(); tmp.cleanup()
    """
    src = Path(path)
    with tempfile.TemporaryDirectory(prefix="routetrace-sqlite-") as tmp:
        dst = Path(tmp) / "evidence.sqlite"
        shutil.copyfile(src, dst)
        for comp in companions(src):
            shutil.copyfile(comp, Path(str(dst) + comp.name[len(src.name):]))
        _settle_private_copy(dst, src)
        try:
            con = sqlite3.connect(f"file:{dst}?mode=ro", uri=True, factory=EvidenceConnection)
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc, src) from exc
        try:
            con.text_factory = con.decode_text
            con.execute("PRAGMA trusted_schema = OFF")
            con.execute("PRAGMA query_only = ON")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            con.close()
            raise _unreadable(exc, src) from exc
        try:
            yield con
        finally:
            con.close()


_WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums in little- / big-endian words
_WAL_HEADER = 32
_FRAME_HEADER = 24


@dataclass(frozen=True)
class WalCheck:
    """What a ``-wal`` holds and what SQLite will apply of it (see :func:`check_wal`).

    ``frames`` counts the frames in the file (a frame cut short at the end included),
    ``applied`` the frames up to the last valid commit (what opening the database
    replays), ``commits`` the transactions among them. ``fault`` is ``(record, reason)``
    when frames that belong to this WAL are not applied (a damaged frame, a frame cut
    short, a transaction without its commit frame), else None.
    """

    frames: int
    applied: int
    commits: int
    fault: tuple[str, str] | None = None

    def note(self) -> str:
        """``"; -wal: N frame(s), M applied (K commits)"`` for a source's notes."""
        return f"; -wal: {self.frames} frame(s), {self.applied} applied ({self.commits} commit(s))"


def _wal_checksum(data: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes), continued from (s0, s1)."""
    words = array.array("I", data)  # 32-bit words (itemsize 4 on every platform we run on)
    if big != (sys.byteorder == "big"):
        words.byteswap()
    m = 0xFFFFFFFF
    it = iter(words)
    for x0, x1 in zip(it, it, strict=True):
        s0 = (s0 + x0 + s1) & m
        s1 = (s1 + x1 + s0) & m
    return s0, s1


def _earlier_generation(f1: int, f2: int, salt1: int, salt2: int) -> bool:
    """True for a frame left by an earlier WAL generation: each checkpoint that resets the
    WAL adds one to salt-1 and draws salt-2 anew (SQLite's ``walRestartHdr``), so such a
    frame has salt-1 a little below the header's and another salt-2. A frame with one salt
    changed, zeros, or a salt-1 far off is a damaged frame."""
    return f2 != salt2 and 0 < (salt1 - f1) % (1 << 32) < (1 << 20)


def _scan_frames(fh: Any, hdr: tuple[int, ...], n_full: int) -> tuple[int, int, int, str]:
    """Walk the complete frames: ``(valid, applied, commits, why the walk stopped)``; the
    reason is ``""`` at the end, ``"stale"`` at a frame of an earlier generation."""
    magic, page, salt1, salt2, c1, c2 = hdr
    big = magic == _WAL_MAGIC[1]
    s0, s1 = c1, c2
    valid = applied = commits = 0
    for i in range(n_full):
        frame = fh.read(_FRAME_HEADER + page)
        pgno, commit, f1, f2, k1, k2 = struct.unpack(">6I", frame[:_FRAME_HEADER])
        if _earlier_generation(f1, f2, salt1, salt2):
            return valid, applied, commits, "stale"
        if (f1, f2) != (salt1, salt2):  # one salt changed: a damaged frame header
            return valid, applied, commits, f"frame {i + 1} damaged (one salt does not match the header)"
        s0, s1 = _wal_checksum(frame[:8] + frame[_FRAME_HEADER:], s0, s1, big)
        if (s0, s1) != (k1, k2) or pgno == 0:
            return valid, applied, commits, f"frame {i + 1} damaged (its checksum does not match)"
        valid += 1
        if commit:
            applied, commits = valid, commits + 1
    return valid, applied, commits, ""


def _same_generation_end(fh: Any, hdr: tuple[int, ...], start: int, n_full: int) -> int:
    """The number of the last frame, from frame ``start + 1`` on, that still carries the
    header's salts (frames after a damaged one that belong to the same WAL)."""
    page, salts = hdr[1], hdr[2:4]
    for j in range(start, n_full):
        fh.seek(_WAL_HEADER + j * (_FRAME_HEADER + page) + 8)
        f1, f2 = struct.unpack(">2I", fh.read(8))
        if _earlier_generation(f1, f2, *salts):
            return j
    return n_full


def check_wal(path: str | os.PathLike[str]) -> WalCheck:
    """Count the frames of a SQLite ``-wal`` file and the committed ones SQLite will apply.

    SQLite replays a WAL frame by frame while each frame carries the header's salts and a
    valid running checksum, and applies them up to the last commit frame among those
    (https://www.sqlite.org/fileformat2.html#walformat). Frames after a damaged frame, a
    frame cut short, or frames of a transaction that never committed are silently not
    applied: this function names them, so a loader can report them as one rejected record
    (``Photos.sqlite-wal/frames 51..100``). Frames of an earlier WAL generation (other
    salts, left behind after a checkpoint reset the WAL, see :func:`_earlier_generation`)
    are old data and not a fault; a frame with one salt changed, or zeroed, is damaged.
    The file is read one frame at a time.

    Example: ``check_wal("Photos.sqlite-wal").applied``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``-wal`` file; it is only read.

    Returns
    -------
    WalCheck
        ``frames``, ``applied``, ``commits`` and ``fault`` (see :class:`WalCheck`).

    Example
    -------
    >>> import sqlite3, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> db = Path(tmp.name) / "Cache.sqlite"
    >>> con = sqlite3.connect(db)  # a database in WAL mode with rows not yet checkpointed
    >>> con.execute("PRAGMA journal_mode=WAL").fetchone(), con.execute("PRAGMA wal_autocheckpoint=0").fetchone()
    (('wal',), (0,))
    >>> _ = con.execute("CREATE TABLE t (x INTEGER)"); _ = con.execute("INSERT INTO t VALUES (1), (2)")
    >>> con.commit()
    >>> w = check_wal(str(db) + "-wal")
    >>> w.frames, w.applied, w.commits, w.fault
    (3, 3, 2, None)
    >>> con.close(); tmp.cleanup()
    """
    name = Path(path).name
    total = Path(path).stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_WAL_HEADER)
        if len(head) < _WAL_HEADER:
            return WalCheck(0, 0, 0, (f"{name}/header", f"WAL of {total} bytes has no complete "
                                      "header: not applied") if total else None)
        magic, _ver, page, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", head)
        ok = (magic in _WAL_MAGIC and 512 <= page <= 65536 and page & (page - 1) == 0
              and _wal_checksum(head[:24], 0, 0, magic == _WAL_MAGIC[1]) == (c1, c2))
        size = _FRAME_HEADER + page if ok else 1
        n_full, partial = divmod(total - _WAL_HEADER, size) if ok else (0, 0)
        n_frames = n_full + (1 if partial else 0)
        if not ok:
            return WalCheck(0, 0, 0, (f"{name}/header", "WAL header damaged (magic, page size or "
                                      f"checksum): SQLite applies none of its {total} bytes"))
        hdr = (magic, page, salt1, salt2, c1, c2)
        valid, applied, commits, stop = _scan_frames(fh, hdr, n_full)
        damaged = stop not in ("", "stale")
        last = _same_generation_end(fh, hdr, valid + 1, n_full) if damaged else \
            valid if stop == "stale" else n_full
    reasons = [stop] if damaged else []
    if partial and last == n_full:
        last = n_frames
        reasons.append(f"frame {n_frames} cut short ({partial} of {size} bytes)")
    if valid > applied:
        reasons.append(f"frame(s) {applied + 1}..{valid} of a transaction without its commit frame")
    fault: tuple[str, str] | None = None
    if last > applied:
        fault = (f"{name}/frames {applied + 1}..{last}",
                 f"{last - applied} WAL frame(s) not applied: " + "; ".join(reasons)
                 + f" ({applied} frame(s) in {commits} commit(s) applied before them)")
    return WalCheck(n_frames, applied, commits, fault)


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
    """What :func:`extract_archive` did: extracted members and refused ones with reasons.

    ``folders`` counts the folder entries (nothing to read in them), so an archive of only
    folders can be told apart from an empty one.
    """

    members: list[ExtractedMember] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    folders: int = 0


_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True for zip (including KMZ-like zips is the caller's choice) and tar files.

    A tar is recognised by a valid first header only: an all-zero file is the end marker
    of an empty tar to :func:`tarfile.is_tarfile`, but it is not an archive to us (it is a
    file with nothing in it, reported as such).

    Parameters
    ----------
    path : str or os.PathLike
        The file; only its first bytes are read.

    Returns
    -------
    bool
        Whether it is a zip or a tar (compressed or not).

    Example
    -------
    >>> import tempfile, zipfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     z, t = Path(tmp) / "phone.zip", Path(tmp) / "notes.txt"
    ...     with zipfile.ZipFile(z, "w") as zf:
    ...         zf.writestr("track.gpx", "<gpx/>")
    ...     _ = t.write_text("not an archive")
    ...     is_archive(z), is_archive(t)
    (True, False)
    """
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return True
    if not head.startswith(_COMPRESSED_MAGIC) and (len(head) < 512 or not any(head)):
        return False
    try:
        return tarfile.is_tarfile(p)
    except (OSError, tarfile.TarError, EOFError, zlib.error):
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


class _Placer:
    """Where each member goes under ``out``: refuses unsafe names and name collisions.

    Two members that land on the same path (the same name twice, ``a\\b`` and ``a/b``,
    ``./a`` and ``a``), or a member ``x`` beside a member ``x/y``, cannot both be written:
    the later one is refused with a reason naming the earlier one, never overwritten.
    """

    def __init__(self, out: Path, report: ArchiveReport) -> None:
        self.out, self.report = out, report
        self.files: dict[PurePosixPath, str] = {}  # placed path -> member name
        self.dirs: dict[PurePosixPath, str] = {}  # folder needed by a placed member -> its name

    def place(self, name: str) -> Path | None:
        safe = _safe_name(name)
        if safe is None:
            self.report.refused.append((name, "unsafe path (absolute or '..'): not extracted"))
            return None
        clash = self.files.get(safe) or self.dirs.get(safe)
        if clash is None:
            clash = next((self.files[q] for q in safe.parents if q in self.files), None)
        if clash is not None:
            self.report.refused.append((name, f"name collides with member {clash!r} (same path, "
                                        "or a file where a folder is needed): not extracted; "
                                        "extract it by hand to read it"))
            return None
        self.files[safe] = name
        for q in safe.parents:
            self.dirs.setdefault(q, name)
        target = self.out.joinpath(*safe.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


def _copy_member(fin: Any, target: Path, *, limit: int) -> int:
    """Copy at most ``limit + 1`` bytes of ``fin`` to ``target``; return the bytes read."""
    written = 0
    with open(target, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                break
            fout.write(chunk)
    return written


def _zip_check(info: zipfile.ZipInfo, lim: ArchiveLimits) -> str | None:
    """Why a zip member is refused before it is read, or None."""
    mode = (info.external_attr >> 16) & 0o170000
    if mode and not stat.S_ISREG(mode):
        return "not a regular file (link or device)"
    if info.file_size > lim.max_member_bytes:
        return f"{info.file_size} bytes exceed the member limit of {lim.max_member_bytes}"
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > lim.max_ratio:
        return f"compression ratio {ratio:.0f} exceeds {lim.max_ratio:.0f} (zip bomb?)"
    return None


def _extract_zip(src: Path, place: _Placer, select: Callable[[str], bool] | None,
                 lim: ArchiveLimits) -> None:
    report = place.report
    total = 0
    with zipfile.ZipFile(src) as zf:
        infos = zf.infolist()
        if len(infos) > lim.max_members:
            raise UnsafeArchive(f"{len(infos)} members exceed the limit of {lim.max_members}",
                                path=str(src))
        for i, info in enumerate(infos):
            if not info.filename:  # a damaged central directory (zipfile's is_dir fails on it)
                report.refused.append((f"member #{i + 1} (no name)", "a member with an empty "
                                       "name (damaged directory entry): not extracted"))
                continue
            if info.is_dir():
                report.folders += 1
                continue
            if select and not select(info.filename):
                continue
            why = _zip_check(info, lim)
            if why is not None:
                report.refused.append((info.filename, why))
                continue
            if total + info.file_size > lim.max_total_bytes:
                raise UnsafeArchive(f"uncompressed size exceeds the limit of "
                                    f"{lim.max_total_bytes} bytes", path=str(src))
            target = place.place(info.filename)
            if target is None:
                continue
            try:
                with zf.open(info) as fin:
                    written = _copy_member(fin, target, limit=min(info.file_size, lim.max_member_bytes))
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


def _extract_tar(src: Path, place: _Placer, select: Callable[[str], bool] | None,
                 lim: ArchiveLimits) -> None:
    """Tar members, with the zip's limits: a compressed tar's expansion so far (headers
    and data, from the member headers, before anything is written) over the archive's
    compressed size is its ratio; the first member that takes it past ``max_ratio`` is
    refused and the rest of the archive is not read (a tar stream cannot skip a member
    without inflating it)."""
    report = place.report
    with open(src, "rb") as fh:
        compressed = fh.read(6).startswith(_COMPRESSED_MAGIC)
    packed = max(src.stat().st_size, 1)
    total = 0
    with tarfile.open(src) as tf:
        count = 0
        for m in tf:
            count += 1
            if count > lim.max_members:
                raise UnsafeArchive(f"more than {lim.max_members} members", path=str(src))
            if m.isdir():
                report.folders += 1
                continue
            if select and not select(m.name):
                continue
            ratio = (m.offset_data + m.size) / packed
            if compressed and ratio > lim.max_ratio:
                report.refused.append((m.name, f"expands the archive {ratio:.0f}-fold, over the "
                                       f"compression-ratio limit of {lim.max_ratio:.0f} (a tar "
                                       "bomb?): not extracted, and the members after it are "
                                       "not read"))
                return
            if not m.isreg():
                report.refused.append((m.name, "not a regular file (link or device)"))
                continue
            if m.size > lim.max_member_bytes:
                report.refused.append((m.name, f"{m.size} bytes exceed the member limit of "
                                       f"{lim.max_member_bytes}"))
                continue
            if total + m.size > lim.max_total_bytes:
                raise UnsafeArchive(f"uncompressed size exceeds the limit of "
                                    f"{lim.max_total_bytes} bytes", path=str(src))
            target = place.place(m.name)
            if target is None:
                continue
            try:
                member_file = tf.extractfile(m)
                if member_file is None:
                    report.refused.append((m.name, "unreadable member"))
                    continue
                with member_file:
                    _copy_member(member_file, target, limit=m.size)
            except _MEMBER_ERRORS as exc:
                target.unlink(missing_ok=True)
                report.refused.append((m.name, f"damaged member, not extracted "
                                       f"({type(exc).__name__}: {exc})"))
                continue
            total += m.size
            report.members.append(ExtractedMember(m.name, target))


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    select: Callable[[str], bool] | None = None,
    limits: ArchiveLimits | None = None,
) -> ArchiveReport:
    """Extract the regular-file members of a zip or tar archive into ``dest``, safely.

    Members with absolute paths or ``..`` components, links, devices, members above the
    size or ratio limits (for a compressed tar: the archive's expansion so far), and
    members whose path collides with an earlier member's are refused with a reason (never
    extracted, never overwriting); the others are written under ``dest`` only.
    ``select(name)`` may restrict which members are taken.

    Raises
    ------
    UnsafeArchive
        When the archive as a whole exceeds ``limits`` (member count or total size).
    CorruptSource
        When the archive cannot be read at all.

    Example: ``rep = extract_archive("phone.zip", tmp)``; ``rep.refused`` lists
    ``(member, reason)``.

    Parameters
    ----------
    archive : str or os.PathLike
        The zip or tar file; it is only read.
    dest : str or os.PathLike
        The folder to extract into (a private temporary folder in the loaders).
    select : callable, optional
        ``select(member name) -> bool``; default None: every member.
    limits : ArchiveLimits, optional
        Default None: ``ArchiveLimits()`` (see there for the numbers and their reasons).

    Returns
    -------
    ArchiveReport
        The members extracted (name and path) and those refused, with reasons.

    Example
    -------
    >>> import tempfile, zipfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     z = Path(tmp) / "phone.zip"
    ...     with zipfile.ZipFile(z, "w") as zf:
    ...         zf.writestr("track.gpx", "<gpx/>")
    ...         zf.writestr("../escape.txt", "x")
    ...     rep = extract_archive(z, Path(tmp) / "out")
    ...     [m.name for m in rep.members], rep.refused
    (['track.gpx'], [('../escape.txt', "unsafe path (absolute or '..'): not extracted")])
    """
    lim = limits or ArchiveLimits()
    src = Path(archive)
    report = ArchiveReport()
    place = _Placer(Path(dest), report)
    try:
        if zipfile.is_zipfile(src):
            _extract_zip(src, place, select, lim)
        elif tarfile.is_tarfile(src):
            _extract_tar(src, place, select, lim)
        else:
            with open(src, "rb") as fh:
                zipped = fh.read(4) == b"PK\x03\x04"
            raise CorruptSource("damaged zip archive: its central directory cannot be read (cut "
                                "short?); nothing in it was extracted" if zipped else
                                "not a zip or tar archive", path=str(src))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError,
            zlib.error, NotImplementedError, RuntimeError, OSError, ValueError) as exc:
        raise CorruptSource(f"damaged or unsupported archive ({exc})", path=str(src)) from exc
    return report
