"""Optional parts of routetrace and the extra that installs each.

A plain ``pip install routetrace`` ingests evidence, builds chronologies and writes HTML
exhibits. Heavier parts are extras::

    static   PNG/PDF exhibits (playwright, driving Debian's chromium)
    charts   car-park pattern figures (matplotlib)
    xlsx     XLSX fleet-portal exports (openpyxl)
    fleet    Dask for fleet-scale co-presence and car-park visits (dask, distributed)
    osm      geofences from OpenStreetMap extracts (osmium)
    pmtiles  vector (or raster) PMTiles backgrounds for exhibits (pmtiles)
    all      every one of them (README's first command installs this)

:func:`require` imports a module of an extra or raises :class:`MissingExtra` naming it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

__all__ = ["EXTRAS", "require"]

#: extra -> the distributions it installs (kept in step with pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "static": ("playwright",),
    "charts": ("matplotlib",),
    "xlsx": ("openpyxl",),
    "fleet": ("dask", "distributed"),
    "osm": ("osmium",),
    "pmtiles": ("pmtiles",),
}


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` saying which extra installs it.

    Parameters
    ----------
    module
        Dotted module name, e.g. ``"playwright.sync_api"``.
    extra
        The routetrace extra that installs it (a key of :data:`EXTRAS`).
    purpose
        What needs it, for the message ("PNG/PDF exhibits").

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtra
        When the module cannot be imported.

    Example
    -------
    >>> require("json", extra="static", purpose="a demonstration").__name__
    'json'
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'routetrace[{extra}]' (or 'routetrace[all]')") from exc
