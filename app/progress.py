"""Progress of long steps, for a person watching a terminal or a log.

A :class:`Progress` runs a small background thread that reports the current step every
``interval_s`` seconds: the step's name, the file being read and, where the operating
system says so (Linux ``/proc/self/fdinfo``), how far into that file the reader is. On a
terminal it redraws one line; elsewhere (a pipe, a log file) it writes a plain line each
time, so a log shows that work goes on. It never touches stdout.

Example
-------
>>> import io
>>> out = io.StringIO()
>>> with Progress("computing the chronology", write=out.write, tty=False, interval_s=60):
...     pass
>>> out.getvalue().splitlines()[0]
'  computing the chronology …'
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ..display import visible

__all__ = ["Progress", "file_position"]


def file_position(name: str) -> tuple[int, int] | None:
    """``(bytes read, size)`` of a file this process has open whose name ends like ``name``
    (the reader's position in it), from ``/proc/self/fdinfo``; None where unknown.

    Parameters
    ----------
    name : str
        The end of the file's path (e.g. its name).

    Returns
    -------
    tuple of int or None
        ``(bytes read, size in bytes)``, or None where no such open file is found or
        ``/proc`` is not available.

    Example
    -------
    >>> file_position("no-such-file-open-here.gpx") is None
    True
    """
    base = Path(name.split("!")[-1]).name
    fd_dir = Path("/proc/self/fd")
    if not base or not fd_dir.is_dir():
        return None
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(fd)
            if Path(target).name != base or not os.path.isfile(target):
                continue
            info = Path(f"/proc/self/fdinfo/{fd.name}").read_text(encoding="ascii")
            pos = next(int(line.split()[1]) for line in info.splitlines() if line.startswith("pos:"))
            return pos, os.path.getsize(target)
        except (OSError, StopIteration, ValueError):
            continue
    return None


#: the longest file name a log line shows whole (an archive member's path can be of any
#: length, and it is the device's text)
LOG_NAME_CHARS = 400


def _tail(text: str, n: int) -> str:
    """``text``, or where it is longer than ``n`` characters its end after an ellipsis, from
    a path separator (``/`` or an archive's ``!``) where one is in the last ``n``: the end of
    a path names the file, and a cut shows as "…" rather than as a name cut in two.

    >>> _tail("evidence/phone-A/a.gpx", 12), _tail("a.gpx", 12), _tail("x" * 20, 5)
    ('…/a.gpx', 'a.gpx', '…xxxxx')
    """
    if len(text) <= n:
        return text
    tail = text[-n:]
    cut = min((i for i in (tail.find("/"), tail.find("!")) if i >= 0), default=-1)
    return "…" + (tail[cut:] if 0 <= cut < len(tail) - 1 else tail)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:,.1f} MB"


class Progress:
    """Report a long step until the ``with`` block ends (see the module docstring).

    Parameters
    ----------
    step
        What is being done ("ingesting 3 input(s)").
    write
        Where to write (``sys.stderr.write``).
    tty
        Redraw one line (a terminal) or write plain lines (a pipe or a log).
    interval_s
        Seconds between reports: 0.5 is fine on a terminal; a log wants 5 or more.
    """

    def __init__(self, step: str, *, write: Callable[[str], object], tty: bool,
                 interval_s: float = 1.0) -> None:
        self.step = step
        self.write = write
        self.tty = tty
        self.interval_s = interval_s
        self.current = ""
        self.done_files = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routetrace-progress", daemon=True)
        self._lock = threading.Lock()

    def file(self, name: str) -> None:
        """Say that the reader moved on to file ``name`` (a loader's progress callback)."""
        with self._lock:
            if self.current:
                self.done_files += 1
            self.current = name
        if not self.tty:
            self._line(f"  reading {_tail(name, LOG_NAME_CHARS)}")

    def clear_file(self) -> None:
        """The reader is done with files for now (the step goes on with other work).

        Example
        -------
        >>> import io
        >>> out = io.StringIO()
        >>> bar = Progress("x", write=out.write, tty=False)
        >>> bar.file("a.gpx"); bar.clear_file(); bar.current
        ''
        """
        with self._lock:
            if self.current:
                self.done_files += 1
            self.current = ""

    def _status(self) -> str:
        elapsed = time.monotonic() - self._t0
        with self._lock:
            name, done = self.current, self.done_files
        parts = [self.step]
        if name:
            where = file_position(name)
            pct = f" {100 * where[0] / where[1]:.0f} % of {_mb(where[1])}" if where and where[1] else ""
            parts.append(f"file {done + 1}: {_tail(Path(name.split('!')[-1]).name, 60)}{pct}")
        parts.append(f"{elapsed:.0f} s")
        return " · ".join(parts)

    def _line(self, text: str) -> None:
        text = visible(text)  # file names from evidence: no control or bidi character raw
        if self.tty:
            self.write(f"\r\033[K{text}")
        else:
            self.write(text + "\n")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._line("  " + self._status())

    def __enter__(self) -> Progress:
        self._line(f"  {self.step} …")
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty:
            self.write("\r\033[K")
