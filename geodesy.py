"""Distances and local metric coordinates for WGS84 positions: the one definition.

Great-circle (haversine) distances in metres on a sphere of the mean Earth radius
(6,371,008.8 m, IUGG); local east/north metres by an equirectangular projection around a
reference point, exact enough within tens of kilometres, which is the scale of every test
a stage makes (stop radius, co-presence distance, car-park size). Every layer (loaders,
routes, maps, samples) uses these; none writes its own.

>>> round(float(haversine_m(51.0, 3.87, 51.0, 3.88)))
700
"""

from __future__ import annotations

import numpy as np

__all__ = ["EARTH_R_M", "haversine_m", "local_xy_m", "xy_to_deg"]

#: Mean Earth radius, metres (IUGG R1).
EARTH_R_M = 6_371_008.8


def haversine_m(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float,
                lon2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in metres between WGS84 points (degrees), element-wise.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Degrees (scalars or arrays that broadcast).

    Returns
    -------
    numpy.ndarray
        Metres, float.

    Example
    -------
    >>> round(float(haversine_m(50.0, 4.0, 51.0, 4.0)))
    111195
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2
    return np.asarray(2 * EARTH_R_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))), dtype=float)


def local_xy_m(lat: np.ndarray | float, lon: np.ndarray | float, *, lat0: float,
               lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """East/north metres from ``(lat0, lon0)`` by an equirectangular projection.

    Parameters
    ----------
    lat, lon : float or numpy.ndarray
        Positions in WGS84 degrees.
    lat0, lon0 : float
        The origin in degrees; the projection is exact enough within a few kilometres of it.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)``: metres east and north of the origin.

    Example
    -------
    >>> x, y = local_xy_m(51.001, 4.0, lat0=51.0, lon0=4.0)
    >>> round(float(x)), round(float(y))
    (0, 111)
    """
    x = np.radians(np.asarray(lon, dtype=float) - lon0) * EARTH_R_M * np.cos(np.radians(lat0))
    y = np.radians(np.asarray(lat, dtype=float) - lat0) * EARTH_R_M
    return x, y


def xy_to_deg(x_m: np.ndarray | float, y_m: np.ndarray | float, *,
              lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Degree offsets ``(dlat, dlon)`` of east/north metres at latitude ``lat0``: the
    inverse of :func:`local_xy_m` around ``lat0``.

    Parameters
    ----------
    x_m, y_m : float or numpy.ndarray
        Metres east and north.
    lat0 : float
        Latitude in degrees at which the metres are measured.

    Returns
    -------
    tuple of numpy.ndarray
        ``(dlat, dlon)`` in degrees.

    Example
    -------
    >>> dlat, dlon = xy_to_deg(0.0, 111.19508, lat0=51.0)
    >>> round(float(dlat), 6), round(float(dlon), 6)
    (0.001, 0.0)
    """
    dlat = np.degrees(np.asarray(y_m, dtype=float) / EARTH_R_M)
    dlon = np.degrees(np.asarray(x_m, dtype=float) / (EARTH_R_M * np.cos(np.radians(lat0))))
    return dlat, dlon
