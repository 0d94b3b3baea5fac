"""A simulator of phone and truck traces with ground-truth stops, for tests, benchmarks and
the validation report.

Each subject alternates stays and drives. Sampling and noise follow the device kind:

``truck``
    GPS every ``truck_period_s`` (30 s) while driving; one fix an hour while parked (the
    Teltonika default), plus a fix at arrival and departure; 3-8 m accuracy; trucks park
    up to ~60 m from a car park's centre, several side by side (dense car parks: stays are
    drawn from a small set of shared car parks). Ignition events bound every stay.
``phone``
    Irregular: bursts of 1 s fixes and log-normal intervals around 20 s while moving;
    2-20 min apart while still, mostly Wi-Fi (25-70 m, noise scaled to the stated
    accuracy), 5 % cell fixes (900-1,800 m); silences of 1-4 h now and then (the phone is
    off), during stays or drives.

``noise_scale`` multiplies every position error; ``regime`` ``sparse`` thins phone
sampling fourfold.
Returns ``(fixes, events, truth)``; ``truth`` has one row per stay (``subject_id, t_arrival,
t_departure, lat, lon, observed``) with ``observed`` false when the device was off for the
whole stay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..geodesy import haversine_m, xy_to_deg

__all__ = ["bounds_coverage", "match_stops", "score_stops", "simulate"]

def _deg(dx: np.ndarray, dy: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    return xy_to_deg(dx, dy, lat0=lat0)


def simulate(
    *,
    n_fixes: int = 10_000,
    kind: str = "phone",
    seed: int = 0,
    noise_scale: float = 1.0,
    regime: str = "normal",
    start: str = "2025-10-20T00:00Z",
    n_carparks: int = 25,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate about ``n_fixes`` fixes of ``kind`` subjects (see module doc).

    Parameters
    ----------
    n_fixes : int
        About how many fixes in all (a subject per 20,000 truck or 15,000 phone fixes).
    kind : str
        ``"truck"`` or ``"phone"`` (sampling, accuracy and silences as in the module doc).
    seed : int
        Seed of every random draw (same seed, same tables).
    noise_scale : float
        Multiplies every position error.
    regime : str
        ``"normal"``, or ``"sparse"``: phone sampling thinned fourfold.
    start : str
        Start of the simulation (ISO-8601 UTC); the first stay begins within the hour after.
    n_carparks : int
        Number of places (car parks) the stays are drawn from.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(fixes, events, truth)``: canonical ``fixes`` and ``events`` (ignition events of
        trucks; none for phones), and one ``truth`` row per stay (``subject_id, t_arrival,
        t_departure, lat, lon, observed``).

    Example
    -------
    >>> fixes, events, truth = simulate(n_fixes=2000, kind="truck", seed=1)
    >>> fixes["subject_id"].unique().tolist(), len(truth), bool(truth["observed"].all())
    (['truck-0000'], 25, True)
    >>> sorted(events["kind"].unique())
    ['ignition_off', 'ignition_on']
    """
    rng = np.random.default_rng(seed)
    lat0, lon0 = 51.0, 4.0
    parks = np.c_[rng.uniform(-60_000, 60_000, n_carparks), rng.uniform(-40_000, 40_000, n_carparks)]
    per_subject = 20_000 if kind == "truck" else 15_000
    n_sub = max(1, int(np.ceil(n_fixes / per_subject)))
    t0 = pd.Timestamp(start).value / 1e9
    fx: list[dict[str, np.ndarray]] = []
    truth: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    target = n_fixes / n_sub
    for si in range(n_sub):
        name = f"{kind}-{si:04d}"
        now = t0 + rng.uniform(0, 3600)
        here_k = int(rng.integers(n_carparks))
        here = parks[here_k] + (rng.normal(0, 40, 2) if kind == "truck" else rng.normal(0, 5, 2))
        count = 0
        parts_t, parts_x, parts_y, parts_acc, parts_kind = [], [], [], [], []
        while count < target:
            stay = rng.uniform(10 * 60, 5 * 3600) if rng.random() < 0.8 else rng.uniform(6 * 60, 15 * 60)
            arr, dep = now, now + stay
            if kind == "truck":
                ts = np.r_[np.arange(arr, dep - 60, 3600.0), dep - 60, dep - 0.5]
                acc = rng.uniform(3, 8, len(ts))
                fk = np.full(len(ts), "gps", dtype=object)
                scat = 25.0
                events.append({"subject_id": name, "t": arr + 20, "kind": "ignition_off"})
                events.append({"subject_id": name, "t": dep - 60, "kind": "ignition_on"})
            else:
                step = rng.uniform(120, 1200, int(stay / 100) + 2) * (4 if regime == "sparse" else 1)
                ts = arr + np.r_[0, np.cumsum(step)]
                ts = np.r_[ts[ts < dep], dep - 0.5]
                acc = rng.uniform(25, 70, len(ts))
                fk = np.full(len(ts), "wifi", dtype=object)
                cell = rng.random(len(ts)) < 0.05
                acc[cell] = rng.uniform(900, 1800, cell.sum())
                fk[cell] = "cell"
                scat = 15.0
            err = rng.normal(0, 1, (len(ts), 2)) * (acc[:, None] / 2 * noise_scale + scat)
            parts_t.append(ts)
            parts_x.append(here[0] + err[:, 0])
            parts_y.append(here[1] + err[:, 1])
            parts_acc.append(acc)
            parts_kind.append(fk)
            truth.append({"subject_id": name, "t_arrival": arr, "t_departure": dep,
                          "x": here[0], "y": here[1]})
            count += len(ts)
            # drive to another car park
            k = int(rng.integers(n_carparks - 1))
            k = k + 1 if k >= here_k else k  # always another car park
            nxt = parks[k] + (rng.normal(0, 40, 2) if kind == "truck" else rng.normal(0, 5, 2))
            dist = float(np.hypot(*(nxt - here)))
            speed = rng.uniform(18, 28)
            dur = max(dist / speed, 120.0)
            if kind == "truck":
                tm = np.arange(dep, dep + dur, 30.0)
            else:
                gaps = rng.lognormal(np.log(20), 0.6, int(dur / 5) + 2) * (4 if regime == "sparse" else 1)
                gaps[rng.random(len(gaps)) < 0.15] = 1.0
                tm = dep + np.r_[0, np.cumsum(gaps)]
                tm = tm[tm < dep + dur]
            frac = ((tm - dep) / dur)[:, None]
            pos = here + frac * (nxt - here)
            macc = rng.uniform(3, 8, len(tm)) if kind == "truck" else rng.uniform(5, 16, len(tm))
            merr = rng.normal(0, 1, (len(tm), 2)) * (macc[:, None] / 2 * noise_scale)
            parts_t.append(tm)
            parts_x.append(pos[:, 0] + merr[:, 0])
            parts_y.append(pos[:, 1] + merr[:, 1])
            parts_acc.append(macc)
            parts_kind.append(np.full(len(tm), "gps", dtype=object))
            count += len(tm)
            now, here, here_k = dep + dur, nxt, k
        t = np.concatenate(parts_t)
        keep = np.ones(len(t), dtype=bool)
        if kind == "phone":  # the phone is switched off now and then
            for _ in range(max(1, int((t[-1] - t[0]) / (3 * 86400)))):
                a = rng.uniform(t[0], t[-1])
                keep &= ~((t >= a) & (t < a + rng.uniform(3600, 4 * 3600)))
        fx.append({"s": np.full(keep.sum(), name, dtype=object), "t": t[keep],
                   "x": np.concatenate(parts_x)[keep], "y": np.concatenate(parts_y)[keep],
                   "acc": np.concatenate(parts_acc)[keep], "k": np.concatenate(parts_kind)[keep]})
    s = np.concatenate([d["s"] for d in fx])
    lat, lon = _deg(np.concatenate([d["x"] for d in fx]), np.concatenate([d["y"] for d in fx]), lat0)
    n = len(s)
    fixes = pd.DataFrame({
        "subject_id": pd.array(s.astype(str), dtype="string"),
        "t_utc": pd.to_datetime(np.round(np.concatenate([d["t"] for d in fx]) * 1000).astype("int64"),
                                unit="ms", utc=True).astype("datetime64[ns, UTC]"),
        "lat": lat0 + lat, "lon": lon0 + lon,
        "h_acc_m": np.concatenate([d["acc"] for d in fx]),
        "fix_kind": pd.array(np.concatenate([d["k"] for d in fx]).astype(str), dtype="string"),
        "source_id": "0" * 64, "record": pd.array(np.arange(n).astype(str), dtype="string"), "flags": "",
    })
    fixes = schema.coerce(fixes, "fixes")
    tr = pd.DataFrame(truth)
    tlat, tlon = _deg(tr["x"].to_numpy(), tr["y"].to_numpy(), lat0)
    tr = pd.DataFrame({
        "subject_id": tr["subject_id"],
        "t_arrival": pd.to_datetime(np.round(tr["t_arrival"].to_numpy() * 1000).astype("int64"), unit="ms", utc=True),
        "t_departure": pd.to_datetime(np.round(tr["t_departure"].to_numpy() * 1000).astype("int64"), unit="ms", utc=True),
        "lat": lat0 + tlat, "lon": lon0 + tlon,
    })
    # a stay is observed when at least two fixes of the subject fall inside it
    obs = []
    for r in tr.itertuples():
        f = fixes[(fixes["subject_id"] == r.subject_id) & (fixes["t_utc"] >= r.t_arrival)
                  & (fixes["t_utc"] <= r.t_departure) & (fixes["h_acc_m"] <= 500)] if len(tr) < 5000 else None
        obs.append(True if f is None else len(f) >= 2)
    tr["observed"] = obs
    ev = pd.DataFrame(events)
    if len(ev):
        ev = pd.DataFrame({
            "subject_id": ev["subject_id"],
            "t_utc": pd.to_datetime(np.round(ev["t"].to_numpy() * 1000).astype("int64"), unit="ms", utc=True),
            "kind": ev["kind"], "source_id": "0" * 64, "record": [f"ev{i}" for i in range(len(ev))],
            "flags": "",
        })
        ev = schema.coerce(ev, "events")
    else:
        ev = schema.empty("events")
    return fixes, ev, tr


