"""Distances and local metric coordinates for WGS84 positions.

Great-circle (haversine) distances in metres on a sphere of the mean Earth radius
(6,371,008.8 m, IUGG); local east/north metres by an equirectangular projection around a
reference latitude, exact enough within tens of kilometres, which is the scale of every
test a stage makes (stop radius, co-presence distance, car-park size).
"""

from __future__ import annotations

import functools

import numpy as np
import shapely

from ..timebase import tz_finder

__all__ = ["EARTH_R_M", "cluster_points_m", "haversine_m", "local_xy_m", "local_zone"]

EARTH_R_M = 6_371_008.8


def haversine_m(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float,
                lon2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in metres between WGS84 points (degrees), element-wise.

    >>> round(float(haversine_m(51.0, 3.87, 51.0, 3.88)))
    700
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2
    return np.asarray(2 * EARTH_R_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def local_xy_m(lat: np.ndarray, lon: np.ndarray, *, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """East/north metres from (lat0, lon0) by an equirectangular projection."""
    x = np.radians(np.asarray(lon) - lon0) * EARTH_R_M * np.cos(np.radians(lat0))
    y = np.radians(np.asarray(lat) - lat0) * EARTH_R_M
    return x, y


def cluster_points_m(lat: np.ndarray, lon: np.ndarray, *, eps_m: float) -> np.ndarray:
    """Single-linkage clusters: points closer than ``eps_m`` (metres) share a label.

    Labels are 0..k-1 in order of each cluster's first point. Uses an STRtree on local
    metres, so it is O(n log n) for spread-out points.
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if len(lat) == 0:
        return np.zeros(0, dtype=int)
    x, y = local_xy_m(lat, lon, lat0=float(lat.mean()), lon0=float(lon.mean()))
    pts = shapely.points(x, y)
    left, right = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=eps_m)
    parent = np.arange(len(lat))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(len(lat))])
    _, labels = np.unique(roots, return_inverse=True)
    return np.asarray(labels)


@functools.lru_cache(maxsize=65536)
def local_zone(lat: float, lon: float) -> str:
    """IANA time zone at a position (timezonefinder's offline polygons); ``UTC`` at sea.

    >>> local_zone(50.86, 4.36), local_zone(50.966, 1.883)
    ('Europe/Brussels', 'Europe/Paris')
    """
    return str(tz_finder().timezone_at(lng=float(lon), lat=float(lat)) or "UTC")
