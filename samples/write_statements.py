"""Hearing statements (YAML) and a WhatsApp export sharing the hotel's location.

Three places indicated in hearings, each in a different form a person would point with:

* ``V1-camp`` — the victim points to the Calais camp on Google Maps (a ``/place/`` link
  with the pin ``!3d!4d``), "the first day" (journey day 1). Supported by phone-A.
* ``V1-carpark`` — "a car park after Brugge, at night", a ``geo:`` URI with ``u=``, the
  night of Sunday 26 October, after the camp. Supported by phone-A and lorry-1.
* ``S1-hotel`` — the suspect gives the Brussels hotel as a Plus Code, "Saturday night"
  (night of 25 October). phone-A was switched off then: **not observed**, not
  contradicted.

The victim's text carries HTML/JS on purpose (hostile text must stay inert everywhere).

``evidence/phone-A/whatsapp_phone-A.txt``: an Android WhatsApp export (D/M/Y, decided
from a day above 12; local times, ``tz=Europe/Brussels``) in which the smuggler shares
the hotel's location; one message falls in the repeated DST hour (02:30 on 26 October)
and is rejected, not guessed.

The expected verdicts are derived from the scenario's ground truth (not from the
corroboration engine) by :func:`expected_verdicts` and written into ``truth.json`` under
``statement_verdicts``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from openlocationcode import openlocationcode as olc

from .generate import SampleFile
from .scenario import Scenario

#: statement id -> (scenario place, local window start, local window end, subjects)
STATEMENT_PLACES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "V1-camp": ("calais_camp", "2025-10-24 00:00", "2025-10-25 00:00", ("phone-A",)),
    "V1-carpark": ("wetteren_carpark", "2025-10-26 18:00", "2025-10-27 08:00",
                   ("phone-A", "lorry-1")),
    "S1-hotel": ("brussels_hotel", "2025-10-25 18:00", "2025-10-26 08:00", ("phone-A",)),
}


def statements(sc: Scenario) -> dict[str, Any]:
    """The statements document (as written to YAML)."""
    cl, cn = sc.places["calais_camp"]
    wl, wn = sc.places["wetteren_carpark"]
    hl, hn = sc.places["brussels_hotel"]
    return {
        "routetrace": "statements/1",
        "case_id": "SAMPLE-CALAIS-ZEEBRUGGE",
        "time_zone": sc.tz,
        "journey_start": "2025-10-24",
        "statements": [
            {"statement_id": "V1-camp", "person_id": "V1", "role": "victim",
             "hearing_date": "2025-11-03",
             "text": "We waited in the camp near the port, in the tents. The first day.",
             "place": (f"https://www.google.com/maps/place/Camp/@{cl - 0.0012:.4f},"
                       f"{cn - 0.0015:.4f},16z/data=!3m1!4b1!4m6!3m5!1s0x0:0x0!8m2!3d{cl:.4f}"
                       f"!4d{cn:.4f}"),
             "place_name": "camp near the port", "time_text": "the first day",
             "journey_day": 1, "order": 1, "subjects": ["phone-A"]},
            {"statement_id": "V1-carpark", "person_id": "V1", "role": "victim",
             "hearing_date": "2025-11-03",
             "text": ('A parking after Brugge, at night. A lorry came and we went in the back. '
                      '<script>alert("V1")</script><img src=x onerror=alert(1)>'),
             "place": f"geo:{wl + 0.0004:.4f},{wn - 0.0005:.4f};u=150",
             "place_name": "parking after Brugge", "time_text": "at night, Sunday",
             "night_of": "2025-10-26", "after": ["V1-camp"], "order": 2,
             "subjects": ["phone-A", "lorry-1"]},
            {"statement_id": "S1-hotel", "person_id": "S1", "role": "suspect",
             "hearing_date": "2025-11-05",
             "text": "The hotel in Brussels. We slept there Saturday night.",
             "place": olc.encode(hl, hn, 11), "uncertainty_m": 100,
             "place_name": "hotel in Brussels", "time_text": "Saturday night",
             "night_of": "2025-10-25", "subjects": ["phone-A"]},
        ],
    }


def whatsapp_lines(sc: Scenario) -> list[str]:
    """The WhatsApp export (Android, D/M/Y, 24-hour, local time)."""
    hl, hn = sc.places["brussels_hotel"]
    return [
        "24/10/2025, 18:52 - Messages and calls are end-to-end encrypted. No one outside of "
        "this chat, not even WhatsApp, can read or listen to them.",
        "24/10/2025, 18:55 - K.: leaving camp now 4 people",
        "24/10/2025, 21:40 - K.: at the hotel",
        f"25/10/2025, 10:05 - K.: location: https://maps.google.com/?q={hl:.6f},{hn:.6f}",
        "25/10/2025, 10:06 - K.: room 12 <img src=x onerror=alert('K')>",
        "25/10/2025, 14:50 - K.: phone off until tomorrow",
        "26/10/2025, 02:30 - Driver: ok",
        "26/10/2025, 19:05 - Driver: parking E40 after Gent tonight 22h",
        "26/10/2025, 19:06 - K.: ok we come",
        "they are 4",
    ]


def _local(t: str, tz: str) -> pd.Timestamp:
    return pd.Timestamp(t).tz_localize(tz).tz_convert("UTC")


def expected_verdicts(sc: Scenario) -> list[dict[str, str]]:
    """Verdicts the ground truth implies (independent of the corroboration engine).

    supported: a true stop of the subject at the place overlaps the window while the device
    was on; not observed: the device recorded nothing in the window (off, or outside its
    itinerary); contradicted: it recorded, and was elsewhere throughout.
    """
    out = []
    for sid, (place, a, b, subjects) in STATEMENT_PLACES.items():
        w0, w1 = _local(a, sc.tz), _local(b, sc.tz)
        for s in subjects:
            st = sc.truth_stops[sc.truth_stops["subject_id"] == s]
            on = [(st["t_arrival"].min(), st["t_departure"].max())]
            for r in sc.off_intervals[sc.off_intervals["subject_id"] == s].itertuples():
                on = [piece for lo, hi in on for piece in ((lo, min(hi, r.t_start)),
                                                            (max(lo, r.t_end), hi)) if piece[0] < piece[1]]
            on_w = [(max(lo, w0), min(hi, w1)) for lo, hi in on if max(lo, w0) < min(hi, w1)]
            here = st[st["place"] == place]
            seen_here = any(max(lo, r.t_arrival) < min(hi, r.t_departure)
                            for r in here.itertuples() for lo, hi in on_w)
            verdict = ("supported" if seen_here else "not observed" if not on_w
                       else "contradicted")
            out.append({"statement_id": sid, "subject_id": s, "place": place, "verdict": verdict})
    return out


def write(sc: Scenario, out: Path) -> list[SampleFile]:
    """Write ``evidence/case/statements.yaml`` and ``evidence/phone-A/whatsapp_phone-A.txt``."""
    case = out / "evidence" / "case"
    case.mkdir(parents=True, exist_ok=True)
    st = case / "statements.yaml"
    st.write_text("# Places indicated in hearings (sample case; pseudonymous persons)\n"
                  + yaml.safe_dump(statements(sc), sort_keys=False, allow_unicode=True, width=100),
                  encoding="utf-8")
    phone = out / "evidence" / "phone-A"
    phone.mkdir(parents=True, exist_ok=True)
    chat = phone / "whatsapp_phone-A.txt"
    chat.write_text("\n".join(whatsapp_lines(sc)) + "\n", encoding="utf-8")
    sc.extra["statement_verdicts"] = expected_verdicts(sc)
    return [
        SampleFile(path=st.relative_to(out).as_posix(), subject_id=None, tz=sc.tz,
                   format="statements-yaml",
                   description="places indicated in hearings (victim V1, suspect S1); "
                               "`routetrace corroborate CASE` tests them"),
        SampleFile(path=chat.relative_to(out).as_posix(), subject_id="phone-A", tz=sc.tz,
                   format="whatsapp-txt",
                   description="WhatsApp export from phone-A sharing the hotel's location "
                               "(local times, D/M/Y)"),
    ]