def match_stops(detected: pd.DataFrame, truth: pd.DataFrame, *, radius_m: float = 150.0,
                only_observed: bool = True) -> pd.DataFrame:
    """Pairs of detected stops and true stays: ``detected`` and ``truth`` (index labels).

    A detected stop matches a true stay of the same subject when they overlap in time and
    the detected centre lies within ``radius_m`` of the true position; each true stay is
    matched at most once (greedy by overlap, detected stops in table order). True stays the
    device did not observe (off throughout) are left out when ``only_observed``.

    Parameters
    ----------
    detected : pandas.DataFrame
        Detected stops: ``subject_id, t_arrival, t_departure, lat, lon``.
    truth : pandas.DataFrame
        True stays, as :func:`simulate` returns them (with ``observed``).
    radius_m : float
        Largest distance between a detected centre and the true position, metres.
    only_observed : bool
        Leave out the true stays the device did not observe.

    Returns
    -------
    pandas.DataFrame
        Columns ``detected`` and ``truth``: the index labels of each matched pair.

    Example
    -------
    >>> t = lambda *s: pd.to_datetime([f"2025-10-26T{x}Z" for x in s])
    >>> truth = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:00", "23:00"),
    ...                       "t_departure": t("22:00", "23:30"), "lat": [51.0, 51.1],
    ...                       "lon": [3.87, 3.87], "observed": [True, True]})
    >>> detected = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:01", "23:40"),
    ...                          "t_departure": t("21:58", "23:50"), "lat": [51.0003, 51.2],
    ...                          "lon": [3.87, 3.87]})
    >>> match_stops(detected, truth).values.tolist()  # the second stop is elsewhere
    [[0, 0]]
    """

    tr = truth[truth["observed"]] if only_observed else truth
    pairs: list[tuple[object, object]] = []
    used: set[int] = set()
    for subject, d in detected.groupby("subject_id"):
        t = tr[tr["subject_id"] == subject]
        if t.empty:
            continue
        ta0 = t["t_arrival"].to_numpy(dtype="datetime64[ns]").astype("int64")
        ta1 = t["t_departure"].to_numpy(dtype="datetime64[ns]").astype("int64")
        for r in d.itertuples():
            a = r.t_arrival.value
            b = r.t_departure.value
            overlap = np.minimum(ta1, b) - np.maximum(ta0, a)
            near = haversine_m(t["lat"].to_numpy(float), t["lon"].to_numpy(float), r.lat, r.lon) <= radius_m
            free = [c for c in np.flatnonzero((overlap > 0) & near) if int(t.index[c]) not in used]
            if not free:
                continue
            best = max(free, key=lambda c: overlap[c])
            used.add(int(t.index[best]))
            pairs.append((r.Index, t.index[best]))
    return pd.DataFrame(pairs, columns=["detected", "truth"])


