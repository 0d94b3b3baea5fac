"""Coordinates from what people paste: map links, ``geo:`` URIs, Plus Codes, typed degrees.

Pure functions, no network: a link is parsed, never opened. Every form gives a
:class:`GeoRef` (WGS84 degrees, the form it was read from, the map zoom when the link has
one, and the spatial uncertainty the link itself implies) or raises :class:`GeoLinkError`
with a reason a person can act on.

Forms read
----------
======================  ==============================================================
form                    example (what is read)
======================  ==============================================================
``coordinates``         ``50.86, 4.36`` / ``50.86 4.36`` / ``50.86°N 4.36°E``
``dms``                 ``50°51'36.0"N 4°21'36.0"E``
``google-place``        ``.../maps/place/.../@50.8,4.3,15z/data=!3m1!4b1!3d50.86!4d4.36``:
                        the pin ``!3d<lat>!4d<lon>``, not the viewport centre
``google-q``            ``maps.google.com/?q=50.86,4.36``; ``?query=``; ``q=loc:50.86,4.36``
``google-ll``           ``maps.google.com/maps?ll=50.86,4.36&z=15``
``google-@``            ``google.com/maps/@50.86,4.36,15z`` (the viewport centre)
``apple-q`` / ``apple-ll``  ``maps.apple.com/?q=50.86,4.36`` / ``?ll=50.86,4.36&z=15``;
                        also ``coordinate=``, ``sll=``, ``daddr=``
``osm-marker``          ``openstreetmap.org/?mlat=50.86&mlon=4.36#map=15/50.86/4.36``
``osm-map``             ``openstreetmap.org/#map=15/50.86/4.36`` (the viewport centre)
``geo-uri``             RFC 5870 ``geo:50.86,4.36;u=35?z=15``; Android ``geo:0,0?q=50.86,4.36``
``plus-code``           full ``9F26V966+22``; a short code (``V966+22 Brussels``) needs a
                        reference place (a gazetteer entry or a reference point)
======================  ==============================================================

Refused with a reason: short links (``goo.gl``, ``maps.app.goo.gl``, ``osm.org/go``: they
can only be expanded online — paste the full URL), links that name a place without
coordinates (a search by name), latitudes outside ±90 and longitudes outside ±180, and
``0,0`` (a placeholder, not a place).

Uncertainty rule (zoom → metres)
--------------------------------
A place pointed to on a web map is as precise as the pointing: about
:data:`POINTING_PX` (50) screen pixels at the map's zoom. With the Web-Mercator ground
resolution ``156543.03392 · cos(lat) / 2**zoom`` metres per pixel,
``radius_m = POINTING_PX · 156543.03392 · cos(lat) / 2**zoom``, never below
:data:`MIN_RADIUS_M` (10 m). At 51° N: zoom 12 → 1.2 km, 15 → 150 m, 17 → 37 m,
19 → 10 m. Google's ``@lat,lon,<N>m`` (a satellite view N metres high) gives
``N / 20`` (the same rule on a ~1000-pixel-high view). ``geo:`` ``u=`` is the uncertainty
in metres as the URI states it. A Plus Code gives the half-diagonal of its cell.

>>> g = parse_place("https://maps.google.com/?q=50.860000,4.360000")
>>> (g.lat, g.lon, g.form)
(50.86, 4.36, 'google-q')
>>> round(zoom_radius_m(15, 51.0))
150
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from openlocationcode import openlocationcode as olc

from ..geodesy import EARTH_R_M

__all__ = [
    "MIN_RADIUS_M",
    "POINTING_PX",
    "GeoLinkError",
    "GeoRef",
    "find_links",
    "parse_place",
    "zoom_radius_m",
]

#: Screen pixels a person's pointing is trusted to (see the module docstring).
POINTING_PX = 50.0
#: Floor of a zoom-derived radius, metres (GNSS-level precision is not claimed from a map).
MIN_RADIUS_M = 10.0
_WEB_MERCATOR_M_PER_PX_Z0 = 156_543.03392

_NUM = r"[-+]?\d{1,3}(?:\.\d+)?"
_PAIR = re.compile(rf"^\s*(?:loc:)?\s*({_NUM})\s*[, ;]\s*({_NUM})\s*(?:\(.*\))?\s*$", re.S)
_HEMI = re.compile(
    r"^\s*(\d{1,3}(?:\.\d+)?)\s*°?\s*([NS])\s*[, ;]?\s*(\d{1,3}(?:\.\d+)?)\s*°?\s*([EW])\s*$",
    re.I)
_DMS_ONE = r"(\d{1,3})\s*°\s*(\d{1,2})\s*['′]\s*(\d{1,2}(?:\.\d+)?)\s*(?:\"|″|'')?\s*([NSEW])"
_DMS = re.compile(rf"^\s*{_DMS_ONE}\s*[, ;]?\s*{_DMS_ONE}\s*$", re.I)
_AT = re.compile(rf"@({_NUM}),({_NUM})(?:,(\d+(?:\.\d+)?)([zm]))?")
_PIN = re.compile(rf"!3d({_NUM})!4d({_NUM})")
_OSM_MAP = re.compile(rf"map=(\d+(?:\.\d+)?)/({_NUM})/({_NUM})")
_OLC_CHARS = "23456789CFGHJMPQRVWX"
_FULL_OLC = re.compile(rf"^\s*([{_OLC_CHARS}]{{2,8}}0*\+[{_OLC_CHARS}]*)\s*$", re.I)
_SHORT_OLC = re.compile(rf"^\s*([{_OLC_CHARS}]{{2,8}}\+[{_OLC_CHARS}]*)[\s,]+(.+?)\s*$", re.I)
_LINK = re.compile(r"(?:https?://|geo:)[^\s<>\"']+", re.I)
_SHORT_HOSTS = ("goo.gl", "maps.app.goo.gl", "g.co", "osm.org", "bit.ly")


class GeoLinkError(ValueError):
    """The text is not a place that can be read offline; the message says why and what to do."""


@dataclass(frozen=True)
class GeoRef:
    """A place read from text.

    ``radius_m`` is the uncertainty the text itself implies (zoom rule, ``geo:`` ``u=``,
    Plus Code cell); ``None`` when it implies none. ``radius_basis`` says which rule gave it.
    """

    lat: float
    lon: float
    form: str
    zoom: float | None = None
    radius_m: float | None = None
    radius_basis: str | None = None


def zoom_radius_m(zoom: float, lat: float, *, pointing_px: float = POINTING_PX) -> float:
    """Uncertainty (metres) of a point chosen on a web map at ``zoom`` near latitude ``lat``.

    ``pointing_px · 156543.03392 · cos(lat) / 2**zoom``, never below :data:`MIN_RADIUS_M`.

    Parameters
    ----------
    zoom
        The web map's zoom level, 0..23 (else :class:`GeoLinkError`).
    lat
        Latitude of the point, degrees.
    pointing_px
        Screen pixels a person's pointing is trusted to (default :data:`POINTING_PX`, 50).

    Returns
    -------
    float
        The radius in metres.

    Example
    -------
    >>> round(zoom_radius_m(17, 51.0), 1)
    37.6
    """
    if not 0 <= zoom <= 23:
        raise GeoLinkError(f"map zoom {zoom} outside 0..23")
    r = pointing_px * _WEB_MERCATOR_M_PER_PX_Z0 * math.cos(math.radians(lat)) / 2.0**zoom
    return max(MIN_RADIUS_M, float(r))


def _checked(lat: float, lon: float, form: str, **kw: object) -> GeoRef:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise GeoLinkError("coordinates are not finite numbers")
    if abs(lat) > 90:
        raise GeoLinkError(f"latitude {lat} outside -90..90 (are latitude and longitude swapped?)")
    if abs(lon) > 180:
        raise GeoLinkError(f"longitude {lon} outside -180..180")
    if lat == 0 and lon == 0:
        raise GeoLinkError("0,0 is a placeholder for 'no position', not a place")
    zoom = kw.get("zoom")
    radius = kw.get("radius_m")
    basis = kw.get("radius_basis")
    if radius is None and isinstance(zoom, float):
        radius = zoom_radius_m(zoom, lat)
        basis = f"map zoom {zoom:g}: {POINTING_PX:g} px at Web-Mercator resolution"
    return GeoRef(lat=lat, lon=lon, form=form, zoom=zoom if isinstance(zoom, float) else None,
                  radius_m=float(radius) if isinstance(radius, (int, float)) else None,
                  radius_basis=str(basis) if basis is not None else None)


def _pair(text: str) -> tuple[float, float] | None:
    m = _PAIR.match(unquote_plus(text))
    if not m:
        return None
    return float(m.group(1)), float(m.group(2))


def _dms(text: str) -> tuple[float, float] | None:
    m = _DMS.match(text)
    if not m:
        return None
    vals: dict[str, float] = {}
    for i in (0, 4):
        d, mi, s, h = m.group(i + 1), m.group(i + 2), m.group(i + 3), m.group(i + 4).upper()
        if int(mi) >= 60 or float(s) >= 60:
            raise GeoLinkError(f"minutes/seconds of {text!r} must be below 60")
        v = int(d) + int(mi) / 60 + float(s) / 3600
        axis = "lat" if h in "NS" else "lon"
        if axis in vals:
            raise GeoLinkError(f"{text!r} gives two {axis}itudes")
        vals[axis] = -v if h in "SW" else v
    return round(vals["lat"], 9), round(vals["lon"], 9)


def _zoom(qs: dict[str, list[str]]) -> float | None:
    z = qs.get("z") or qs.get("zoom")
    if not z:
        return None
    try:
        return float(z[0])
    except ValueError:
        raise GeoLinkError(f"zoom {z[0]!r} is not a number") from None


def _plus_code(text: str, reference: Callable[[str], tuple[float, float] | None] | None,
               ) -> GeoRef | None:
    full = _FULL_OLC.match(text)
    if full:
        code = full.group(1).upper()
        if not olc.isValid(code):
            raise GeoLinkError(f"{code!r} is not a valid Plus Code")
        if not olc.isFull(code):
            raise GeoLinkError(f"{code!r} is a short Plus Code: add the town it is near "
                               "(e.g. 'V966+22 Brussels') and give that town in the gazetteer")
        return _olc_ref(code)
    short = _SHORT_OLC.match(text)
    if short and olc.isShort(short.group(1).upper()):
        code, locality = short.group(1).upper(), short.group(2)
        ref = reference(locality) if reference else None
        if ref is None:
            raise GeoLinkError(f"short Plus Code {code!r} needs the reference place "
                               f"{locality!r}: add it to the gazetteer file")
        return _olc_ref(olc.recoverNearest(code, ref[0], ref[1]), note=f" near {locality!r}")
    return None


def _olc_ref(code: str, note: str = "") -> GeoRef:
    a = olc.decode(code)
    dlat = math.radians(a.latitudeHi - a.latitudeLo) / 2
    dlon = math.radians(a.longitudeHi - a.longitudeLo) / 2 * math.cos(math.radians(a.latitudeCenter))
    half_diag = EARTH_R_M * math.hypot(dlat, dlon)
    return _checked(round(a.latitudeCenter, 9), round(a.longitudeCenter, 9), "plus-code",
                    radius_m=max(half_diag, 1.0),
                    radius_basis=f"Plus Code {code}{note}: half-diagonal of its cell")


def _geo_uri(text: str) -> GeoRef:
    body = text[4:]
    path, _, query = body.partition("?")
    parts = path.split(";")
    coords = parts[0].split(",")
    params = {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}
    qs = parse_qs(query)
    if params.get("crs", "wgs84").lower() != "wgs84":
        raise GeoLinkError(f"geo: URI in CRS {params['crs']!r}; only wgs84 is read")
    try:
        lat, lon = float(coords[0]), float(coords[1])
    except (ValueError, IndexError):
        raise GeoLinkError(f"geo: URI {text!r} has no 'lat,lon'") from None
    zoom = _zoom(qs)
    if lat == 0 and lon == 0 and qs.get("q"):
        pair = _pair(qs["q"][0])
        if pair is None:
            raise GeoLinkError(f"geo: URI searches for {qs['q'][0]!r} by name; no coordinates")
        lat, lon = pair
    u = params.get("u")
    if u is not None:
        try:
            radius = float(u)
        except ValueError:
            raise GeoLinkError(f"geo: uncertainty u={u!r} is not a number") from None
        return _checked(lat, lon, "geo-uri", zoom=zoom, radius_m=radius,
                        radius_basis="geo: URI u= (metres, as stated)")
    return _checked(lat, lon, "geo-uri", zoom=zoom)


def _url(text: str) -> GeoRef:
    try:
        parts = urlsplit(text)
        _ = parts.hostname
    except ValueError as exc:
        raise GeoLinkError(f"malformed link {text[:120]!r}: {exc}") from None
    host = (parts.hostname or "").lower()
    if host in _SHORT_HOSTS or (host == "osm.org" and parts.path.startswith("/go")):
        raise GeoLinkError(f"short link {text!r} can only be expanded online: open it in a "
                           "browser and paste the full URL it leads to")
    qs = parse_qs(parts.query)
    path = unquote(parts.path)
    brand = ("apple" if "apple" in host else "osm" if "openstreetmap" in host
             else "google" if "google" in host else "map")
    zoom = _zoom(qs)
    pin = _PIN.findall(text)
    at = _AT.search(path)
    at_zoom: float | None = None
    at_radius: float | None = None
    if at and at.group(3):
        if at.group(4) == "z":
            at_zoom = float(at.group(3))
        else:
            at_radius = float(at.group(3)) / 20.0
    if zoom is None:
        zoom = at_zoom
    extra: dict[str, object] = {"zoom": zoom}
    if at_radius is not None and zoom is None:
        extra.update(radius_m=at_radius,
                     radius_basis=f"satellite view {at.group(3) if at else ''} m high / 20")
    if pin:
        lat, lon = pin[-1]
        return _checked(float(lat), float(lon), f"{brand}-place", **extra)
    for key, form in (("q", "q"), ("query", "q"), ("mlat", "marker"), ("coordinate", "q"),
                      ("ll", "ll"), ("sll", "ll"), ("daddr", "q"), ("center", "ll")):
        if key not in qs:
            continue
        if key == "mlat":
            try:
                lat, lon = float(qs["mlat"][0]), float(qs.get("mlon", ["nan"])[0])
            except ValueError:
                raise GeoLinkError("mlat/mlon are not numbers") from None
            osm_z = _OSM_MAP.search(parts.fragment)
            if extra["zoom"] is None and osm_z:
                extra["zoom"] = float(osm_z.group(1))
            return _checked(lat, lon, f"{brand}-marker", **extra)
        pair = _pair(qs[key][0])
        if pair is not None:
            return _checked(pair[0], pair[1], f"{brand}-{form}", **extra)
    if at:
        return _checked(float(at.group(1)), float(at.group(2)), f"{brand}-@", **extra)
    osm = _OSM_MAP.search(parts.fragment) or _OSM_MAP.search(parts.query)
    if osm:
        return _checked(float(osm.group(2)), float(osm.group(3)), f"{brand}-map",
                        zoom=float(osm.group(1)))
    named = qs.get("q") or qs.get("query") or qs.get("address")
    if named or "/place/" in path or "/search/" in path:
        raise GeoLinkError(f"the link names a place without coordinates ({text[:120]!r}): "
                           "give coordinates, or an address found in the gazetteer file")
    raise GeoLinkError(f"no coordinates found in link {text[:120]!r}")


def parse_place(
    text: str,
    *,
    reference: Callable[[str], tuple[float, float] | None] | None = None,
) -> GeoRef:
    """Read a place from a map link, ``geo:`` URI, Plus Code or typed coordinates.

    Parameters
    ----------
    text
        What was pasted or written (hostile text: only parsed, never opened).
    reference
        Looks up a locality name (for short Plus Codes such as ``"V966+22 Brussels"``),
        e.g. a gazetteer lookup; returns ``(lat, lon)`` or ``None``.

    Returns
    -------
    GeoRef
        WGS84 degrees, the form read, the map zoom when the link has one, and the
        uncertainty the text implies (``radius_m``, metres, with ``radius_basis``).

    Raises
    ------
    GeoLinkError
        Naming why no place could be read (short link, name search, out of range, 0,0).

    Example
    -------
    >>> g = parse_place("https://www.openstreetmap.org/?mlat=50.86&mlon=4.36#map=15/50.86/4.36")
    >>> g.lat, g.lon, g.form, g.zoom, round(g.radius_m)
    (50.86, 4.36, 'osm-marker', 15.0, 151)
    >>> parse_place("geo:50.86,4.36;u=35").radius_m
    35.0
    >>> try:
    ...     parse_place("https://maps.app.goo.gl/abc")
    ... except GeoLinkError as exc:
    ...     print(exc)
    short link 'https://maps.app.goo.gl/abc' can only be expanded online: open it in a browser
    and paste the full URL it leads to
    """
    if not isinstance(text, str) or not text.strip():
        raise GeoLinkError("empty place")
    s = text.strip()
    low = s.lower()
    if low.startswith("geo:"):
        return _geo_uri(s)
    if low.startswith(("http://", "https://")) or re.match(r"^(www\.|maps\.)", low):
        return _url(s if "://" in s else "https://" + s)
    pair = _pair(s)
    if pair is not None:
        return _checked(pair[0], pair[1], "coordinates")
    m = _HEMI.match(s)
    if m:
        lat = float(m.group(1)) * (-1 if m.group(2).upper() == "S" else 1)
        lon = float(m.group(3)) * (-1 if m.group(4).upper() == "W" else 1)
        return _checked(lat, lon, "coordinates")
    dms = _dms(s)
    if dms is not None:
        return _checked(dms[0], dms[1], "dms")
    code = _plus_code(s, reference)
    if code is not None:
        return code
    raise GeoLinkError(f"not coordinates, a map link, a geo: URI or a Plus Code: {s[:120]!r}")


def find_links(text: str) -> list[str]:
    """Map links and ``geo:`` URIs inside free text (chat lines), in order of appearance.

    Only links to Google, Apple and OpenStreetMap maps (and short links to them) and
    ``geo:`` URIs are returned; trailing punctuation is dropped. Plus Codes are not
    searched in free text.

    Parameters
    ----------
    text
        Free text (hostile: only searched, never opened).

    Returns
    -------
    list of str
        The links, as written.

    Example
    -------
    >>> find_links("location: https://maps.google.com/?q=50.86,4.36 see you")
    ['https://maps.google.com/?q=50.86,4.36']
    """
    out = []
    for m in _LINK.finditer(text):
        link = m.group(0).rstrip(".,;!?)")
        low = link.lower()
        if low.startswith("geo:") or any(h in low for h in (
                "google.", "goo.gl", "apple.com", "openstreetmap.org", "osm.org", "g.co/")):
            out.append(link)
    return out
