"""Progress lines in a log: the file being read is named so that an analyst can find it."""

from __future__ import annotations

import io

from routetrace.app.progress import LOG_NAME_CHARS, Progress


def _log_line(name: str) -> str:
    out = io.StringIO()
    Progress("ingesting", write=out.write, tty=False, interval_s=60).file(name)
    return out.getvalue().rstrip("\n")


def test_a_log_names_an_archive_member_by_its_whole_path() -> None:
    """A log line named the last 120 characters, cut mid-word ("mo/sample/evidence/...zip!
    filesystem1/..."): an iOS extraction's member paths are longer than that."""
    name = ("/cases/2026-114/sample/evidence/phone-A-extraction/iphone_extraction.zip!filesystem1/private/"
            "var/mobile/Library/Caches/com.apple.routined/Local.sqlite")
    assert len(name) > 120
    assert _log_line(name) == f"  reading {name}"


def test_a_very_long_name_is_cut_at_a_separator_behind_an_ellipsis() -> None:
    name = "evidence/" + "d" * 500 + "/deep/track.gpx"
    line = _log_line(name)
    assert line == "  reading …/deep/track.gpx"
    assert len(line) <= len("  reading …") + LOG_NAME_CHARS
    # no separator in the kept end: the last characters after the ellipsis
    assert _log_line("x" * 1000) == "  reading …" + "x" * LOG_NAME_CHARS


def test_a_name_from_the_device_cannot_rewrite_the_log_line() -> None:
    line = _log_line("evidence/evil\r\x1b[2Kname\u202egpx.exe")
    assert "\r" not in line and "\x1b" not in line and "\u202e" not in line
