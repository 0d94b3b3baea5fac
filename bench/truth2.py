"""A second source of stop truth that does not share the detector's assumptions.

``routetrace.samples.simulate`` (the first source) records a fix at every arrival and
departure, scales each position error to the stated accuracy and draws errors
independently from fix to fix: all in the detector's favour. This module is written
separately from it (it imports nothing from ``routetrace.samples``) and differs on each of
those points.

**The rule that defines a true stop (written before any detection is run).** A simulated
person alternates *stays* and *trips*. A stay is an interval during which the person is
at one place: the true position wanders slowly within 25 m of the place's centre (people
move inside a building or a car park). Every stay lasts at least 6 min; on trips the
person may halt in traffic for at most 3 min, which is not a stay. The true stops are the
stays, with ``t_arrival`` the instant the person reaches the place and ``t_departure`` the
instant they leave it: taken from the generator's own state, never from fixes. A stay is
``observed`` when at least two fixes with a stated accuracy of 500 m or better fall inside
it (the same convention as the first source, so recall is over stays a device recorded).

**How the phone records it.**

* Sampling follows the phone's motion state, not the stays: it notices that the person has
  stopped 30-180 s after arrival and that they move again 20-120 s after departure. While
  moving: fixes every 5-30 s (gamma-distributed); while still: every 6 min on average
  (exponential), as a phone batching its location. No fix is placed at an arrival or a
  departure. The phone is off for 1-3 h about every two days.
* Errors are correlated in time (a Gauss-Markov process per axis: GPS sigma 6 m with a
  2 min time constant). Still at an indoor place (70 % of places) the phone positions by
  Wi-Fi: sigma 20 m around a bias drawn once per stay (sigma 30 m) with a 10 min time
  constant; 5 % of still fixes are cell fixes (sigma 400 m, bias per stay).
* The stated accuracy is drawn from the fix kind's usual range (GPS 4-12 m, Wi-Fi
  20-65 m, cell 500-1,500 m), independent of the actual error: a persistent bias is never
  reflected in it.
* Multipath: 1 % of fixes start a burst of 1-4 fixes displaced 150-400 m, with an
  ordinary stated accuracy.

Scoring is the report's rule (``routetrace.samples.simulate.score_stops``: same subject,
overlapping in time, centre within 150 m), on detections by ``routetrace.routes.detect_stops``
with its defaults.

    .venv/bin/python bench/truth2.py       # prints the Markdown section
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from routetrace import schema
from routetrace.geodesy import xy_to_deg

LAT0, LON0 = 50.85, 4.35  # Brussels
PER_SUBJECT = 5_000
#: (label, correlated errors?, multipath bursts?) of each row
CONDITIONS: tuple[tuple[str, bool, bool], ...] = (
    ("correlated errors, biased Wi-Fi, multipath", True, True),
    ("correlated errors, biased Wi-Fi, no multipath", True, False),
)


@dataclass
class _Plan:
    """One subject's true itinerary: stays [arr, dep) at place centres, trips between."""

    arr: np.ndarray
    dep: np.ndarray
    x: np.ndarray
    y: np.ndarray
    indoor: np.ndarray
    phase: np.ndarray  # of the wander at each stay


def _plan(rng: np.random.Generator, places: np.ndarray, indoor: np.ndarray, t0: float, n_stays: int) -> _Plan:
    kind = rng.random(n_stays)
    dur = np.where(kind < 0.4, rng.uniform(6, 30, n_stays),
                   np.where(kind < 0.8, rng.uniform(30, 180, n_stays), rng.uniform(180, 600, n_stays))) * 60
    k = [int(rng.integers(len(places)))]
    for _ in range(n_stays - 1):
        nxt = int(rng.integers(len(places) - 1))
        k.append(nxt + (nxt >= k[-1]))
    idx = np.array(k)
    dist = np.hypot(*(places[idx[1:]] - places[idx[:-1]]).T)
    trip = dist / rng.uniform(7, 14, n_stays - 1) + rng.uniform(0, 180, n_stays - 1)  # a traffic halt
    arr = np.empty(n_stays)
    arr[0] = t0
    arr[1:] = t0 + np.cumsum(dur[:-1] + trip)
    return _Plan(arr, arr + dur, places[idx, 0], places[idx, 1], indoor[idx], rng.uniform(0, 2 * np.pi, (n_stays, 2)))


