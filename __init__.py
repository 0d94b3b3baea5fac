"""routetrace: reconstruct journeys from seized location evidence, make court map exhibits.

The data flows one way: :mod:`routetrace.loaders` read evidence into the canonical tables of
:mod:`routetrace.schema`; :mod:`routetrace.routes` derive stops, trips and places;
:mod:`routetrace.maps` renders exhibits; :mod:`routetrace.case` stores a case on disk.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
