"""Chat exports: WhatsApp date-order detection, time zones, shared locations, count rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from routetrace.errors import AmbiguousTime, CorruptSource, ParameterError
from routetrace.loaders import detect_format, load
from routetrace.testing import assert_count_rule, hash_tree

TZ = "Europe/Brussels"
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> =HYPERLINK(\"http://evil\")"


def _chat(tmp_path: Path, lines: list[str], name: str = "WhatsApp Chat with K.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


ANDROID_DMY = [
    "24/10/2025, 18:52 - Messages and calls are end-to-end encrypted.",
    "24/10/2025, 18:55 - K.: leaving now",
    "25/10/2025, 10:05 - K.: location: https://maps.google.com/?q=50.860000,4.360000",
    f"25/10/2025, 10:06 - Driver: {HOSTILE}",
    "and a second line",
    "26/10/2025, 02:30 - Driver: in the repeated hour",
    "26/10/2025, 19:05 - Driver: https://maps.app.goo.gl/AbC123",
]


def test_android_export_day_first_is_decided_and_recorded(tmp_path: Path) -> None:
    p = _chat(tmp_path, ANDROID_DMY)
    before = hash_tree(p)
    assert detect_format(p).name == "whatsapp-txt"
    res = load(p, tz=TZ, subject_id="phone-A")
    assert hash_tree(p) == before
    assert_count_rule(res)
    assert res.records_read == 6  # six messages; the continuation line belongs to line 4
    basis = res.source["time_basis"].iloc[0]
    assert "line 1 has 24 in the first field" in basis and "D/M/Y" in basis and TZ in basis
    ev = res.events.set_index("record")
    assert ev.loc["line:2", "t_utc"] == pd.Timestamp("2025-10-24T16:55Z")  # CEST, +02:00
    assert ev.loc["line:7", "t_utc"] == pd.Timestamp("2025-10-26T18:05Z")  # CET, +01:00
    assert ev.loc["line:4", "text"] == HOSTILE + "\nand a second line"  # verbatim, multi-line
    assert json.loads(ev.loc["line:1", "extra"]).get("system") is True
    assert set(res.events["kind"]) == {"message"} and set(res.events["subject_id"]) == {"phone-A"}
    # the shared location: a place with the message time, the sender and the line
    assert len(res.places) == 1
    pl = res.places.iloc[0]
    assert (pl["kind"], pl["record"], pl["lat"], pl["lon"]) == ("shared", "line:3", 50.86, 4.36)
    assert (pl["t_start"], pl["t_end"], pl["t_precision"]) == (
        pd.Timestamp("2025-10-25T08:05Z"), pd.Timestamp("2025-10-25T08:06Z"), "minute")
    assert json.loads(pl["extra"])["sender"] == "K." and pl["subject_id"] == "phone-A"
    assert (ev.loc["line:3", "lat"], ev.loc["line:3", "lon"]) == (50.86, 4.36)
    # a short link is kept with its reason, never lost; the repeated DST hour is rejected
    assert "short link" in json.loads(ev.loc["line:7", "extra"])["unresolved"][0]["reason"]
    assert res.rejects["record"].tolist() == ["line:6"]
    assert "ambiguous" in res.rejects["reason"].iloc[0]


def test_all_days_up_to_12_are_refused_without_date_order(tmp_path: Path) -> None:
    lines = ["03/04/2025, 10:00 - A: one", "05/04/2025, 11:00 - B: two",
             "12/11/2025, 09:30 - A: three"]
    p = _chat(tmp_path, lines)
    with pytest.raises(AmbiguousTime, match="date-order"):
        load(p, tz=TZ)
    dmy = load(p, tz=TZ, options={"date_order": "DMY"})
    mdy = load(p, tz=TZ, options={"date_order": "MDY"})
    assert dmy.events["t_utc"].iloc[0] == pd.Timestamp("2025-04-03T08:00Z")
    assert mdy.events["t_utc"].iloc[0] == pd.Timestamp("2025-03-04T09:00Z")  # CET in March
    assert "stated by the user" in dmy.source["time_basis"].iloc[0]
    with pytest.raises(ParameterError, match="DMY, MDY or YMD"):
        load(p, tz=TZ, options={"date_order": "DDMM"})


def test_us_export_month_first_with_am_pm_is_decided(tmp_path: Path) -> None:
    lines = ["10/24/25, 9:14\u202fPM - K.: hi", "10/25/25, 12:05 AM - K.: late",
             "11/2/25, 12:30 PM - K.: noon"]
    p = _chat(tmp_path, lines)
    res = load(p, tz=TZ)
    assert "M/D/Y" in res.source["time_basis"].iloc[0]
    assert res.events["t_utc"].tolist() == [pd.Timestamp("2025-10-24T19:14Z"),
                                            pd.Timestamp("2025-10-24T22:05Z"),
                                            pd.Timestamp("2025-11-02T11:30Z")]
    with pytest.raises(ParameterError, match="contradicts line 1"):
        load(p, tz=TZ, options={"date_order": "DMY"})


def test_inconsistent_day_month_order_is_refused(tmp_path: Path) -> None:
    p = _chat(tmp_path, ["24/10/2025, 10:00 - A: x", "10/24/2025, 10:00 - A: y"])
    with pytest.raises(CorruptSource, match="inconsistent"):
        load(p, tz=TZ)


def test_ios_export_with_seconds_marks_and_location(tmp_path: Path) -> None:
    lines = ["\u200e[24.10.25, 21:14:05] K.: \u200eLocation: https://maps.google.com/?q=51.0,3.87",
             "[24.10.25, 21:15:00] K.: see you"]
    p = _chat(tmp_path, lines)
    res = load(p, tz=TZ)
    assert_count_rule(res)
    pl = res.places.iloc[0]
    assert (pl["lat"], pl["lon"], pl["t_precision"]) == (51.0, 3.87, "second")
    assert pl["t_start"] == pl["t_end"] == pd.Timestamp("2025-10-24T19:14:05Z")


def test_year_first_dates_and_leading_garbage(tmp_path: Path) -> None:
    lines = ["exported by tool X", "", "2025-10-24, 21:14 - K.: hello",
             "2025-02-30, 10:00 - K.: no such day"]
    p = tmp_path / "chat.txt"
    p.write_text("\n".join(lines), encoding="utf-8")
    res = load(p, format="whatsapp-txt", tz=TZ)
    assert_count_rule(res)
    assert "Y-M-D" in res.source["time_basis"].iloc[0]
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {"line:1", "line:4"} and "before the first message" in why["line:1"]
    assert "does not exist" in why["line:4"]


def test_local_times_need_a_zone(tmp_path: Path) -> None:
    with pytest.raises(AmbiguousTime, match="--tz"):
        load(_chat(tmp_path, ANDROID_DMY))


def test_message_csv_links_pins_and_times(tmp_path: Path) -> None:
    p = tmp_path / "messages.csv"
    p.write_text(
        "timestamp,sender,message,lat,lon\n"
        "2025-10-25T10:05:00+02:00,K.,\"hotel https://www.google.com/maps/@50.86,4.36,17z\",,\n"
        f"2025-10-26T22:10:00,Driver,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",51.0,3.87\n"
        "yesterday,Driver,bad time,,\n", encoding="utf-8")
    assert detect_format(p).name == "messages-csv"
    with pytest.raises(AmbiguousTime):
        load(p)
    res = load(p, tz=TZ)
    assert_count_rule(res)
    assert res.rejects["record"].tolist() == ["line:4"]
    assert res.events["text"].iloc[1] == HOSTILE
    pl = res.places.sort_values("record")
    assert pl["lat"].tolist() == [50.86, 51.0]
    assert pl["t_start"].tolist() == [pd.Timestamp("2025-10-25T08:05Z"),
                                      pd.Timestamp("2025-10-26T21:10Z")]


def test_implausible_years_and_bad_links_are_rejects_not_crashes(tmp_path: Path) -> None:
    p = _chat(tmp_path, ["24/10/2025, 10:00 - A: ok", "24/10/225, 10:00 - A: year 225",
                         "24/10/6025, 10:00 - A: year 6025", "24/10/2025, 10:01 - A: http://[::1/x"])
    res = load(p, tz=TZ)
    assert_count_rule(res)
    why = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    assert set(why) == {"line:2", "line:3"} and all("implausible" in w for w in why.values())
    c = tmp_path / "m.csv"
    c.write_text("time,from,body\n6025-10-25T08:05:00Z,A,x\n2025-13-25T08:05:00Z,A,y\n"
                 "2025-10-25T08:05:00+02:00,A,https://maps.google.com/?q=[::1\n", encoding="utf-8")
    res = load(c)
    assert_count_rule(res)
    assert res.rejects["record"].tolist() == ["line:2", "line:3"] and len(res.events) == 1


def test_ios_zip_export_is_read_through_load_many(tmp_path: Path) -> None:
    import zipfile

    from routetrace.loaders import load_many

    z = tmp_path / "WhatsApp Chat - K.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("_chat.txt", "\u200e[25/10/2025, 10:05:12] K.: \u200eLocation: "
                    "https://maps.google.com/?q=50.860000,4.360000\n[25/10/2025, 10:06:00] K.: ok\n")
        zf.writestr("00000012-PHOTO-2025-10-25-10-07-00.jpg", b"\xff\xd8\xff\xe0not a real jpeg")
    outcomes = {o.path.split("!")[-1]: o for o in load_many(z, tz=TZ)}
    chat = outcomes["_chat.txt"].result
    assert chat is not None and chat.source["format"].iloc[0] == "whatsapp-txt"
    assert chat.places["t_start"].tolist() == [pd.Timestamp("2025-10-25T08:05:12Z")]
    assert chat.source["member"].iloc[0] == "_chat.txt"