def score_stops(detected: pd.DataFrame, truth: pd.DataFrame, *, radius_m: float = 150.0,
                only_observed: bool = True) -> dict[str, float]:
    """Precision, recall, F1 and median arrival/departure errors of detected stops.

    Stops are paired by :func:`match_stops`; errors are those of the matched pairs.

    Parameters
    ----------
    detected, truth, radius_m, only_observed
        As for :func:`match_stops`.

    Returns
    -------
    dict of str to float
        ``precision``, ``recall``, ``f1``, ``tp``, ``detected``, ``true`` (counts), and
        ``median_arrival_error_s``, ``median_departure_error_s`` (seconds; NaN without a
        match). With no detected (or no true) stop, precision (recall) is 1.

    Example
    -------
    >>> t = lambda *s: pd.to_datetime([f"2025-10-26T{x}Z" for x in s])
    >>> truth = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:00", "23:00"),
    ...                       "t_departure": t("22:00", "23:30"), "lat": [51.0, 51.1],
    ...                       "lon": [3.87, 3.87], "observed": [True, True]})
    >>> detected = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:01", "23:40"),
    ...                          "t_departure": t("21:58", "23:50"), "lat": [51.0003, 51.2],
    ...                          "lon": [3.87, 3.87]})
    >>> s = score_stops(detected, truth)
    >>> s["precision"], s["recall"], s["median_arrival_error_s"], s["median_departure_error_s"]
    (0.5, 0.5, 60.0, 120.0)
    """
    tr = truth[truth["observed"]] if only_observed else truth
    m = match_stops(detected, truth, radius_m=radius_m, only_observed=only_observed)
    tp = len(m)
    if tp:
        d, t = detected.loc[m["detected"]], truth.loc[m["truth"]]
        arr_err = np.abs(d["t_arrival"].to_numpy(dtype="datetime64[ns]").astype("int64")
                         - t["t_arrival"].to_numpy(dtype="datetime64[ns]").astype("int64")) / 1e9
        dep_err = np.abs(d["t_departure"].to_numpy(dtype="datetime64[ns]").astype("int64")
                         - t["t_departure"].to_numpy(dtype="datetime64[ns]").astype("int64")) / 1e9
    n_det, n_true = len(detected), len(tr)
    precision = tp / n_det if n_det else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": float(tp),
            "detected": float(n_det), "true": float(n_true),
            "median_arrival_error_s": float(np.median(arr_err)) if tp else float("nan"),
            "median_departure_error_s": float(np.median(dep_err)) if tp else float("nan")}


