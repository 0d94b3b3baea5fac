"""FIT loader: real activity and Locations files, faults mid-way, chained files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import LoaderError
from routetrace.fuzzing import mutate
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree

EXPECTED = {  # file: (records read, fixes, places) — from SOURCES.md
    "fitparse_activity-small-fenix2-run.fit": (2809, 2809, 0),
    "fitparse_edge200_2015-10-13-08-43-15.fit": (221, 221, 0),
    "fitparse_garmin-fenix-5-bike.fit": (19, 19, 0),
    "fitparse_sample_mulitple_header.fit": (1773, 1462, 0),
    "fitparse_vivoactive-hr_no-gps_20170518-191602-1740899583.fit": (1641, 0, 0),
    "gpsbabel_Lctns_Instinct.fit": (10, 0, 10),
    "gpsbabel_fitlocations-sample.fit": (2, 0, 2),
    "reitti_edge840_sample.fit": (591, 591, 0),
}


def test_every_real_fit_loads_with_counts(realdata_dir: Path) -> None:
    folder = realdata_dir / "fit"
    before = hash_tree(folder)
    for f in sorted(folder.iterdir()):
        assert detect_format(f).name == "fit"
        res = load(f)
        assert_count_rule(res)
        if f.name in EXPECTED:
            assert (res.records_read, len(res.fixes), len(res.places)) == EXPECTED[f.name], f.name
    assert hash_tree(folder) == before


def test_faults_keep_what_was_decoded_and_say_where(realdata_dir: Path) -> None:
    strava = load(realdata_dir / "fit" / "fitparse_strava-android-app-201.10-b1218918.fit")
    assert len(strava.fixes) == 237 and strava.records_read - 1 == 473
    fault = strava.rejects.set_index("record").loc["fault", "reason"]
    assert "7471" in fault or "byte 747" in fault
    eof = load(realdata_dir / "fit" / "fitparse_activity-unexpected-eof.fit")
    assert "FitEOFError" in eof.rejects.set_index("record").loc["fault", "reason"]
    lezyne = load(realdata_dir / "fit" / "gpsbabel_lezyne_bad-endian.fit")
    assert len(lezyne.fixes) == 804
    first = load(realdata_dir / "fit" / "fitparse_activity-small-fenix2-run.fit").fixes
    assert first["t_utc"].min().year == 2015 and 58 < first["lat"].iloc[0] < 59.5  # Stavanger


def test_saved_locations_keep_unicode_names(realdata_dir: Path) -> None:
    pl = load(realdata_dir / "fit" / "gpsbabel_Lctns_Instinct.fit").places
    assert (pl["kind"] == "saved").all() and pl["lat"].abs().max() > 89  # the poles are there
    assert any(any(ord(ch) > 0x400 for ch in str(n)) for n in pl["name"])  # Cyrillic/Hebrew/Arabic


def test_garbage_after_a_fit_header(tmp_path: Path, realdata_dir: Path) -> None:
    data = (realdata_dir / "fit" / "fitparse_garmin-fenix-5-bike.fit").read_bytes()
    p = tmp_path / "cut.fit"
    p.write_bytes(data[: len(data) // 2] + b"\xff" * 50)
    res = load(p)
    assert_count_rule(res)
    assert "fault" in set(res.rejects["record"])
    assert len(res.fixes) > 0  # what came before the damage is kept
    with pytest.raises(LoaderError, match="no such file"):
        load(tmp_path / "missing.fit")


def test_saved_location_elevation_and_unset_sentinel(realdata_dir: Path) -> None:
    pl = load(realdata_dir / "fit" / "gpsbabel_Lctns_Instinct.fit").places.set_index("name")
    ele = pl["extra"].map(lambda s: json.loads(s).get("elevation_m"))
    assert ele["Greenwich ele46"] == pytest.approx(46.0) and ele["South pole 2835"] == pytest.approx(2835.0)
    assert pd.isna(ele["Elevation unset"])  # 0xFFFF sentinel -> NA, not -500 m or 12607 m
    sample = load(realdata_dir / "fit" / "gpsbabel_fitlocations-sample.fit").places
    assert sample["text"].str.startswith("Some random position").any()


@pytest.mark.parametrize("tweak", ["field_count", "base_type", "field_size"])
def test_broken_definition_message_is_a_located_fault(tmp_path: Path, realdata_dir: Path, tweak: str) -> None:
    data = bytearray((realdata_dir / "fit" / "fitparse_garmin-fenix-5-bike.fit").read_bytes())
    pos = data.find(bytes([0, 0, 19, 0]), 14) - 1  # definition of 'lap' (global 19), after the records
    assert data[pos] & 0x40
    data[pos + {"field_count": 5, "base_type": 8, "field_size": 7}[tweak]] = \
        {"field_count": 255, "base_type": 0x7F, "field_size": 0}[tweak]
    p = tmp_path / "broken.fit"
    p.write_bytes(bytes(data))
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 19  # the records decoded before the broken definition are kept
    reason = res.rejects.set_index("record").loc["fault", "reason"]
    assert reason.startswith("decoding stopped at byte ")


def test_corrupt_second_header_keeps_the_first_file(realdata_dir: Path) -> None:
    res = load(realdata_dir / "fit" / "fitparse_activity-settings-corruptheader.fit")
    assert_count_rule(res)
    assert len(res.fixes) == 14 and res.records_read == 15  # 14 records + the fault
    fault = res.rejects.set_index("record").loc["fault", "reason"]
    assert "FitHeaderError" in fault and "771" in fault  # where the chained header is broken


def test_no_gps_records_are_counted_rejects(realdata_dir: Path) -> None:
    res = load(realdata_dir / "fit" / "fitparse_vivoactive-hr_no-gps_20170518-191602-1740899583.fit")
    assert res.records_read == 1641 and len(res.fixes) == 0
    assert (res.rejects["reason"] == "record message without a position (no GPS fix)").sum() == 1641


def test_record_position_made_an_array_by_a_damaged_definition(realdata_dir: Path, tmp_path: Path) -> None:
    """Fuzz input fit:38147: a definition message turns position_long into a 4-byte array.
    Those record messages are rejects saying so (was: a broken count rule)."""
    data = (realdata_dir / "fit" / "fitparse_activity-settings-corruptheader.fit").read_bytes()
    p = tmp_path / "damaged.fit"
    p.write_bytes(mutate(data, [("flip", 110336917, 612374374), ("flip", 939012881, 632100598),
                                ("delete", 360900625, 1026206259), ("insert", 208658883, 983680707)]))
    res = load(p, format="fit")
    assert_count_rule(res)
    assert res.rejects["reason"].str.startswith("record position is not a number").any()
