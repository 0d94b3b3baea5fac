"""Court map exhibits: offline timeline maps, static PNG/PDF, exports.

The public entry point is :func:`make_exhibit` (``routetrace.maps.exhibit``), which writes
the timeline map (HTML), PNG, PDF, KML/KMZ, GeoPackage, GeoJSON, GPX, chronology CSV and a
``manifest.json`` with the SHA-256 of each. Modules: ``timeline`` (the folium/Leaflet map),
``static`` (Chromium PNG/PDF), ``exports``, ``basemap`` (neutral offline background,
MBTiles and PMTiles), ``chronology``, ``footer``, ``localtime``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_timeline_map", "make_exhibit"]


def __getattr__(name: str) -> Any:  # lazy: importing routetrace.maps stays cheap
    if name == "make_exhibit":
        from .exhibit import make_exhibit
        return make_exhibit
    if name == "build_timeline_map":
        from .timeline import build_timeline_map
        return build_timeline_map
    raise AttributeError(name)