def bounds_coverage(detected: pd.DataFrame, truth: pd.DataFrame, *, radius_m: float = 150.0,
                    only_observed: bool = True) -> pd.DataFrame:
    """Per matched stop: does the true arrival and departure lie within the stop's bounds?

    Columns ``arrival_within`` (true arrival in [``t_arrival_after``, ``t_arrival_before``]),
    ``departure_within`` (true departure in [``t_departure_after``, ``t_departure_before``];
    a stops table without the inner bounds is scored with ``t_arrival`` and ``t_departure``),
    ``arrival_open`` / ``departure_open`` (that bound is NA: the record begins or ends with
    the stop; the open side then holds by definition), ``arrival_window_s`` and
    ``departure_window_s`` (widths of the bounded intervals, NaN when open).

    Parameters
    ----------
    detected : pandas.DataFrame
        Detected stops as for :func:`match_stops`, with ``t_arrival_after`` and
        ``t_departure_before`` (as :func:`routetrace.routes.stops.detect_stops` gives).
    truth, radius_m, only_observed
        As for :func:`match_stops`.

    Returns
    -------
    pandas.DataFrame
        One row per matched stop, the columns above and ``subject_id``.

    Example
    -------
    >>> t = lambda *s: pd.to_datetime([f"2025-10-26T{x}Z" for x in s])
    >>> truth = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:00", "23:00"),
    ...                       "t_departure": t("22:00", "23:30"), "lat": [51.0, 51.1],
    ...                       "lon": [3.87, 3.87], "observed": [True, True]})
    >>> detected = pd.DataFrame({"subject_id": ["lorry", "lorry"], "t_arrival": t("21:01", "23:40"),
    ...                          "t_departure": t("21:58", "23:50"), "lat": [51.0003, 51.2],
    ...                          "lon": [3.87, 3.87]})
    >>> detected["t_arrival_after"] = t("20:55", "23:35")
    >>> detected["t_departure_before"] = t("22:05", "23:55")
    >>> b = bounds_coverage(detected, truth)
    >>> b[["arrival_within", "departure_within", "arrival_window_s", "departure_window_s"]].values.tolist()
    [[True, True, 360.0, 420.0]]
    """
    m = match_stops(detected, truth, radius_m=radius_m, only_observed=only_observed)
    d, t = detected.loc[m["detected"]], truth.loc[m["truth"]]

    def ns(frame: pd.DataFrame, col: str) -> np.ndarray:
        return frame[col].to_numpy(dtype="datetime64[ns]").astype("int64")

    nat = np.iinfo(np.int64).min
    after, before = ns(d, "t_arrival_after"), ns(d, "t_departure_before")
    arr = ns(d, "t_arrival_before" if "t_arrival_before" in d else "t_arrival")
    dep = ns(d, "t_departure_after" if "t_departure_after" in d else "t_departure")
    true_a, true_d = ns(t, "t_arrival"), ns(t, "t_departure")
    a_open, d_open = after == nat, before == nat
    return pd.DataFrame({
        "subject_id": d["subject_id"].to_numpy(),
        "arrival_within": (a_open | (after <= true_a)) & (true_a <= arr),
        "departure_within": (dep <= true_d) & (d_open | (true_d <= before)),
        "arrival_open": a_open, "departure_open": d_open,
        "arrival_window_s": np.where(a_open, np.nan, (arr - after) / 1e9),
        "departure_window_s": np.where(d_open, np.nan, (before - dep) / 1e9),
    })
