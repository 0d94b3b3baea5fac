"""The mutation-fuzz harness: deterministic byte mutations of evidence files, and a
classifier of what a loader did with the result.

``bench/fuzz.py`` (the long run) and the hypothesis tests in ``tests/test_fuzz.py`` use it.

>>> mutate(b"abcdef", [("truncate", 3, 0)])
b'abc'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import CorruptSource, LoaderBug, RoutetraceError
from .loaders import load
from .testing import assert_count_rule

__all__ = ["MUTATION_KINDS", "NASTY_TOKENS", "load_bytes_outcome", "mutate"]


#: Byte strings that break parsers in interesting ways (numbers, nesting, encodings).
NASTY_TOKENS: tuple[bytes, ...] = (
    b"NaN", b"Infinity", b"-1e309", b"1e309", b"99999999999999999999999999", b"-0",
    b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"[" * 64, b"{" * 64, b"</", b"<!ENTITY",
    b"\"", b"'", b",", b";", b"\n", b"\r\n", b"$", b"*", b"\xc3\x28", b"-180", b"0,0",
)


def mutate(data: bytes, ops: Sequence[tuple[str, int, int]], *, other: bytes = b"") -> bytes:
    """Apply mutation operations to ``data`` and return the result.

    Each op is ``(kind, a, b)`` with ``a``, ``b`` arbitrary non-negative ints that are
    reduced modulo the data's length: ``flip`` (bit ``b % 8`` of byte ``a``), ``truncate``
    (keep ``a`` bytes), ``insert`` (a nasty token ``b`` at ``a``), ``delete`` (``b % 64``
    bytes at ``a``), ``splice`` (the tail of ``other`` from ``b`` at ``a``), ``repeat``
    (the slice ``a..a+b%256`` repeated 64 times: deep nesting, huge fields).
    Deterministic: the same ops give the same bytes (hypothesis shrinks them).

    Parameters
    ----------
    data : bytes
        The valid input to damage.
    ops : sequence of (str, int, int)
        The operations, applied in order (kinds in :data:`MUTATION_KINDS`).
    other : bytes, default b""
        A second input that ``splice`` takes its tail from.

    Returns
    -------
    bytes
        The mutated input.

    Example
    -------
    >>> mutate(b"hello world", [("truncate", 5, 0)]), mutate(b"abc", [("flip", 0, 0)])
    (b'hello', b'`bc')
    """
    buf = bytearray(data)
    for kind, a, b in ops:
        n = len(buf)
        if kind == "flip" and n:
            buf[a % n] ^= 1 << (b % 8)
        elif kind == "truncate":
            del buf[(a % (n + 1)):]
        elif kind == "insert":
            pos = a % (n + 1)
            buf[pos:pos] = NASTY_TOKENS[b % len(NASTY_TOKENS)]
        elif kind == "delete" and n:
            pos = a % n
            del buf[pos: pos + 1 + b % 64]
        elif kind == "splice" and other:
            pos = a % (n + 1)
            buf[pos:] = other[b % len(other):]
        elif kind == "repeat" and n:
            pos = a % n
            chunk = bytes(buf[pos: pos + 1 + b % 256])
            buf[pos:pos] = chunk * 64
    return bytes(buf)


MUTATION_KINDS = ("flip", "truncate", "insert", "delete", "splice", "repeat")


def load_bytes_outcome(data: bytes, *, name: str, tmp_dir: Path, format: str | None = None,
                       tz: str | None = "UTC") -> tuple[str, str]:
    """Write ``data`` to ``tmp_dir/name``, load it, and classify what happened.

    Returns ``(status, detail)`` where status is ``"ok"`` (a LoadResult obeying the count
    rule), ``"error"`` (a deliberate :class:`RoutetraceError`), ``"wrapped"`` (a
    :class:`CorruptSource` wrapping an unexpected exception type from a parser: handled,
    but worth hardening) or ``"unhandled"`` (a :class:`LoaderBug`, or any other exception
    escaped: a defect).

    Parameters
    ----------
    data : bytes
        The file's bytes.
    name : str
        The file name to write (its extension can matter to sniffing).
    tmp_dir : pathlib.Path
        A folder of the caller's (a test's ``tmp_path``).
    format : str, optional
        Force a loader; default None: sniff.
    tz : str or None, default "UTC"
        Zone for sources with local times, so that a missing zone is not the outcome of
        every mutation.

    Returns
    -------
    tuple of (str, str)
        ``(status, detail)`` as above; the detail is the message or the row counts.

    Example
    -------
    >>> import tempfile
    >>> gpx = (b'<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1"><trk>'
    ...        b'<trkseg><trkpt lat="51.0" lon="3.87"><time>2025-10-26T21:00:00Z</time></trkpt>'
    ...        b'</trkseg></trk></gpx>')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ok = load_bytes_outcome(gpx, name="t.gpx", tmp_dir=Path(tmp))
    ...     cut = load_bytes_outcome(mutate(gpx, [("truncate", 60, 0)]), name="t.gpx", tmp_dir=Path(tmp))
    >>> ok, cut[0], "malformed XML" in cut[1]
    (('ok', '1 fixes 0 rejects'), 'error', True)
    """
    path = Path(tmp_dir) / name
    path.write_bytes(data)
    try:
        res = load(path, format=format, tz=tz)
        assert_count_rule(res)
        return "ok", f"{len(res.fixes)} fixes {len(res.rejects)} rejects"
    except LoaderBug as exc:  # the loader's own count rule broke: a defect, as unhandled
        return "unhandled", f"LoaderBug: {exc.one_line()[-160:]}"
    except CorruptSource as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, RoutetraceError) and \
                str(exc.message).startswith("cannot be read as"):
            return "wrapped", f"{type(cause).__name__}: {str(cause)[:120]}"
        return "error", exc.one_line()[-160:]
    except RoutetraceError as exc:
        return "error", exc.one_line()[-160:]
    except Exception as exc:  # the point of fuzzing: report, don't crash the run
        return "unhandled", f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        path.unlink(missing_ok=True)
