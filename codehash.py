"""Which code produced an output: the SHA-256 of routetrace's own files.

The version number (``0.1.0``) stays the same across many changes of the code; an exhibit,
an export or a case that states only it cannot be tied to the code that made it. Each of
them also states :func:`code_sha256`: one hash over every file of the installed package
that can change an output (its Python modules, the loaders' IO maps and data, the maps'
scripts, styles, templates and backdrops, the sample case's data), listed by path. Two
outputs with the same code hash were made by the same code, whether routetrace was installed
from a wheel or runs from a checkout; a defence expert can recompute it from the package.

Example
-------
>>> h = code_sha256()
>>> len(h), h == code_sha256()
(64, True)
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["PACKAGE_FILES", "code_files", "code_sha256"]

#: The files of each package directory (relative to the package root) that are installed:
#: the modules and the package data of ``pyproject.toml`` (a test keeps the two the same).
PACKAGE_FILES: dict[str, tuple[str, ...]] = {
    ".": ("*.py", "py.typed"),
    "app": ("*.py",),
    "loaders": ("*.py", "*.json", "data/*"),
    "routes": ("*.py",),
    "maps": ("*.py", "static/*", "static/**/*", "templates/*", "data/*"),
    "samples": ("*.py", "data/*"),
}


def code_files(root: Path | None = None) -> list[str]:
    """The package's files that :func:`code_sha256` covers, as sorted POSIX paths relative
    to the package root.

    Parameters
    ----------
    root : pathlib.Path, optional
        The package directory; default: this package's.

    Returns
    -------
    list of str
        For example ``['__init__.py', 'app/__init__.py', ...]``.

    Example
    -------
    >>> files = code_files()
    >>> "codehash.py" in files and "maps/exhibit.py" in files and "tests" not in {f.split("/")[0] for f in files}
    True
    """
    base = Path(__file__).resolve().parent if root is None else Path(root)
    found: set[str] = set()
    for sub, patterns in PACKAGE_FILES.items():
        folder = base / sub
        for pattern in patterns:
            for p in folder.glob(pattern):
                if p.is_file() and "__pycache__" not in p.parts:
                    found.add(p.relative_to(base).as_posix())
    return sorted(found)


def _digest(base: Path) -> str:
    listing = hashlib.sha256()
    for rel in code_files(base):
        content = hashlib.sha256((base / rel).read_bytes()).hexdigest()
        listing.update(f"{rel}\0{content}\n".encode())
    return listing.hexdigest()


@functools.cache
def _own() -> str:
    return _digest(Path(__file__).resolve().parent)


def code_sha256(root: Path | None = None) -> str:
    """SHA-256 (hex) of the package's files (:func:`code_files`): each file's path and the
    SHA-256 of its bytes, one line each in path order, hashed together.

    Parameters
    ----------
    root : pathlib.Path, optional
        The package directory; default: this package's (computed once per process).

    Returns
    -------
    str
        64 hex digits.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "a.py").write_text("x = 1\\n")
    ...     before = code_sha256(Path(tmp))
    ...     _ = (Path(tmp) / "a.py").write_text("x = 2\\n")
    ...     before != code_sha256(Path(tmp))
    True
    """
    return _own() if root is None else _digest(Path(root))
