"""Corroboration against ground truth: statements of every verdict, scored as a confusion table.

Used by ``bench/validate.py`` for section ``corroboration`` of ``docs/validation.md``; it
can also print its tables alone (``python bench/validate_corroboration.py``).

Scenario
--------
The sample case's simulator (:func:`routetrace.samples.scenario.build_scenario`, seeds
:data:`SEEDS`): the same itinerary each seed, different sampling, noise, cell fixes and
silences. For each seed the statements of :data:`STATEMENTS` are written to a statements
YAML file (with a gazetteer CSV for the address-only places) and read back by routetrace's
statements loader, exactly as ``routetrace corroborate CASE statements.yaml`` would. The
evidence is the four subjects' observed tracks; stops and unobserved intervals come from the
chronology stage as ``routetrace chronology`` computes them (``clean_fixes`` →
``merge_sources`` → ``detect_stops`` with the lorries' ignition events); verdicts come from
:func:`routetrace.routes.corroborate.corroborate_statements` with its defaults. Nothing is tuned.

Truth (:func:`truth_verdict`): written from the simulator's TRUE positions and the times at
which the device recorded a fix, never from the evidence's noisy positions or from the
engine. The statement's window is the stated one (``t_exact``, ``t_start``/``t_end``,
``date``, ``night_of``, ``journey_day`` as docs/statements.md defines them, computed here
independently of the loader), widened by 30 minutes each side:

* **not observed**: the device recorded nothing in the window;
* **supported**: at two or more recorded times in the window the subject was truly within
  the place's radius + 100 m (a place known only to more than 2 km, such as a town from
  the gazetteer, makes this **inconclusive**: it shows the area, not the site);
* **inconclusive**: only one such recorded time; or the window reaches before the device's
  first or after its last record; or between two consecutive recorded times the subject
  could have gone from its true position to the place and on to the next true position
  at 130 km/h (36 m/s) without being recorded;
* **contradicted**: otherwise (recorded in the window, truly elsewhere throughout, and no
  silence long enough to have been there).

These are routetrace's documented definitions applied to the truth, with a lower speed
than the engine's 40 m/s; the table therefore measures whether routetrace reaches the
verdict its definitions imply from noisy, gappy evidence, not whether the definitions are
right.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from routetrace.geodesy import haversine_m

SEEDS = (7, 11, 23, 31, 47)
TZ = "Europe/Brussels"
JOURNEY_START = "2025-10-24"
TOLERANCE = pd.Timedelta("30min")
NEAR_SLACK_M = 100.0
COARSE_PLACE_M = 2000.0
TRUTH_SPEED_MPS = 36.0
VERDICT_ORDER = ("supported", "contradicted", "not observed", "inconclusive")


def _offset(name: str, *, north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    from routetrace.samples.scenario import PLACES

    lat, lon = PLACES[name]
    return (lat + north_m / 111_320.0,
            lon + east_m / (111_320.0 * math.cos(math.radians(lat))))


#: address -> (lat, lon, radius_m): the gazetteer an investigator would keep (fictional).
GAZETTEER: dict[str, tuple[float, float, float]] = {
    "Hotel Sample, 12 Rue Exemple, 1000 Bruxelles": (50.8600, 4.3600, 75.0),
    "E40 parking Groot-Bijgaarden": (50.8750, 4.2600, 120.0),
    "Grote Markt, 8500 Kortrijk": (50.8280, 3.2650, 150.0),
    "Wetteren": (51.0050, 3.8850, 3000.0),
}


@dataclass(frozen=True)
class Spec:
    """One statement: who, where (a scenario place, a point, or an address) and when."""

    sid: str
    subject: str
    category: str
    where: str | tuple[float, float]
    time: dict[str, Any] = field(default_factory=dict)
    uncertainty_m: float | None = None
    address: bool = False


#: The statements tested on every seed; ``category`` says what each probes.
STATEMENTS: tuple[Spec, ...] = (
    Spec("sup-camp-link", "phone-A", "supported, vague day (journey day 1), map link",
         "calais_camp", {"journey_day": 1}, 150.0),
    Spec("sup-hotel-exact", "phone-A", "supported, exact time", "brussels_hotel",
         {"t_exact": "2025-10-25T09:00"}, 100.0),
    Spec("sup-hotel-address", "phone-A", "supported, address only (street)",
         "Hotel Sample, 12 Rue Exemple, 1000 Bruxelles", {"date": "2025-10-27"}, address=True),
    Spec("sup-lorry1-wetteren", "lorry-1", "supported, night", "wetteren_carpark",
         {"night_of": "2025-10-26"}, 150.0),
    Spec("sup-phoneB-port", "phone-B", "supported, window", "zeebrugge_port",
         {"t_start": "2025-10-27T00:30", "t_end": "2025-10-27T01:00"}, 300.0),
    Spec("nobs-hotel-night", "phone-A", "inside an unobserved interval (phone off)",
         "brussels_hotel", {"night_of": "2025-10-25"}, 100.0),
    Spec("nobs-lorry2-before", "lorry-2", "before the device's record", "wetteren_carpark",
         {"night_of": "2025-10-26"}, 150.0),
    Spec("nobs-gb-address", "phone-A", "address only, inside an unobserved interval",
         "E40 parking Groot-Bijgaarden", {"t_start": "2025-10-26T10:00",
                                          "t_end": "2025-10-26T14:00"}, address=True),
    Spec("far-hotel-day1", "phone-A", "contradicted, ~170 km away", "brussels_hotel",
         {"t_start": "2025-10-24T15:00", "t_end": "2025-10-24T17:00"}, 100.0),
    Spec("far-port-phoneA", "phone-A", "contradicted, ~100 km away, exact time",
         "zeebrugge_port", {"t_exact": "2025-10-25T09:00"}, 300.0),
    Spec("far-camp-lorry1", "lorry-1", "contradicted, ~170 km away, hourly parked fixes",
         "calais_camp", {"t_start": "2025-10-26T19:30", "t_end": "2025-10-26T20:30"}, 150.0),
    Spec("far-camp-phoneB", "phone-B", "contradicted, ~145 km away", "calais_camp",
         {"t_exact": "2025-10-26T22:00"}, 150.0),
    Spec("far50-phoneA", "phone-A", "contradicted, 50 km from where the subject is",
         _offset("brussels_hotel", north_m=-50_000), {"t_exact": "2025-10-27T10:00"}, 100.0),
    Spec("far50-phoneB", "phone-B", "contradicted, 50 km from where the subject is",
         _offset("zeebrugge_port", east_m=50_000), {"t_exact": "2025-10-27T00:30"}, 100.0),
    Spec("far-address", "phone-A", "contradicted, address only (~100 km away)",
         "Grote Markt, 8500 Kortrijk", {"t_start": "2025-10-24T15:00",
                                        "t_end": "2025-10-24T18:00"}, address=True),
    Spec("inc-port-gap", "phone-A", "window runs into an unobserved interval",
         "zeebrugge_port", {"t_start": "2025-10-25T13:00", "t_end": "2025-10-25T17:00"}, 300.0),
    Spec("inc-camp-notime", "phone-B", "no time at all, place never visited", "calais_camp",
         {}, 150.0),
    Spec("inc-wetteren-day2", "phone-A", "vague day (journey day 2), phone off part of it",
         "wetteren_carpark", {"journey_day": 2}, 150.0),
    Spec("inc-town-address", "phone-A", "address only (a town, 3 km)", "Wetteren",
         {"night_of": "2025-10-26"}, address=True),
    Spec("inc-lorry1-hourly50", "lorry-1", "50 km away, but parked with hourly fixes",
         _offset("groot_bijgaarden_carpark", north_m=50_000),
         {"t_start": "2025-10-26T19:45", "t_end": "2025-10-26T20:15"}, 150.0),
    Spec("inc-lorry1-after", "lorry-1", "vague night, window past the device's record",
         "calais_camp", {"night_of": "2025-10-26"}, 150.0),
    Spec("near-miss-250m", "phone-A", "a point 250 m from where the subject stayed",
         _offset("brussels_hotel", east_m=250), {"t_start": "2025-10-27T08:00",
                                                 "t_end": "2025-10-27T10:00"}, 50.0),
    Spec("pass-jabbeke", "phone-A", "a car park the subject drove past, vague day",
         "jabbeke_carpark", {"date": "2025-10-24"}, 150.0),
    Spec("wrong-time-wetteren", "phone-A", "right place, time 2 h early (phone just back on)",
         "wetteren_carpark", {"t_exact": "2025-10-26T19:30"}, 150.0),
    Spec("wrong-day-phoneB-port", "phone-B", "right place, wrong time (~110 km away then)",
         "zeebrugge_port", {"t_start": "2025-10-26T19:30", "t_end": "2025-10-26T20:00"}, 300.0),
    Spec("inc-phoneA-daystart", "phone-A", "vague day, window before the device's record",
         "zeebrugge_port", {"date": "2025-10-24"}, 300.0),
)


def _point(spec: Spec) -> tuple[float, float, float]:
    from routetrace.samples.scenario import PLACES

    if spec.address:
        return GAZETTEER[str(spec.where)]
    lat, lon = PLACES[spec.where] if isinstance(spec.where, str) else spec.where
    assert spec.uncertainty_m is not None
    return lat, lon, spec.uncertainty_m


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_localize(TZ).tz_convert("UTC")


def stated_window(time: dict[str, Any]) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The window a statement's time fields state (UTC), computed from docs/statements.md."""
    if "t_exact" in time:
        t = _local(time["t_exact"])
        return t, t
    if "t_start" in time:
        return _local(time["t_start"]), _local(time["t_end"])
    if "date" in time:
        d = pd.Timestamp(time["date"])
        return _local(f"{d:%Y-%m-%d}T00:00"), _local(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T00:00")
    if "night_of" in time:
        d = pd.Timestamp(time["night_of"])
        return _local(f"{d:%Y-%m-%d}T18:00"), _local(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T08:00")
    if "journey_day" in time:
        d = pd.Timestamp(JOURNEY_START) + pd.Timedelta(days=int(time["journey_day"]) - 1)
        return _local(f"{d:%Y-%m-%d}T00:00"), _local(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T00:00")
    return None, None


def truth_verdict(track: pd.DataFrame, *, window: tuple[pd.Timestamp | None, pd.Timestamp | None],
                  lat: float, lon: float, radius_m: float) -> str:
    """The verdict the ground truth implies (rules: module docstring).

    ``track`` is a scenario track: the times the device recorded (``t_utc``) and the true
    positions at those times (``true_lat``, ``true_lon``).
    """
    t = track["t_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
    lo = -np.inf if window[0] is None else (window[0] - TOLERANCE).value
    hi = np.inf if window[1] is None else (window[1] + TOLERANCE).value
    inside = (t >= lo) & (t <= hi)
    if not inside.any():
        return "not observed"
    d = haversine_m(track["true_lat"].to_numpy(float), track["true_lon"].to_numpy(float), lat, lon)
    at = int((inside & (d <= radius_m + NEAR_SLACK_M)).sum())
    if at >= 2:
        return "inconclusive" if radius_m > COARSE_PLACE_M else "supported"
    if at == 1 or lo < t[0] or hi > t[-1]:
        return "inconclusive"
    k = np.flatnonzero((t[:-1] < hi) & (t[1:] > lo))
    need = d[k] + d[k + 1] - 2 * radius_m
    reachable = need <= TRUTH_SPEED_MPS * (t[k + 1] - t[k]) / 1e9
    return "inconclusive" if reachable.any() else "contradicted"


def _statement_doc(specs: tuple[Spec, ...]) -> dict[str, Any]:
    rows = []
    for s in specs:
        row: dict[str, Any] = {"statement_id": s.sid, "person_id": "V1", "role": "victim", "hearing_date": "2025-11-03",
                               "text": f"validation statement {s.sid}", "subjects": [s.subject]}
        if s.address:
            row["address"] = s.where
        else:
            lat, lon, r = _point(s)
            row.update({"lat": round(lat, 6), "lon": round(lon, 6), "uncertainty_m": r})
        row.update(s.time)
        rows.append(row)
    return {"routetrace": "statements/1", "time_zone": TZ, "journey_start": JOURNEY_START,
            "gazetteer": "gazetteer.csv", "statements": rows}


def load_statements(folder: Path, specs: tuple[Spec, ...] = STATEMENTS) -> pd.DataFrame:
    """Write the statements and gazetteer under ``folder`` and read them with routetrace."""
    from routetrace.loaders import load

    with (folder / "gazetteer.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "lat", "lon", "radius_m"])
        for name, (lat, lon, r) in GAZETTEER.items():
            w.writerow([name, lat, lon, r])
    path = folder / "statements.yaml"
    path.write_text(yaml.safe_dump(_statement_doc(specs), sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    res = load(path)
    if len(res.rejects):
        raise RuntimeError("statements rejected: " + "; ".join(res.rejects["reason"].astype(str)))
    return res.places


def evidence(seed: int) -> tuple[Any, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The scenario, its fixes, and the chronology stage's stops and gaps for ``seed``."""
    from routetrace.routes import clean_fixes, detect_stops, merge_sources
    from routetrace.samples.scenario import build_scenario
    from routetrace.testing import make_fixes

    sc = build_scenario(seed)
    parts = []
    for subject, tr in sorted(sc.tracks.items()):
        f = make_fixes(subject_id=subject, t_utc=tr["t_utc"], lat=tr["lat"], lon=tr["lon"],
                       h_acc_m=tr["h_acc_m"], fix_kind=list(tr["fix_kind"].astype(str)),
                       source_id=f"{subject:0<64}"[:64])  # distinct first 16 characters: distinct fix ids
        parts.append(f)
    fixes = pd.concat(parts, ignore_index=True)
    _, stops = detect_stops(merge_sources(clean_fixes(fixes)), events=sc.events)
    return sc, fixes, stops, stops.attrs["gaps"], sc.events


def scores(seeds: tuple[int, ...] = SEEDS) -> pd.DataFrame:
    """One row per seed and statement: category, truth, routetrace's verdict and reason."""
    from routetrace.routes.corroborate import corroborate_statements

    by_sid = {s.sid: s for s in STATEMENTS}
    rows = []
    for seed in seeds:
        sc, fixes, stops, gaps, _ = evidence(seed)
        with tempfile.TemporaryDirectory(prefix="routetrace-corroboration-") as tmpd:
            places = load_statements(Path(tmpd))
        res = corroborate_statements(places, fixes, stops=stops, gaps=gaps)
        for v in res.verdicts.sort_values("statement_id", kind="mergesort").itertuples():
            spec = by_sid[str(v.statement_id)]
            lat, lon, r = _point(spec)
            truth = truth_verdict(sc.tracks[spec.subject], window=stated_window(spec.time),
                                  lat=lat, lon=lon, radius_m=r)
            rows.append({"seed": seed, "statement": spec.sid, "subject": spec.subject,
                         "category": spec.category, "truth": truth,
                         "routetrace": str(v.verdict), "reason": str(v.reason)})
    return pd.DataFrame(rows)


def _confusion(df: pd.DataFrame) -> list[str]:
    out = ["| truth ↓ / routetrace → | " + " | ".join(VERDICT_ORDER) + " | total | recall |",
           "|---|" + "---|" * (len(VERDICT_ORDER) + 2)]
    for t in VERDICT_ORDER:
        g = df[df["truth"] == t]
        cells = [str(int((g["routetrace"] == v).sum())) for v in VERDICT_ORDER]
        rec = f"{(g['routetrace'] == t).mean():.3f}" if len(g) else "–"
        out.append(f"| **{t}** | " + " | ".join(cells) + f" | {len(g)} | {rec} |")
    prec = []
    for v in VERDICT_ORDER:
        g = df[df["routetrace"] == v]
        prec.append(f"{(g['truth'] == v).mean():.3f}" if len(g) else "–")
    out.append("| total | " + " | ".join(str(int((df["routetrace"] == v).sum()))
                                         for v in VERDICT_ORDER) + f" | {len(df)} | |")
    out.append("| precision | " + " | ".join(prec) + " | | |")
    return out


def section(df: pd.DataFrame | None = None) -> str:
    """The markdown of the confusion table, the per-statement summary and every error."""
    df = scores() if df is None else df
    ok = df["truth"] == df["routetrace"]
    hard = int(df["truth"].isin(["contradicted", "inconclusive"]).sum())
    out = [f"Statements of every verdict against the sample case's simulator "
           f"(`build_scenario`, seeds {', '.join(map(str, SEEDS))}; {len(STATEMENTS)} statements "
           f"per seed; written as a statements YAML with a gazetteer and read by routetrace's "
           "statements loader), tested with `routetrace.routes.corroborate.corroborate_statements` "
           "defaults against the four subjects' observed fixes and the chronology stage's stops "
           "and unobserved intervals (rules and truth: `bench/validate_corroboration.py`). "
           "Truth comes from the simulator's true positions and the times the device recorded, "
           "not from the evidence or the engine; it applies routetrace's documented definitions "
           "(with 36 m/s instead of 40 m/s), so this measures whether routetrace reaches the "
           "verdict its definitions imply from noisy, gappy evidence, not whether the "
           "definitions are right.", "",
           f"**{int(ok.sum())} of {len(df)} verdicts agree with the truth ({ok.mean():.1%}); "
           f"{hard} statements are contradicted or inconclusive by truth.**", "",
           *_confusion(df), "",
           "| statement | subject | what it probes | truth (per seed) | routetrace (per seed) |",
           "|---|---|---|---|---|"]
    for sid, g in df.groupby("statement", sort=False):
        out.append(f"| {sid} | {g['subject'].iloc[0]} | {g['category'].iloc[0]} | "
                   f"{_counts(g['truth'])} | {_counts(g['routetrace'])} |")
    wrong = df[~ok]
    out += ["", f"Where routetrace disagrees with the truth ({len(wrong)}), with its reason:", ""]
    if not len(wrong):
        out.append("(none)")
    else:
        out += ["| seed | statement | truth | routetrace | routetrace's reason |", "|---|---|---|---|---|"]
        for r in wrong.itertuples(index=False):
            out.append(f"| {r.seed} | {r.statement} | {r.truth} | {r.routetrace} | "
                       f"{r.reason.replace('|', '/')} |")
    near = df[df["statement"] == "near-miss-250m"]
    n_sup = int((near["routetrace"] == "supported").sum())
    out += ["", "Limits of this check. Most statements are built with wide margins (tens of "
            "kilometres, whole days), where agreement is expected; errors show near a rule's "
            "boundary. `near-miss-250m` (a point 250 m from where phone-A stayed, place "
            f"radius 50 m) is called supported in {n_sup} of {len(near)} seeds: routetrace "
            "counts a fix as near when it lies within the place radius + the fix's stated "
            "accuracy + 100 m slack, so with Wi-Fi fixes of 25-70 m a place about 200 m from "
            "where the subject truly was can be supported by ordinary noise (the reason names "
            "the closest fix's distance, which an exhibit must show). `pass-jabbeke` shows that "
            "driving past a place within the window is `supported` by the same rule (the "
            "verdict says the subject was there, not that it stopped). Not tested here: the "
            "order (sequence) check, chat-shared locations, real statements, and addresses "
            "missing from the gazetteer (the loader rejects those rows; they never get a "
            "verdict)."]
    return "\n".join(out) + "\n"


def _counts(s: pd.Series) -> str:
    c = s.value_counts()
    return ", ".join(f"{k} ×{int(c[k])}" if c[k] > 1 else str(k) for k in VERDICT_ORDER if k in c)


if __name__ == "__main__":
    print(section())
    print(json.dumps({"statements": len(STATEMENTS) * len(SEEDS)}))
