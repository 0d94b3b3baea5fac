"""The routetrace exception tree.

Every error the library raises on purpose is a :class:`RoutetraceError`, so a caller
(the CLI, a notebook) can catch one class and print one clear line. Messages name the
file, the record and what to do about it::

    RoutetraceError
    ├── LoaderError ── UnknownFormat, AmbiguousFormat, CorruptSource, AmbiguousTime,
    │                  UnsafeArchive
    ├── LoaderBug (a loader broke its own count rule: a routetrace defect)
    ├── SchemaError
    ├── ParameterError
    ├── CaseError
    └── ExportError
"""

from __future__ import annotations

__all__ = [
    "AmbiguousFormat",
    "AmbiguousTime",
    "CaseError",
    "CorruptSource",
    "ExportError",
    "LoaderBug",
    "LoaderError",
    "ParameterError",
    "RoutetraceError",
    "SchemaError",
    "UnknownFormat",
    "UnsafeArchive",
]


class RoutetraceError(Exception):
    """Base of every error routetrace raises on purpose.

    Parameters
    ----------
    message
        One line for a person: what went wrong, where, and what to do.
    path
        The evidence file concerned, when there is one.
    record
        The record locator inside that file (row id, byte offset, XML path), when known.
    hint
        What to do about it, when the message alone does not say (shown by the CLI).
    """

    def __init__(self, message: str, *, path: str | None = None, record: str | None = None,
                 hint: str | None = None):
        self.message = message
        self.path = path
        self.record = record
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return ``path[record]: message`` on one line (newlines in the inputs removed)."""
        where = ""
        if self.path:
            where = self.path
            if self.record:
                where += f" [{self.record}]"
            where += ": "
        return " ".join((where + self.message).split())


class LoaderError(RoutetraceError):
    """An evidence file could not be read as a whole (single bad records become rejects)."""


class UnknownFormat(LoaderError):
    """No registered loader recognises the file; pass ``--format`` to force one."""


class AmbiguousFormat(LoaderError):
    """More than one loader recognises the file; the message lists them; pass ``--format``."""


class CorruptSource(LoaderError):
    """The file is of a known format but damaged beyond reading (truncated, not a database)."""


class AmbiguousTime(LoaderError):
    """Local times without a UTC offset and no stated basis: pass ``--tz`` (e.g. Europe/Brussels)."""


class UnsafeArchive(LoaderError):
    """An archive member escapes its folder, is a link, or exceeds the size or ratio limits."""


class LoaderBug(RoutetraceError):
    """A loader broke its own count rule (a record lost, counted twice, or both produced and
    rejected), or a format sniffer raised instead of answering yes or no: a defect in
    routetrace, not in the evidence. Nothing of the file is used."""


class SchemaError(RoutetraceError):
    """A table does not match its declaration in :mod:`routetrace.schema` (names the column)."""


class ParameterError(RoutetraceError):
    """A parameter given by the user is out of range or of the wrong kind."""


class CaseError(RoutetraceError):
    """A case directory is missing, damaged, or its recorded hashes do not verify."""


class MissingExtra(RoutetraceError):
    """An optional part of routetrace is needed and its packages are not installed; the
    message names the extra that installs them (``pip install 'routetrace[static]'``)."""


class ExportError(RoutetraceError):
    """An output could not be written (unknown target format, unwritable path)."""
