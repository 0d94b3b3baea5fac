"""The chronology engine: pure stages over the canonical tables.

``clean_fixes`` → ``merge_sources`` → ``detect_stops`` (+ ``detect_gaps``) → ``build_trips``
→ ``cluster_places`` → ``order_chronology``; and the analyses ``detect_copresence``,
``find_carpark_visits`` and ``corroborate_statements``. Stages are named verb_noun; the
old noun names (``chronology``, ``carpark_visits``, ``copresence_pairs``, ``corroborate``,
``hour_of_week``, ``recurring_visitors``, ``dwell_outliers``, ``geofences_from_stops``)
still work for one release and warn (``DeprecationWarning``). Each stage returns new
tables (linked to its input by id columns) and records its parameters in
``attrs["params"]``.
"""

from __future__ import annotations

from .carparks import carpark_visits as carpark_visits  # deprecated alias, not in __all__
from .carparks import find_carpark_visits
from .chronology import chronology as chronology  # deprecated alias, not in __all__
from .chronology import order_chronology
from .clean import clean_fixes
from .copresence import detect_copresence, detect_cotravel
from .merge import merge_places, merge_sources
from .places import cluster_places
from .stops import detect_gaps, detect_stops
from .trips import build_trips, compare_portal_stops

__all__ = [
    "build_trips",
    "clean_fixes",
    "cluster_places",
    "compare_portal_stops",
    "detect_copresence",
    "detect_cotravel",
    "detect_gaps",
    "detect_stops",
    "find_carpark_visits",
    "merge_places",
    "merge_sources",
    "order_chronology",
]
