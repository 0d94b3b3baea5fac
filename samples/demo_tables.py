"""Small invented journeys for exhibit tests, benchmarks and examples (no real data).

:func:`demo_tables` returns canonical ``fixes, stops, gaps, places, sources`` tables for a
fictional drive near Ghent that crosses the end of summer time (2025-10-26 03:00 CEST ->
02:00 CET), with an unobserved interval, two stops, an indicated place and a safehouse.
``n_fixes`` scales the journey for benchmarks (1 Hz-like sampling, deterministic noise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..testing import make_fixes

__all__ = ["demo_tables"]

SRC_A = "a" * 64
SRC_B = "b" * 64
SRC_S = "c" * 64


def demo_tables(n_fixes: int = 600, *, seed: int = 1, hostile: str | None = None,
                noise_m: float = 2.0) -> dict[str, pd.DataFrame]:
    """Invented tables: two subjects, stops, one gap, indicated place and safehouse.

    ``hostile`` (text) is put in every evidence string (subject id, place names, file
    names, statement text) for escaping tests.

    Parameters
    ----------
    n_fixes : int
        About how many fixes phone-A has (at least 60; lorry-1 always has 200).
    seed : int
        Seed of the position noise (same seed, same tables).
    hostile : str, optional
        Text appended to every evidence string.
    noise_m : float
        Standard deviation of the position noise, metres.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixes``, ``stops``, ``gaps``, ``places``, ``sources``, each valid for its kind.

    Example
    -------
    >>> t = demo_tables(n_fixes=600)
    >>> {k: len(v) for k, v in t.items()}
    {'fixes': 740, 'stops': 3, 'gaps': 1, 'places': 2, 'sources': 3}
    >>> demo_tables(hostile="<b>")["places"]["name"].tolist()
    ['Car park (statement W1)<b>', 'the safehouse<b>']
    """
    rng = np.random.default_rng(seed)
    tag = hostile or ""
    n = max(60, int(n_fixes))
    # phone: 50.95,3.60 -> loop to 51.05,3.75 over the DST change; stop in the middle
    t0 = pd.Timestamp("2025-10-25T22:00:00Z")
    span_s = max(4 * 3600, n)  # >= 1 s per fix
    ts = t0 + pd.to_timedelta(np.linspace(0, span_s, n).round(), unit="s")
    u = np.linspace(0, 1, n)
    sd = noise_m / 111_000.0
    lat = 50.95 + 0.10 * u + 0.02 * np.sin(u * 12 * np.pi) + rng.normal(0, sd, n)
    lon = 3.60 + 0.15 * u + 0.03 * np.sin(u * 7 * np.pi) + rng.normal(0, sd * 1.6, n)
    # stop 1 at 40 %..50 % of the journey, stop 2 at the end (last 8 %)
    s1 = (u > 0.40) & (u < 0.50)
    lat[s1], lon[s1] = 51.0 + rng.normal(0, 3e-5, s1.sum()), 3.70 + rng.normal(0, 3e-5, s1.sum())
    s2 = u > 0.92
    lat[s2], lon[s2] = 51.05 + rng.normal(0, 3e-5, s2.sum()), 3.75 + rng.normal(0, 3e-5, s2.sum())
    # an unobserved interval: drop fixes 60 %..70 %
    keep = ~((u > 0.60) & (u < 0.70))
    kinds = np.where(np.arange(n) % 97 == 5, "cell", "gps")
    acc = np.where(kinds == "cell", 800.0, 6.0)
    subj_a = "phone-A" + tag
    fa = make_fixes(subject_id=subj_a, t_utc=ts[keep], lat=lat[keep], lon=lon[keep],
                    h_acc_m=acc[keep], fix_kind=list(kinds[keep]), source_id=SRC_A)
    # lorry: 200 fixes along a straight road, second source
    m = 200
    tb = t0 + pd.to_timedelta(np.arange(m) * 60, unit="s")
    fb = make_fixes(subject_id="lorry-1", t_utc=tb, lat=np.linspace(50.90, 51.02, m),
                    lon=np.linspace(3.55, 3.71, m), h_acc_m=5.0, source_id=SRC_B)
    fixes = schema.coerce(pd.concat([fa, fb], ignore_index=True), "fixes")

    def stop_row(sid: str, mask: np.ndarray, la: float, lo: float) -> dict[str, object]:
        tt = ts[mask & keep]
        return {"subject_id": subj_a, "stop_id": sid, "t_arrival": tt.min(), "t_departure": tt.max(),
                "dwell": tt.max() - tt.min(), "lat": la, "lon": lo, "radius_m": 25.0,
                "n_fixes": int((mask & keep).sum()), "sources": SRC_A, "observed_fraction": 1.0, "flags": ""}

    stops = schema.from_records([stop_row("A:1", s1, 51.0, 3.70), stop_row("A:2", s2, 51.05, 3.75),
                                 {"subject_id": "lorry-1", "stop_id": "L:1", "t_arrival": tb[-20],
                                  "t_departure": tb[-1], "dwell": tb[-1] - tb[-20], "lat": 51.02,
                                  "lon": 3.71, "radius_m": 15.0, "n_fixes": 20, "sources": SRC_B,
                                  "observed_fraction": 1.0, "flags": ""}], "stops")
    stops.attrs["params"] = {"radius_m": 100.0, "min_dwell": "5min", "max_gap": "30min"}
    gi = np.flatnonzero(~keep)
    a, b = gi[0] - 1, gi[-1] + 1
    gaps = schema.from_records([{
        "subject_id": subj_a, "gap_id": "A:gap:1", "t_start": ts[a], "t_end": ts[b],
        "duration": ts[b] - ts[a], "lat_start": lat[a], "lon_start": lon[a], "lat_end": lat[b],
        "lon_end": lon[b], "distance_m": 1000.0, "flags": ""}], "gaps")
    places = schema.from_records([
        {"place_id": "st:1", "kind": "indicated", "name": "Car park (statement W1)" + tag,
         "address": "E40 rest area" + tag, "text": "we waited here at night" + tag, "lat": 51.0005,
         "lon": 3.7004, "radius_m": 150.0, "t_start": pd.Timestamp("2025-10-26T00:00Z"),
         "t_end": pd.Timestamp("2025-10-26T03:00Z"), "source_id": SRC_S, "record": "1", "flags": ""},
        {"place_id": "st:2", "kind": "indicated", "name": "the safehouse" + tag, "text": "hotel" + tag,
         "lat": 51.049, "lon": 3.751, "radius_m": 80.0, "source_id": SRC_S, "record": "2", "flags": ""},
    ], "places")
    sources = schema.from_records([
        {"source_id": SRC_A, "path": "evidence/phone-A/Cache.sqlite" + tag, "size_bytes": 1000,
         "format": "ios-routined-cache", "loader_version": "1", "time_basis": "Apple epoch, UTC",
         "records_read": len(fa), "n_fixes": len(fa), "n_events": 0, "n_places": 0, "n_rejects": 0},
        {"source_id": SRC_B, "path": "evidence/lorry-1/avl.bin", "size_bytes": 2000, "format": "teltonika",
         "loader_version": "1", "time_basis": "GPS time, UTC", "records_read": m, "n_fixes": m,
         "n_events": 0, "n_places": 0, "n_rejects": 0},
        {"source_id": SRC_S, "path": "statements/W1.csv" + tag, "size_bytes": 300, "format": "statements",
         "loader_version": "1", "time_basis": "stated local time Europe/Brussels", "records_read": 2,
         "n_fixes": 0, "n_events": 0, "n_places": 2, "n_rejects": 0},
    ], "sources")
    return {"fixes": fixes, "stops": stops, "gaps": gaps, "places": places, "sources": sources}
