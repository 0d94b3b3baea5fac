"""Car-park pattern figures: hour-of-week heatmap and visits timeline (PNG or SVG).

Deterministic: the Agg backend, a fixed SVG hash salt, no creation dates or software
stamps in the files, so the same visits give byte-identical figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..display import visible
from ..extras import require

__all__ = ["plot_hour_of_week", "plot_visits_timeline"]

_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (the ``charts`` extra)."""
    matplotlib = require("matplotlib", extra="charts", purpose="car-park figures")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", extra="charts", purpose="car-park figures")


def _save(fig: Any, path: Path) -> Path:
    import matplotlib

    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Date": None, "Creator": None} if path.suffix == ".svg" else \
        {"Software": None} if path.suffix == ".png" else {"CreationDate": None, "Creator": None, "Producer": None}
    with matplotlib.rc_context({"svg.hashsalt": "routetrace", "svg.fonttype": "none"}):
        fig.savefig(path, metadata=meta, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_hour_of_week(counts: pd.DataFrame, out: str | Path, *, title: str = "Visits by local "
                      "hour of week") -> Path:
    """Heatmap of visits per local weekday × hour, one panel per geofence (``counts`` from
    :func:`routetrace.routes.carparks.count_hour_of_week`).

    Parameters
    ----------
    counts : pandas.DataFrame
        ``geofence, weekday, hour, visits`` rows.
    out : str or pathlib.Path
        The figure file; the suffix (``.png``, ``.svg``) chooses the format.
    title : str, default "Visits by local hour of week"
        The figure title (shown as text, never as markup).

    Returns
    -------
    pathlib.Path
        ``out``.

    Example
    -------
    >>> import tempfile
    >>> counts = pd.DataFrame({"geofence": ["P"], "weekday": [0], "hour": [22], "visits": [2]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = plot_hour_of_week(counts, Path(tmp) / "how.png")
    ...     p.name, p.stat().st_size > 0
    ('how.png', True)
    """
    names = sorted(counts["geofence"].unique()) if len(counts) else ["(no visits)"]
    plt = _pyplot()
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.6 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        grid = np.zeros((7, 24))
        sub = counts[counts["geofence"] == name] if len(counts) else counts
        for r in sub.itertuples():
            grid[int(r.weekday), int(r.hour)] += r.visits
        ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=max(1.0, float(grid.max())))
        ax.set_yticks(range(7), _DAYS, fontsize=7)
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)], fontsize=7)
        # evidence text: drawn as plain text (a `$` is not math), controls shown escaped
        ax.set_ylabel(visible(name), rotation=0, ha="right", va="center", fontsize=8, parse_math=False)
    axes[0, 0].set_title(title, fontsize=10, parse_math=False)
    axes[-1, 0].set_xlabel("local hour (time zone of the car park, DST-correct)", fontsize=8)
    return _save(fig, Path(out))


def plot_visits_timeline(visits: pd.DataFrame, out: str | Path, *, title: str = "Car-park visits") -> Path:
    """One bar per visit (UTC axis), a row per subject × geofence; door openings marked ▲,
    unobserved parts hatched.

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits from :func:`routetrace.routes.carparks.find_carpark_visits` (needs ``subject_id,
        geofence, t_entry, dwell, unobserved, door_open``).
    out : str or pathlib.Path
        The figure file; the suffix chooses the format.
    title : str, default "Car-park visits"
        The figure title.

    Returns
    -------
    pathlib.Path
        ``out``.

    Example
    -------
    >>> import tempfile
    >>> v = pd.DataFrame({"subject_id": ["lorry"], "geofence": ["P"],
    ...                   "t_entry": pd.to_datetime(["2025-10-26T21:00Z"]),
    ...                   "dwell": [pd.Timedelta("40min")], "unobserved": [pd.Timedelta(0)],
    ...                   "door_open": [1]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = plot_visits_timeline(v, Path(tmp) / "visits.svg")
    ...     p.name, p.stat().st_size > 0
    ('visits.svg', True)
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.35 * max(3, visits[["subject_id", "geofence"]].drop_duplicates().shape[0]) + 1))
    rows = sorted({(r.subject_id, r.geofence) for r in visits.itertuples()})
    for y, (subj, fence) in enumerate(rows):
        sub = visits[(visits["subject_id"] == subj) & (visits["geofence"] == fence)]
        for r in sub.itertuples():
            start = r.t_entry.tz_convert("UTC").tz_localize(None)
            width = max(r.dwell, pd.Timedelta("1min"))
            hatch = "//" if r.unobserved > pd.Timedelta(0) else None
            ax.barh(y, width, left=start, height=0.6, color="#c0392b" if r.door_open else "#7f8c8d",
                    hatch=hatch, edgecolor="black", linewidth=0.3)
            if r.door_open:
                ax.plot([start], [y + 0.42], marker="^", color="black", markersize=4)
    ax.set_yticks(range(len(rows)), [visible(f"{s} @ {g}") for s, g in rows], fontsize=7,
                  parse_math=False)
    ax.set_xlabel("time (UTC); red: door opened during the visit; hatched: contains unobserved time",
                  fontsize=8)
    ax.set_title(title, fontsize=10, parse_math=False)
    fig.autofmt_xdate()
    return _save(fig, Path(out))
