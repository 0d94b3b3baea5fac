"""Stage names are verb_noun (#16); the old noun names still work for one release, warn,
and give what the new names give."""

from __future__ import annotations

import importlib

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from routetrace.testing import make_fixes

RENAMED = [  # (module, old, new)
    ("routetrace.routes.chronology", "chronology", "order_chronology"),
    ("routetrace.routes.corroborate", "corroborate", "corroborate_statements"),
    ("routetrace.routes.carparks", "carpark_visits", "find_carpark_visits"),
    ("routetrace.routes.carparks", "hour_of_week", "count_hour_of_week"),
    ("routetrace.routes.carparks", "recurring_visitors", "find_recurring_visitors"),
    ("routetrace.routes.carparks", "dwell_outliers", "find_dwell_outliers"),
    ("routetrace.routes.carparks", "geofences_from_stops", "make_geofences_from_stops"),
    ("routetrace.routes.copresence", "copresence_pairs", "find_copresence_pairs"),
]


@pytest.mark.parametrize(("module", "old", "new"), RENAMED)
def test_the_new_name_is_public_and_the_old_one_is_not(module: str, old: str, new: str) -> None:
    m = importlib.import_module(module)
    assert new in m.__all__ and old not in m.__all__
    assert old in (m.__dict__[old].__doc__ or "") or new in (m.__dict__[old].__doc__ or "")


def test_an_old_name_warns_and_gives_what_the_new_one_gives() -> None:
    from routetrace.routes import carparks, copresence

    a = make_fixes(t_utc=pd.date_range("2025-03-01T10:00Z", periods=20, freq="1min"), lat=50.0,
                   lon=4.0, subject_id="a")
    b = make_fixes(t_utc=pd.date_range("2025-03-01T10:00:20Z", periods=20, freq="1min"),
                   lat=50.0001, lon=4.0, subject_id="b")
    fixes = pd.concat([a, b], ignore_index=True)
    new = copresence.find_copresence_pairs(fixes)
    with pytest.warns(DeprecationWarning, match="copresence_pairs\\(\\) is renamed find_copresence_pairs"):
        old = copresence.copresence_pairs(fixes)
    pd.testing.assert_frame_equal(old, new)
    assert len(new) > 0
    fence = gpd.GeoDataFrame({"name": ["P1"]}, geometry=[shapely.Point(4.0, 50.0).buffer(0.001)],
                             crs="EPSG:4326")
    from routetrace.routes import carpark_visits  # the package's old name too

    with pytest.warns(DeprecationWarning, match="renamed find_carpark_visits"):
        old = carpark_visits(fixes, fence)
    new = carparks.find_carpark_visits(fixes, fence)
    pd.testing.assert_frame_equal(old, new)
    assert sorted(new["subject_id"]) == ["a", "b"]
