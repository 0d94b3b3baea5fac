"""Takeout zip discovery: localised folder names, every location artifact found and loaded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from routetrace.errors import LoaderError
from routetrace.loaders import load_many
from routetrace.loaders.takeout_discovery import discover, summarise
from routetrace.testing import assert_count_rule

RECORDS = {"locations": [{"latitudeE7": 510000000, "longitudeE7": 38700000, "accuracy": 10,
                          "deviceTag": 42, "timestamp": "2025-10-25T10:00:00Z"}]}
SEMANTIC = {"timelineObjects": [{"placeVisit": {
    "location": {"latitudeE7": 510000000, "longitudeE7": 38700000, "name": "Parking"},
    "duration": {"startTimestamp": "2025-10-25T10:00:00Z",
                 "endTimestamp": "2025-10-25T11:00:00Z"}}}]}
ANDROID = {"semanticSegments": [{"startTime": "2025-10-25T12:00:00+02:00",
                                 "endTime": "2025-10-25T13:00:00+02:00",
                                 "timelinePath": [{"point": "51.0°, 3.87°",
                                                   "time": "2025-10-25T12:10:00+02:00"}]}]}
EDITS = {"timelineEdits": [{"deviceId": "1", "rawSignal": {"signal": {"position": {
    "point": {"latE7": 510000000, "lngE7": 38700000}, "accuracyMm": 5000,
    "timestamp": "2025-10-25T10:00:00Z"}}}}]}

MEMBERS = {
    # German, Japanese, Spanish and French Takeout folder names
    "Takeout/Standortverlauf/Records.json": RECORDS,
    "Takeout/ロケーション履歴/Semantic Location History/2025/2025_OCTOBER.json": SEMANTIC,
    "Takeout/Historial de ubicaciones (Cronología)/Ediciones de Cronología.json": EDITS,
    "Takeout/Historique des positions/Chronologie.json": ANDROID,
    "Takeout/archive_browser.html": "<html>not evidence</html>",
    "Takeout/Fotos/IMG_0001.txt": "not a photo",
}


def _zip(tmp_path: Path) -> Path:
    z = tmp_path / "takeout-20251101T000000Z-001.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(MEMBERS):
            body = MEMBERS[name]
            data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data.encode("utf-8"))
        zf.writestr(zipfile.ZipInfo("../escape.json", (1980, 1, 1, 0, 0, 0)), json.dumps(RECORDS))
    return z


def test_discover_lists_every_location_artifact(tmp_path: Path) -> None:
    found = discover(_zip(tmp_path)).set_index("member")
    fmt = found["format"].dropna().to_dict()
    assert fmt == {
        "Takeout/Standortverlauf/Records.json": "google-takeout-records",
        "Takeout/ロケーション履歴/Semantic Location History/2025/2025_OCTOBER.json":
            "google-takeout-semantic",
        "Takeout/Historial de ubicaciones (Cronología)/Ediciones de Cronología.json":
            "google-timeline-edits",
        "Takeout/Historique des positions/Chronologie.json": "google-timeline-android",
    }
    assert found.loc["../escape.json", "status"].startswith("refused")
    assert found.loc["Takeout/archive_browser.html", "status"].startswith("not a location")
    text = summarise(found.reset_index())
    assert "1  google-takeout-semantic" in text and "other files not read" in text


def test_discover_folder_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "Takeout" / "Standortverlauf"
    root.mkdir(parents=True)
    (root / "Records.json").write_text(json.dumps(RECORDS))
    found = discover(tmp_path)
    assert found["format"].tolist() == ["google-takeout-records"]
    with pytest.raises(LoaderError, match="no such"):
        discover(tmp_path / "missing.zip")


def test_load_many_reads_every_artifact_of_the_zip(tmp_path: Path) -> None:
    z = _zip(tmp_path)
    outcomes = list(load_many(z))
    ok = {o.path.split("!", 1)[1]: o.result for o in outcomes if o.result is not None}
    assert set(ok) == {m for m in MEMBERS if m.endswith(".json")}
    for res in ok.values():
        assert res is not None
        assert_count_rule(res)
    errors = {o.path.split("!", 1)[1]: type(o.error).__name__ for o in outcomes if o.error}
    assert errors == {"../escape.json": "UnsafeArchive", "Takeout/Fotos/IMG_0001.txt": "UnknownFormat",
                      "Takeout/archive_browser.html": "UnknownFormat"}
    rec = ok["Takeout/Standortverlauf/Records.json"]
    assert rec is not None and rec.fixes["subject_id"].tolist() == ["google-device-42"]
    assert rec.source["member"].iloc[0] == "Takeout/Standortverlauf/Records.json"
