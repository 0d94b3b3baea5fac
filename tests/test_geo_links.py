"""Map links, geo: URIs, Plus Codes and typed coordinates: one test per form, known coordinates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from openlocationcode import openlocationcode as olc

from routetrace.loaders.geo_links import (
    GeoLinkError,
    find_links,
    parse_place,
    zoom_radius_m,
)

LAT, LON = 50.8600, 4.3600  # a point in Brussels


@pytest.mark.parametrize(("text", "form", "zoom"), [
    ("50.86, 4.36", "coordinates", None),
    ("50.86 4.36", "coordinates", None),
    ("50.86°N 4.36°E", "coordinates", None),
    ("50°51'36.0\"N 4°21'36.0\"E", "dms", None),
    # Google: the pin !3d!4d wins over the viewport centre @
    ("https://www.google.com/maps/place/Hotel/@50.8500,4.3500,15z/data=!3m1!4b1!4m6!3m5"
     "!1s0x0:0x0!8m2!3d50.86!4d4.36", "google-place", 15.0),
    ("https://maps.google.com/?q=50.860000,4.360000", "google-q", None),
    ("https://www.google.com/maps/search/?api=1&query=50.86%2C4.36", "google-q", None),
    ("https://maps.google.com/maps?q=loc:50.86,4.36", "google-q", None),
    ("https://maps.google.com/maps?ll=50.86,4.36&z=17", "google-ll", 17.0),
    ("https://www.google.com/maps/@50.86,4.36,15z", "google-@", 15.0),
    ("https://maps.apple.com/?ll=50.86,4.36&z=16&q=Hotel", "apple-ll", 16.0),
    ("https://maps.apple.com/?q=50.86,4.36", "apple-q", None),
    ("https://maps.apple.com/place?coordinate=50.86,4.36&name=X", "apple-q", None),
    ("https://www.openstreetmap.org/?mlat=50.86&mlon=4.36#map=15/50.85/4.35", "osm-marker", 15.0),
    ("https://www.openstreetmap.org/#map=15/50.86/4.36", "osm-map", 15.0),
    ("geo:50.86,4.36", "geo-uri", None),
    ("geo:50.86,4.36;u=35?z=15", "geo-uri", 15.0),
    ("geo:0,0?q=50.86,4.36(Hotel)", "geo-uri", None),
])
def test_every_form_gives_the_known_coordinates(text: str, form: str, zoom: float | None) -> None:
    g = parse_place(text)
    assert (g.form, g.zoom) == (form, zoom)
    assert g.lat == pytest.approx(LAT, abs=1e-9) and g.lon == pytest.approx(LON, abs=1e-9)


def test_southern_and_western_hemispheres() -> None:
    assert (parse_place("33.8688° S, 151.2093° E").lat, parse_place("40.7128 N 74.0060 W").lon) == (
        -33.8688, -74.006)
    g = parse_place("https://www.google.com/maps/@-22.9519,-43.2105,14z")
    assert (g.lat, g.lon) == (-22.9519, -43.2105)


def test_plus_codes_full_and_short_with_reference() -> None:
    code = olc.encode(LAT, LON, 10)
    g = parse_place(code)
    assert g.form == "plus-code"
    assert abs(g.lat - LAT) < 1.3e-4 and abs(g.lon - LON) < 1.3e-4
    assert 5 < g.radius_m < 12  # half-diagonal of a 10-digit cell (~14 m x 9 m)
    short = code[4:] + " Brussels"
    got = parse_place(short, reference=lambda name: (50.85, 4.35) if name == "Brussels" else None)
    assert (got.lat, got.lon) == (g.lat, g.lon) and "Brussels" in (got.radius_basis or "")
    with pytest.raises(GeoLinkError, match="gazetteer"):
        parse_place(short)


def test_zoom_rule_and_stated_uncertainties() -> None:
    # 50 px at Web-Mercator resolution: halves per zoom level, cos(lat) scaling, 10 m floor
    assert zoom_radius_m(15, 0.0) == pytest.approx(50 * 156543.03392 / 2**15)
    assert zoom_radius_m(14, 51.0) == pytest.approx(2 * zoom_radius_m(15, 51.0))
    assert zoom_radius_m(15, 60.0) == pytest.approx(zoom_radius_m(15, 0.0) * math.cos(math.radians(60)))
    assert zoom_radius_m(22, 51.0) == 10.0
    assert parse_place("https://www.google.com/maps/@50.86,4.36,15z").radius_m == pytest.approx(
        zoom_radius_m(15, 50.86))
    assert parse_place("geo:50.86,4.36;u=35?z=15").radius_m == 35.0  # u= wins over zoom
    assert parse_place("https://www.google.com/maps/@50.86,4.36,800m/data=!3m1!1e3").radius_m == 40.0
    assert parse_place("50.86,4.36").radius_m is None  # nothing stated, nothing invented


@pytest.mark.parametrize(("text", "why"), [
    ("https://maps.app.goo.gl/AbCdEf123", "short link"),
    ("https://goo.gl/maps/xyz", "short link"),
    ("https://www.google.com/maps/place/Hotel+Metropole", "without coordinates"),
    ("https://maps.apple.com/?q=Hotel", "without coordinates"),
    ("https://example.org/page", "no coordinates"),
    ("95.0, 4.3", "latitude 95.0"),
    ("50.0, 190.0", "longitude 190.0"),
    ("geo:0,0", "placeholder"),
    ("0.0, 0.0", "placeholder"),
    ("near the big tree", "not coordinates"),
    ("", "empty"),
    ("geo:50,4;crs=EPSG:31370", "CRS"),
])
def test_malformed_places_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(GeoLinkError, match=why):
        parse_place(text)


def test_find_links_in_chat_text() -> None:
    text = ("location: https://maps.google.com/?q=50.86,4.36. Also see "
            "https://example.org/x and geo:51.0,3.87 (car park)")
    assert find_links(text) == ["https://maps.google.com/?q=50.86,4.36", "geo:51.0,3.87"]


def test_real_geo_uris_from_google_timeline_exports(realdata_dir: Path) -> None:
    import re

    found = 0
    for f in sorted((realdata_dir / "takeout").rglob("*.json")):
        for uri in re.findall(r'"(geo:[^"]*)"', f.read_text(encoding="utf-8-sig")):
            lat_s, lon_s = uri[4:].split(",")
            g = parse_place(uri)
            assert (g.lat, g.lon, g.form) == (float(lat_s), float(lon_s), "geo-uri"), (f.name, uri)
            found += 1
    assert found >= 85  # both iOS timeline exports use 'geo:lat,lng' strings