def _true_xy(p: _Plan, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True position at ``t`` and the stay index (-1 on a trip)."""
    i = np.searchsorted(p.arr, t, side="right") - 1
    at = (i >= 0) & (t < p.dep[np.maximum(i, 0)])
    stay = np.where(at, i, -1)
    # trips: straight between the places (the halt is at the start of the trip)
    j = np.clip(i, 0, len(p.arr) - 2)
    frac = np.clip((t - p.dep[j]) / np.maximum(p.arr[j + 1] - p.dep[j], 1.0), 0, 1)
    x = p.x[j] + frac * (p.x[j + 1] - p.x[j])
    y = p.y[j] + frac * (p.y[j + 1] - p.y[j])
    # stays: a slow wander within 25 m of the place's centre
    ph = p.phase
    s = np.maximum(stay, 0)
    wx = 17 * np.sin(t / 900 + ph[s, 0])
    wy = 17 * np.sin(t / 1300 + ph[s, 1])
    x = np.where(at, p.x[s] + wx, x)
    y = np.where(at, p.y[s] + wy, y)
    return x, y, stay


def _sample_times(p: _Plan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fix times from the phone's motion state (lagging the stays) and a still flag."""
    lag_in = rng.uniform(30, 180, len(p.arr))
    lag_out = rng.uniform(20, 120, len(p.arr))
    still_a, still_b = p.arr + lag_in, p.dep + lag_out
    ts, still = [], []
    for a, b, nxt in zip(still_a, still_b, np.r_[still_a[1:], still_b[-1]], strict=True):
        if b > a:  # still: batched fixes
            t = a + np.cumsum(rng.exponential(360, int((b - a) / 60) + 4))
            t = t[t < b]
            ts.append(t)
            still.append(np.ones(len(t), bool))
        if nxt > b:  # moving
            t = b + np.cumsum(rng.gamma(3.0, 5.5, int((nxt - b) / 4) + 4))
            t = t[t < nxt]
            ts.append(t)
            still.append(np.zeros(len(t), bool))
    t, s = np.concatenate(ts), np.concatenate(still)
    order = np.argsort(t, kind="stable")  # a short trip can end before the phone noticed the departure
    t, s = t[order], s[order]
    keep = np.ones(len(t), bool)
    for _ in range(max(1, int((t[-1] - t[0]) / (2 * 86400)))):  # the phone is off
        a = rng.uniform(t[0], t[-1])
        keep &= ~((t >= a) & (t < a + rng.uniform(3600, 3 * 3600)))
    return t[keep], s[keep]


def _gauss_markov(t: np.ndarray, sigma: np.ndarray, tau: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A first-order Gauss-Markov error per axis: e_k = phi e_(k-1) + sqrt(1 - phi^2) sigma w."""
    out = np.empty((len(t), 2))
    e = rng.normal(0, 1, 2) * sigma[0]
    w = rng.normal(0, 1, (len(t), 2))
    dt = np.r_[0.0, np.diff(t)]
    phi = np.exp(-dt / tau)
    scale = np.sqrt(1 - phi ** 2) * sigma
    for k in range(len(t)):
        e = phi[k] * e + scale[k] * w[k]
        out[k] = e
    return out


def _observe(p: _Plan, t: np.ndarray, still: np.ndarray, rng: np.random.Generator, *, correlated: bool,
             multipath: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed x, y, stated accuracy and kind of each fix."""
    x, y, stay = _true_xy(p, t)
    s = np.maximum(stay, 0)
    wifi = still & (stay >= 0) & p.indoor[s]
    cell = still & (rng.random(len(t)) < 0.05)
    kind = np.where(cell, "cell", np.where(wifi, "wifi", "gps"))
    sigma = np.where(cell, 400.0, np.where(wifi, 20.0, 6.0))
    tau = np.where(cell, 600.0, np.where(wifi, 600.0, 120.0))
    err = _gauss_markov(t, sigma, tau, rng) if correlated else rng.normal(0, 1, (len(t), 2)) * sigma[:, None]
    bias_w = rng.normal(0, 30, (len(p.arr), 2))
    bias_c = rng.normal(0, 600, (len(p.arr), 2))
    err += np.where(wifi[:, None], bias_w[s], 0.0) + np.where(cell[:, None], bias_c[s], 0.0)
    acc = np.where(cell, rng.uniform(500, 1500, len(t)), np.where(wifi, rng.uniform(20, 65, len(t)),
                                                                 rng.uniform(4, 12, len(t))))
    if multipath:
        start = np.flatnonzero(rng.random(len(t)) < 0.01)
        for i in start:
            ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(150, 400)
            j = slice(i, min(len(t), i + int(rng.integers(1, 5))))
            err[j] += [r * np.cos(ang), r * np.sin(ang)]
    return x + err[:, 0], y + err[:, 1], acc, kind


def simulate_independent(*, n_fixes: int = 20_000, seed: int = 0, correlated: bool = True,
                         multipath: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Phone fixes and true stays by the rule in this module's doc: ``(fixes, truth)``.

    Example
    -------
    >>> fixes, truth = simulate_independent(n_fixes=2_000, seed=1)
    >>> len(fixes) >= 2_000, bool(truth["observed"].any())
    (True, True)
    """
    rng = np.random.default_rng([seed, 0])  # the itinerary and the sampling
    rng_err = np.random.default_rng([seed, 1])  # the errors: every condition shares one truth
    places = np.c_[rng.uniform(-15_000, 15_000, 60), rng.uniform(-15_000, 15_000, 60)]
    indoor = rng.random(60) < 0.7
    t0 = pd.Timestamp("2025-11-03T06:00Z").value / 1e9
    fx, tr = [], []
    for si in range(max(1, -(-n_fixes // PER_SUBJECT))):
        name = f"person-{si:03d}"
        n_stays, got = 40, None
        while got is None or len(got[0]) < PER_SUBJECT:
            plan = _plan(rng, places, indoor, t0 + rng.uniform(0, 3600), n_stays)
            got = _sample_times(plan, rng)
            n_stays *= 2
        t, still = got[0][:PER_SUBJECT], got[1][:PER_SUBJECT]
        x, y, acc, kind = _observe(plan, t, still, rng_err, correlated=correlated, multipath=multipath)
        dlat, dlon = xy_to_deg(x, y, lat0=LAT0)
        fx.append(pd.DataFrame({"subject_id": name, "t": t, "lat": LAT0 + dlat, "lon": LON0 + dlon,
                                "h_acc_m": acc, "fix_kind": kind}))
        last = t[-1]
        tlat, tlon = xy_to_deg(plan.x, plan.y, lat0=LAT0)
        good = t[acc <= 500]
        n_in = np.searchsorted(good, plan.dep) - np.searchsorted(good, plan.arr)
        keep = plan.dep <= last
        tr.append(pd.DataFrame({"subject_id": name, "t_arrival": plan.arr[keep], "t_departure": plan.dep[keep],
                                "lat": LAT0 + tlat[keep], "lon": LON0 + tlon[keep], "observed": n_in[keep] >= 2}))
    f = pd.concat(fx, ignore_index=True)
    n = len(f)
    fixes = schema.coerce(pd.DataFrame({
        "subject_id": pd.array(f["subject_id"], dtype="string"),
        "t_utc": pd.to_datetime(np.round(f["t"].to_numpy() * 1e3).astype("int64"), unit="ms", utc=True),
        "lat": f["lat"], "lon": f["lon"], "h_acc_m": f["h_acc_m"],
        "fix_kind": pd.array(f["fix_kind"], dtype="string"), "source_id": "2" * 64,
        "record": pd.array(np.arange(n).astype(str), dtype="string"), "flags": "",
    }), "fixes")
    truth = pd.concat(tr, ignore_index=True)
    for c in ("t_arrival", "t_departure"):
        truth[c] = pd.to_datetime(np.round(truth[c].to_numpy() * 1e3).astype("int64"), unit="ms", utc=True)
    return fixes, truth


def scores(*, n_fixes: int = 20_000, seeds: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """routetrace's default stop detection scored against this truth, per condition."""
    from routetrace.routes import detect_stops
    from routetrace.samples.simulate import score_stops

    rows = []
    for label, correlated, multipath in CONDITIONS:
        tot = {"tp": 0.0, "detected": 0.0, "true": 0.0}
        arr, dep, n = [], [], 0
        for seed in seeds:
            f, truth = simulate_independent(n_fixes=n_fixes, seed=seed, correlated=correlated, multipath=multipath)
            n += len(f)
            _, stops = detect_stops(f)
            s = score_stops(stops, truth)
            for k in tot:
                tot[k] += s[k]
            arr.append(s["median_arrival_error_s"])
            dep.append(s["median_departure_error_s"])
        p = tot["tp"] / tot["detected"] if tot["detected"] else 1.0
        r = tot["tp"] / tot["true"] if tot["true"] else 1.0
        rows.append({"condition": label, "fixes": n, "true stops": int(tot["true"]),
                     "detected": int(tot["detected"]), "precision": p, "recall": r,
                     "F1": 2 * p * r / (p + r) if p + r else 0.0,
                     "median arrival error (s)": float(np.mean(arr)),
                     "median departure error (s)": float(np.mean(dep))})
    return pd.DataFrame(rows)


def section(*, n_fixes: int = 20_000, seeds: tuple[int, ...] = (1, 2)) -> str:
    """The Markdown rows for the validation report (rule, table)."""
    df = scores(n_fixes=n_fixes, seeds=seeds)
    out = ["**A second, independent source of truth** (`bench/truth2.py`, written separately from the "
           "simulator above and sharing none of its favours): phone traces whose sampling follows a lagging "
           "motion state (no fix at any arrival or departure), whose errors are correlated in time "
           "(Gauss-Markov), biased per stay for Wi-Fi and cell fixes, with multipath bursts, and whose stated "
           "accuracy is independent of the actual error. A true stop is a stay of at least 6 min at one place "
           "(true position within 25 m of its centre; traffic halts of at most 3 min are not stays), taken "
           "from the generator's state; the full rule is the module's docstring. "
           f"Seeds {', '.join(map(str, seeds))}, about {n_fixes:,} fixes each; detection with "
           "`detect_stops` defaults; same scoring as above.", "",
           "| condition | fixes | true stops | detected | precision | recall | F1 | median arrival error (s) "
           "| median departure error (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        out.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.0f} | "
                   f"{r[8]:.0f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(section())
