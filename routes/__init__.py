"""The chronology engine: pure stages over the canonical tables.

``clean_fixes`` → ``merge_sources`` → ``detect_stops`` (+ ``detect_gaps``) → ``build_trips``
→ ``cluster_places`` → ``chronology``; and the analyses ``detect_copresence``,
``carpark_visits`` and ``corroborate``. Each stage returns new tables (linked to its input
by id columns) and records its parameters in ``attrs["params"]``.
"""

from __future__ import annotations

from .carparks import carpark_visits
from .chronology import chronology
from .clean import clean_fixes
from .copresence import detect_copresence, detect_cotravel
from .merge import merge_places, merge_sources
from .places import cluster_places
from .stops import detect_gaps, detect_stops
from .trips import build_trips, compare_portal_stops

__all__ = [
    "build_trips",
    "carpark_visits",
    "chronology",
    "clean_fixes",
    "cluster_places",
    "compare_portal_stops",
    "detect_copresence",
    "detect_cotravel",
    "detect_gaps",
    "detect_stops",
    "merge_places",
    "merge_sources",
]
