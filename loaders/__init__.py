"""Evidence loaders: one module per format, all producing the canonical tables.

Registration is explicit: each built-in loader module is imported here and registers
itself with :func:`routetrace.loaders.base.register`. Use :func:`load` for one file and
:func:`load_many` for folders and archives.
"""

from __future__ import annotations

# Built-in loaders (each registers itself on import). Keep this list sorted.
from . import chat as _chat  # noqa: F401
from . import csv as _csv  # noqa: F401
from . import exif as _exif  # noqa: F401
from . import fit as _fit  # noqa: F401
from . import gpx as _gpx  # noqa: F401
from . import igc as _igc  # noqa: F401
from . import ios_consolidated as _ios_consolidated  # noqa: F401
from . import ios_knowledgec as _ios_knowledgec  # noqa: F401
from . import ios_photos as _ios_photos  # noqa: F401
from . import ios_routined as _ios_routined  # noqa: F401
from . import kml as _kml  # noqa: F401
from . import nmea as _nmea  # noqa: F401
from . import portal as _portal  # noqa: F401
from . import statements as _statements  # noqa: F401
from . import takeout_records as _takeout_records  # noqa: F401
from . import takeout_semantic as _takeout_semantic  # noqa: F401
from . import tcx as _tcx  # noqa: F401
from . import teltonika as _teltonika  # noqa: F401
from . import timeline_device as _timeline_device  # noqa: F401
from .base import (
    PART_ROWS,
    REGISTRY,
    LoadContext,
    LoaderSpec,
    LoadOutcome,
    LoadPart,
    LoadResult,
    check_options,
    detect_format,
    load,
    load_many,
    register,
)

__all__ = [
    "PART_ROWS",
    "REGISTRY",
    "LoadContext",
    "LoadOutcome",
    "LoadPart",
    "LoadResult",
    "LoaderSpec",
    "check_options",
    "detect_format",
    "formats",
    "load",
    "load_many",
    "register",
]


def formats() -> list[LoaderSpec]:
    """The registered loaders, sorted by name (what ``routetrace formats`` lists).

    Returns
    -------
    list of LoaderSpec
        One spec per registered format: its ``name`` (the ``--format`` value),
        ``description``, sniffer and the tables it can fill.

    Example
    -------
    >>> specs = formats()
    >>> [s.name for s in specs][:3]
    ['csv', 'exif', 'fit']
    >>> next(s for s in specs if s.name == "gpx").produces
    ('fixes', 'places')
    """
    return [REGISTRY[name][0] for name in sorted(REGISTRY)]
