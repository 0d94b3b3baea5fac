"""Geometry helpers of the stages: clusters of points and the local time zone.

Distances and local metres are :mod:`routetrace.geodesy` (re-exported here for the stages).
"""

from __future__ import annotations

import functools

import numpy as np
import shapely

from ..geodesy import EARTH_R_M, haversine_m, local_xy_m
from ..timebase import tz_finder

__all__ = ["EARTH_R_M", "cluster_points_m", "haversine_m", "local_xy_m", "local_zone"]

def cluster_points_m(lat: np.ndarray, lon: np.ndarray, *, eps_m: float) -> np.ndarray:
    """Single-linkage clusters: points closer than ``eps_m`` (metres) share a label.

    Labels are 0..k-1 in order of each cluster's first point. Uses an STRtree on local
    metres, so it is O(n log n) for spread-out points.

    Parameters
    ----------
    lat, lon : numpy.ndarray
        Positions in WGS84 degrees, equal length.
    eps_m : float
        Linkage distance in metres (no default: each caller states its own rule).

    Returns
    -------
    numpy.ndarray
        One integer label per point (0..k-1); empty for no points.

    Example
    -------
    >>> cluster_points_m(np.array([51.0, 51.0005, 51.1]), np.array([3.87, 3.87, 3.87]),
    ...                  eps_m=100.0).tolist()
    [0, 0, 1]
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

    Parameters
    ----------
    lat, lon : float
        Position in WGS84 degrees.

    Returns
    -------
    str
        An IANA zone name such as ``Europe/Brussels``; ``UTC`` where no zone is found.

    Example
    -------
    >>> local_zone(50.86, 4.36), local_zone(50.966, 1.883)
    ('Europe/Brussels', 'Europe/Paris')
    """
    return str(tz_finder().timezone_at(lng=float(lon), lat=float(lat)) or "UTC")
