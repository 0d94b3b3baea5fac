"""The canonical tables: declaration, coercion, validation, flags."""

from __future__ import annotations

import pandas as pd
import pytest

from routetrace import schema
from routetrace.errors import SchemaError
from routetrace.testing import assert_fixes_equal, make_fixes


def test_every_table_has_an_empty_form_that_validates() -> None:
    for kind in schema.TABLES:
        schema.validate(schema.empty(kind), kind)


def test_naive_times_are_refused() -> None:
    df = make_fixes(t_utc=["2025-10-24T20:00Z"], lat=51.0, lon=3.0)
    naive = df.assign(t_utc=df["t_utc"].dt.tz_localize(None))
    with pytest.raises(SchemaError, match="fixes.t_utc: naive"):
        schema.validate(naive, "fixes")
    with pytest.raises(SchemaError, match="naive"):
        schema.coerce(naive, "fixes")
    with pytest.raises(SchemaError, match="time zone"):
        make_fixes(t_utc=["2025-10-24T20:00"], lat=51.0, lon=3.0)


def test_validate_names_the_column() -> None:
    df = make_fixes(t_utc=["2025-10-24T20:00Z"], lat=51.0, lon=3.0)
    with pytest.raises(SchemaError, match="'lat' is missing"):
        schema.validate(df.drop(columns="lat"), "fixes")
    with pytest.raises(SchemaError, match="fixes.lat: value out of"):
        schema.validate(df.assign(lat=91.0), "fixes")
    with pytest.raises(SchemaError, match="fixes.subject_id: missing value"):
        schema.validate(df.assign(subject_id=pd.Series([pd.NA], dtype="string")), "fixes")


def test_coerce_converts_other_zones_to_utc_and_keeps_link_columns() -> None:
    df = make_fixes(t_utc=["2025-10-24T20:00Z"], lat=0.0, lon=0.0)
    local = df.assign(t_utc=df["t_utc"].dt.tz_convert("Europe/Brussels"), stop_id="s1")
    out = schema.coerce(local, "fixes")
    assert str(out["t_utc"].dt.tz) == "UTC" and out["stop_id"].iloc[0] == "s1"
    assert out["lat"].iloc[0] == 0.0  # 0.0 is a latitude, not a missing value


def test_flags_vocabulary() -> None:
    s = pd.Series(["", "hint", ""], dtype="string")
    s = schema.add_flag(s, [True, True, False], "low_accuracy")
    assert s.tolist() == ["low_accuracy", "hint|low_accuracy", ""]
    assert schema.has_flag(s, "hint").tolist() == [False, True, False]
    with pytest.raises(SchemaError, match="unknown flag"):
        schema.add_flag(s, [True, False, False], "made_up")


def test_assert_fixes_equal_detects_a_moved_fix() -> None:
    a = make_fixes(t_utc=["2025-10-24T20:00Z", "2025-10-24T20:01Z"], lat=[51, 51.1], lon=3.0)
    assert_fixes_equal(a, a.iloc[::-1])
    with pytest.raises(AssertionError, match="lat"):
        assert_fixes_equal(a, a.assign(lat=[51, 51.2]))
