"""Page layout of a map exhibit: the overview scale and the groups of markers that collide.

The rule a court can read
-------------------------
A map page is drawn at the scale that fits every fix, stop and place on it (the
*overview*). Two markers *collide* at that scale when their centres are less than
``marker_px`` pixels apart (a numbered stop marker is 24 px wide). A *group* is a set of
stops linked by collisions (single linkage), at least two of them, with the places whose
markers collide with one of its stops; a group wider than ``max_extent_px`` at the overview
scale is split by the same rule at half the distance, so that a chain of stops along a road
does not become one group as wide as the map. Each group is lettered (A, B, ... in the order of its first stop
number) and framed on the overview, and gets a detail view (a page of the PDF, a "zoom to"
button on the HTML map) at the scale that fits it.

The scale is computed as Leaflet's ``fitBounds`` computes it (Web Mercator, 256 px tiles,
zoom snapped down to ``zoom_snap``), so the groups found here are the ones the page shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..routes.geo import cluster_points_m, local_xy_m

__all__ = ["MarkerGroup", "find_marker_groups", "fit_zoom", "group_letter", "metres_per_pixel"]

#: Width of a numbered stop marker on the page, in CSS pixels.
MARKER_PX = 24.0
#: Circumference of the Earth at the equator used by Web Mercator tiles (metres).
_WEB_MERCATOR_M = 40_075_016.686


def metres_per_pixel(lat_deg: float, zoom: float) -> float:
    """Ground metres covered by one CSS pixel at latitude ``lat_deg`` and Leaflet ``zoom``.

    Parameters
    ----------
    lat_deg : float
        Latitude in degrees (the Web Mercator scale depends on it).
    zoom : float
        Leaflet zoom level (fractional zooms allowed).

    Returns
    -------
    float
        Metres per CSS pixel.

    Example
    -------
    >>> round(metres_per_pixel(0.0, 0.0))
    156543
    """
    return _WEB_MERCATOR_M * math.cos(math.radians(lat_deg)) / (256.0 * 2.0 ** zoom)


def _mercator_px(lat: float, lon: float, zoom: float) -> tuple[float, float]:
    scale = 256.0 * 2.0 ** zoom
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    r = math.radians(lat)
    return (lon + 180.0) / 360.0 * scale, (1.0 - math.log(math.tan(r) + 1.0 / math.cos(r)) / math.pi) / 2.0 * scale


def fit_zoom(bounds: tuple[float, float, float, float], *, width_px: float, height_px: float,
             padding_px: float = 0.0, zoom_snap: float = 0.25, max_zoom: float = 18.0) -> float:
    """The zoom Leaflet's ``fitBounds`` picks for ``bounds`` = (south, west, north, east).

    ``padding_px`` is taken off each side of the map, as Leaflet's ``padding`` option does.

    Parameters
    ----------
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    width_px, height_px : float
        Size of the map in CSS pixels.
    padding_px : float, default 0.0
        Padding on each side in CSS pixels.
    zoom_snap : float, default 0.25
        Zoom step, as Leaflet's ``zoomSnap`` option (the timeline exhibit sets 0.25).
    max_zoom : float, default 18.0
        Largest zoom returned (Leaflet's usual tile maximum).

    Returns
    -------
    float
        The zoom, a multiple of ``zoom_snap``.

    Example
    -------
    >>> fit_zoom((50.8, 3.0, 51.2, 4.5), width_px=800, height_px=600)
    9.5
    """
    s, w, n, e = bounds
    x0, y0 = _mercator_px(n, w, 0.0)
    x1, y1 = _mercator_px(s, e, 0.0)
    bw, bh = max(abs(x1 - x0), 1e-9), max(abs(y1 - y0), 1e-9)
    scale = min((width_px - 2 * padding_px) / bw, (height_px - 2 * padding_px) / bh)
    zoom = math.log2(max(scale, 1e-12))
    zoom = round(zoom / (zoom_snap / 100.0)) * (zoom_snap / 100.0)
    return float(min(max_zoom, math.floor(zoom / zoom_snap) * zoom_snap))


def group_letter(k: int) -> str:
    """Letters of the groups: A..Z, then AA, AB, ...

    Parameters
    ----------
    k : int
        0-based group number.

    Returns
    -------
    str
        The group's letters.

    Example
    -------
    >>> [group_letter(k) for k in (0, 25, 26, 27)]
    ['A', 'Z', 'AA', 'AB']
    """
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(65 + r) + out
    return out


@dataclass(frozen=True)
class MarkerGroup:
    """Markers that collide at the overview scale, shown framed and in a detail view."""

    letter: str
    stop_nos: list[int]
    place_rows: list[int] = field(default_factory=list)
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def title(self) -> str:
        """``A: stops 3-14, 16`` (runs of three or more as ranges), plus the places in it.

        >>> MarkerGroup("B", [1, 2, 3, 5, 7, 8]).title
        'B: stops 1\u20133, 5, 7, 8'
        """
        runs: list[list[int]] = []
        for n in self.stop_nos:
            if runs and n == runs[-1][-1] + 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        parts = [f"{r[0]}\u2013{r[-1]}" if len(r) > 2 else ", ".join(str(n) for n in r) for r in runs]
        text = ("stop " if len(self.stop_nos) == 1 else "stops ") + ", ".join(parts)
        if self.place_rows:
            text += f" and {len(self.place_rows)} place{'s' if len(self.place_rows) > 1 else ''}"
        return f"{self.letter}: {text}"


def _split(idx: np.ndarray, x: np.ndarray, y: np.ndarray, lat: np.ndarray, lon: np.ndarray, *,
           eps_m: float, max_extent_m: float, min_eps_m: float) -> list[np.ndarray]:
    """Collision components of the markers ``idx``; too-wide ones split at half the distance."""
    labels = cluster_points_m(lat[idx], lon[idx], eps_m=eps_m)
    out: list[np.ndarray] = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = idx[labels == c]
        if len(members) < 2:
            continue
        extent = max(float(np.ptp(x[members])), float(np.ptp(y[members])))
        if extent > max_extent_m and eps_m / 2 >= min_eps_m:
            out.extend(_split(members, x, y, lat, lon, eps_m=eps_m / 2, max_extent_m=max_extent_m,
                              min_eps_m=min_eps_m))
        else:
            out.append(members)
    return out


def find_marker_groups(markers: pd.DataFrame, *, metres_per_px: float, marker_px: float = MARKER_PX,
                       max_extent_px: float = 240.0) -> list[MarkerGroup]:
    """Groups of stops whose markers collide at the overview scale, with the places near them.

    Stops are linked by collisions (see the module doc); a group holds at least two stops.
    A place joins the group of a stop its marker collides with; places do not link stops
    (a row of places along a road would otherwise chain distant stops into one group).

    Parameters
    ----------
    markers
        One row per marker: ``lat``, ``lon`` (WGS84 degrees) and ``stop_no`` (the stop's
        chronology number, or NA for a place).
    metres_per_px
        Ground metres per CSS pixel at the overview scale (:func:`metres_per_pixel` of
        :func:`fit_zoom`).
    marker_px
        Two markers whose centres are closer than this many pixels collide.
    max_extent_px
        A group wider or taller than this at the overview scale is split (see module doc).

    Returns
    -------
    list of MarkerGroup
        Lettered in the order of each group's first stop number. Places in a group are
        named by their row in ``markers`` (``place_rows``); ``bounds`` covers its stops.

    Examples
    --------
    >>> m = pd.DataFrame({"lat": [51.0, 51.0001, 51.0002, 51.5], "lon": [3.0, 3.0001, 3.0, 4.0],
    ...                   "stop_no": [1, 2, pd.NA, 3]})
    >>> [g.title for g in find_marker_groups(m, metres_per_px=100.0)]
    ['A: stops 1, 2 and 1 place']
    """
    lat = markers["lat"].to_numpy(float)
    lon = markers["lon"].to_numpy(float)
    nos = pd.array(markers["stop_no"], dtype="Int64")
    finite = np.isfinite(lat) & np.isfinite(lon)
    is_stop = finite & ~np.asarray(pd.isna(nos), dtype=bool)
    stops = np.flatnonzero(is_stop)
    if len(stops) < 2 or metres_per_px <= 0:
        return []
    x, y = local_xy_m(lat, lon, lat0=float(np.mean(lat[finite])), lon0=float(np.mean(lon[finite])))
    eps_m = marker_px * metres_per_px
    comps = _split(stops, x, y, lat, lon, eps_m=eps_m, max_extent_m=max_extent_px * metres_per_px,
                   min_eps_m=metres_per_px)
    places = np.flatnonzero(finite & ~is_stop)
    found = []
    for members in comps:
        near = (np.hypot(x[places][:, None] - x[members][None, :], y[places][:, None] - y[members][None, :])
                < eps_m).any(axis=1) if len(places) else np.zeros(0, dtype=bool)
        rows = places[near]
        b = (float(lat[members].min()), float(lon[members].min()), float(lat[members].max()),
             float(lon[members].max()))
        found.append((sorted(int(nos[i]) for i in members), sorted(int(i) for i in rows), b))
    found.sort(key=lambda g: g[0][0])
    return [MarkerGroup(letter=group_letter(k), stop_nos=s, place_rows=p, bounds=b)
            for k, (s, p, b) in enumerate(found)]
