"""Subjects and devices: which evidence belongs to whom.

A **subject** is a person or a vehicle; a **device** is what evidence comes from (an
extraction of a phone, a tracker, a Google account, a camera); every source (evidence file)
belongs to one device and every device to one subject. An extraction and a GPX export of
the same phone are two sources of ONE device: analysed as two subjects, the phone would
"meet" itself all day long.

Without a mapping, each source's subject is what its loader reads from it (an IMEI, an
account tag, a file name) and its device is named after that subject. A mapping file says
it explicitly::

    # subjects.yaml: paths are patterns relative to this file's folder
    subjects:
      - id: phone-A
        kind: person
        label: Suspect A
        devices:
          - id: phone-A-iphone
            kind: phone
            paths: [phone-A/*, phone-A-extraction/*]
      - id: lorry-1
        kind: vehicle
        devices:
          - id: lorry-1-fmb125
            kind: tracker
            paths: [lorry-1/*]

A pattern is matched (``fnmatch``: ``*`` also crosses ``/``) against the source's path
relative to the mapping file's folder; the first device whose pattern matches wins.
Sources no pattern matches keep their loader's subject, and ingest says so.

:func:`lookalike_subjects` finds pairs of subjects whose fixes coincide in time and place
far beyond chance (one device under two names), so ingest can warn and print the mapping
lines that would merge them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import schema
from ..errors import ParameterError
from ..loaders import LoadResult
from ..routes.copresence import find_copresence_pairs

__all__ = ["DeviceRule", "SubjectMap", "assign_subject", "build_devices", "build_subjects",
           "case_material", "load_subject_map", "lookalike_subjects", "merge_lines",
           "subject_overview", "with_subject"]

#: Two fixes of different subjects "coincide" within this distance (m) and time.
LOOKALIKE_RADIUS_M = 50.0
LOOKALIKE_MAX_DT = pd.Timedelta("1min")

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class DeviceRule:
    """One device of a mapping file, with its subject and path patterns."""

    device_id: str
    subject_id: str
    patterns: tuple[str, ...]
    device_kind: str | None = None
    device_label: str | None = None
    subject_kind: str | None = None
    subject_label: str | None = None


@dataclass
class SubjectMap:
    """A parsed subjects mapping file (see the module docstring)."""

    path: Path
    rules: list[DeviceRule] = field(default_factory=list)
    #: (number of rules indexed, exact path -> first rule with it, (rule, pattern) of the
    #: glob patterns): a fleet's mapping names thousands of files one by one
    _index: tuple[int, dict[str, int], list[tuple[int, str]]] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def root(self) -> Path:
        """The folder patterns are relative to: the mapping file's."""
        return self.path.resolve().parent

    def match(self, source_path: str) -> DeviceRule | None:
        """The device rule whose pattern matches ``source_path`` (an archive member matches
        by its archive's path), or None.

        Example
        -------
        >>> m = SubjectMap(Path("/case/subjects.yaml"), [DeviceRule("d", "s", ("phone-A/*",))])
        >>> m.match("/case/phone-A/x.gpx").device_id, m.match("/case/other/y.gpx")
        ('d', None)
        """
        outer = source_path.split("!", 1)[0]
        try:
            rel = Path(os.path.relpath(Path(outer).resolve(), self.root)).as_posix()
        except ValueError:  # another drive (Windows)
            rel = Path(outer).as_posix()
        exact, globs = self._patterns()
        first = exact.get(rel)  # a pattern without * ? [ matches only itself
        for i, pattern in globs:
            if first is not None and i >= first:
                break
            if fnmatch.fnmatchcase(rel, pattern):
                return self.rules[i]
        return None if first is None else self.rules[first]

    def _patterns(self) -> tuple[dict[str, int], list[tuple[int, str]]]:
        """The rules' patterns indexed: plain paths in a dict, globs in rule order (built
        again when rules were added), so matching a file does not try every rule."""
        if self._index is None or self._index[0] != len(self.rules):
            exact: dict[str, int] = {}
            globs: list[tuple[int, str]] = []
            for i, rule in enumerate(self.rules):
                for p in rule.patterns:
                    if any(c in p for c in "*?["):
                        globs.append((i, p))
                    else:
                        exact.setdefault(p, i)
            self._index = (len(self.rules), exact, globs)
        return self._index[1], self._index[2]

    @property
    def declared_by(self) -> str:
        return f"mapping file {self.path.name}"


def _ident(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _ID_CHARS:
        raise ParameterError(f"{where}: {what} must be a non-empty name of letters, digits, "
                             f"'-', '_' or '.', not {value!r}")
    return value


def _opt_text(entry: dict[str, Any], key: str, where: str) -> str | None:
    v = entry.get(key)
    if v is not None and not isinstance(v, str):
        raise ParameterError(f"{where}: {key} must be text, not {v!r}")
    return v


def _device_rules(subj: dict[str, Any], sid: str, where: str) -> list[DeviceRule]:
    devices = subj.get("devices")
    if not isinstance(devices, list) or not devices:
        raise ParameterError(f"{where}: subject {sid!r} needs a list of devices, each with "
                             "'id' and 'paths'")
    rules = []
    for j, dev in enumerate(devices):
        dwhere = f"{where}, device {j + 1}"
        if not isinstance(dev, dict):
            raise ParameterError(f"{dwhere}: expected a mapping with 'id' and 'paths'")
        paths = dev.get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ParameterError(f"{dwhere}: 'paths' must be a list of path patterns")
        rules.append(DeviceRule(
            device_id=_ident(dev.get("id"), "the device id", dwhere), subject_id=sid,
            patterns=tuple(p.strip("/") for p in paths),
            device_kind=_opt_text(dev, "kind", dwhere), device_label=_opt_text(dev, "label", dwhere),
            subject_kind=_opt_text(subj, "kind", where), subject_label=_opt_text(subj, "label", where)))
    return rules


def load_subject_map(path: str | Path) -> SubjectMap:
    """Read and check a subjects mapping file (YAML; see the module docstring).

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    SubjectMap
        Its device rules, in file order.

    Raises
    ------
    ParameterError
        Naming the file and the entry, when the file cannot be read or an entry is wrong
        (a missing id or paths, a device listed under two subjects).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = Path(tmp.name) / "subjects.yaml"
    >>> lines = ["subjects:",
    ...          "  - id: phone-A",
    ...          "    devices:",
    ...          "      - id: phone-A-phone",
    ...          "        paths: [phone-A/*, phone-A-extraction/*]",
    ...          "  - id: lorry-1",
    ...          "    devices:",
    ...          "      - id: lorry-1-tracker",
    ...          "        paths: [lorry-1/*]"]
    >>> _ = p.write_text("\\n".join(lines) + "\\n", encoding="utf-8")
    >>> [(r.subject_id, r.device_id, r.patterns) for r in load_subject_map(p).rules]
    [('phone-A', 'phone-A-phone', ('phone-A/*', 'phone-A-extraction/*')), ('lorry-1', 'lorry-1-tracker', ('lorry-1/*',))]
    >>> tmp.cleanup()
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParameterError(f"cannot read the subjects mapping {p}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("subjects"), list):
        raise ParameterError(f"{p}: expected a top-level 'subjects:' list")
    rules: list[DeviceRule] = []
    owner: dict[str, str] = {}
    for i, subj in enumerate(data["subjects"]):
        where = f"{p}, subject {i + 1}"
        if not isinstance(subj, dict):
            raise ParameterError(f"{where}: expected a mapping with 'id' and 'devices'")
        sid = _ident(subj.get("id"), "the subject id", where)
        for rule in _device_rules(subj, sid, where):
            if owner.setdefault(rule.device_id, sid) != sid:
                raise ParameterError(f"{where}: device {rule.device_id!r} is already listed "
                                     f"under subject {owner[rule.device_id]!r}")
            rules.append(rule)
    return SubjectMap(p, rules)


def with_subject(df: pd.DataFrame, subject_id: str) -> pd.DataFrame:
    """``df`` with every row given to ``subject_id`` (a table without ``subject_id``, or
    without rows, as it is); ``df`` is not modified.

    Parameters
    ----------
    df : pandas.DataFrame
        A canonical table (fixes, events, places) or a loader's side table.
    subject_id : str
        The subject every row is given to.

    Returns
    -------
    pandas.DataFrame
        A new frame (its columns shared with ``df``, ``subject_id`` replaced).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> f = make_fixes(t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87, subject_id="x")
    >>> with_subject(f, "phone-A")["subject_id"].tolist()
    ['phone-A']
    """
    if "subject_id" not in df.columns or not len(df):
        return df
    out = df.copy(deep=False)  # copy-on-write: only subject_id is replaced, nothing copied
    if isinstance(out["subject_id"].dtype, pd.CategoricalDtype):  # one category: the subject
        out["subject_id"] = pd.Series(pd.Categorical([subject_id] * len(out)), index=out.index)
    else:
        out["subject_id"] = pd.Series(subject_id, index=out.index, dtype="string")
    return out


def assign_subject(res: LoadResult, subject_id: str) -> LoadResult:
    """Return ``res`` with every row given to ``subject_id`` (as ``--subject`` would).

    Parameters
    ----------
    res : LoadResult
        What a loader returned.
    subject_id : str
        The subject every row is given to.

    Returns
    -------
    LoadResult
        A new result; ``res`` is not modified.

    Example
    -------
    >>> import tempfile
    >>> from routetrace.loaders import load
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "track.gpx"
    ...     _ = p.write_text('<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1">'
    ...                      '<trk><trkseg><trkpt lat="51.0" lon="3.87"><time>2025-10-26T21:00:00Z'
    ...                      '</time></trkpt></trkseg></trk></gpx>')
    ...     res = load(p)
    >>> assign_subject(res, "phone-A").fixes["subject_id"].tolist()
    ['phone-A']
    """
    def give(df: pd.DataFrame) -> pd.DataFrame:
        return with_subject(df, subject_id)

    return LoadResult(fixes=give(res.fixes), events=give(res.events), places=give(res.places),
                      rejects=res.rejects, source=give(res.source), records_read=res.records_read,
                      extra_tables={k: give(v) for k, v in res.extra_tables.items()})


def build_devices(sources: pd.DataFrame, rules: dict[str, DeviceRule],
                  declared: dict[str, str]) -> pd.DataFrame:
    """The ``devices`` table of a case from its ``sources`` (each with a ``device_id``).

    ``rules`` gives the mapping's rule of each mapped device; ``declared`` says where
    each unmapped device's subject came from.

    Parameters
    ----------
    sources : pandas.DataFrame
        The case's ``sources`` (needs ``device_id`` and ``subject_id``); device ``case`` is
        case material (statements) and belongs to no subject. With a column ``n_sources``,
        a row stands for that many sources (the rows of one device summed).
    rules : dict of str to DeviceRule
        The subjects mapping's rule per device id (kind and label come from it).
    declared : dict of str to str
        Per unmapped device id, where its subject came from (e.g. ``--subject``).

    Returns
    -------
    pandas.DataFrame
        A ``devices`` table, one row per device, sorted by ``device_id``.

    Example
    -------
    >>> src = pd.DataFrame({"device_id": ["ph1", "ph1", "case"],
    ...                     "subject_id": ["phone-A", "phone-A", None]})
    >>> build_devices(src, {}, {"ph1": "--subject"})[["device_id", "subject_id", "n_sources",
    ...                                                 "declared_by"]].values.tolist()
    [['case', 'case', 1, 'case material (places only)'], ['ph1', 'phone-A', 2, '--subject']]
    """
    if not len(sources):
        return schema.empty("devices")
    src = sources.assign(device_id=sources["device_id"].astype("string"),
                         subject_id=sources["subject_id"].astype("string").fillna("case"))
    rows = []
    for dev, grp in src.groupby("device_id", sort=True):
        rule = rules.get(str(dev))
        subject = "case" if str(dev) == "case" else str(grp["subject_id"].iloc[0])
        rows.append({"device_id": str(dev), "subject_id": subject,
                     "kind": rule.device_kind if rule else None,
                     "label": rule.device_label if rule else None,
                     "n_sources": int(grp["n_sources"].sum()) if "n_sources" in grp else len(grp),
                     "declared_by": declared.get(str(dev), "case material (places only)"
                                                 if str(dev) == "case" else "the source itself")})
    return schema.coerce(pd.DataFrame(rows), "devices")


def build_subjects(devices: pd.DataFrame, rules: dict[str, DeviceRule]) -> pd.DataFrame:
    """The ``subjects`` table: one row per subject that has a device in the case.

    Parameters
    ----------
    devices : pandas.DataFrame
        A ``devices`` table (from :func:`build_devices`).
    rules : dict of str to DeviceRule
        The subjects mapping's rule per device id (subject kind and label come from it).

    Returns
    -------
    pandas.DataFrame
        A ``subjects`` table, one row per subject, sorted by ``subject_id``.

    Example
    -------
    >>> src = pd.DataFrame({"device_id": ["ph1", "case"], "subject_id": ["phone-A", None]})
    >>> devices = build_devices(src, {}, {"ph1": "--subject"})
    >>> build_subjects(devices, {})[["subject_id", "declared_by"]].values.tolist()
    [['phone-A', '--subject']]
    """
    if not len(devices):
        return schema.empty("subjects")
    by_subject = {r.subject_id: r for r in rules.values()}
    rows = []
    people = devices[devices["device_id"].astype(str) != "case"]  # case material: no subject
    for sid, grp in people.groupby("subject_id", sort=True):
        rule = by_subject.get(str(sid))
        rows.append({"subject_id": str(sid), "kind": rule.subject_kind if rule else None,
                     "label": rule.subject_label if rule else None,
                     "declared_by": "; ".join(sorted(set(grp["declared_by"].astype(str))))})
    if not rows:
        return schema.empty("subjects")
    return schema.coerce(pd.DataFrame(rows), "subjects")


def lookalike_subjects(fixes: pd.DataFrame, *, among: Collection[str] | None = None,
                       radius_m: float = LOOKALIKE_RADIUS_M, max_dt: pd.Timedelta = LOOKALIKE_MAX_DT,
                       min_share: float = 0.5, min_fixes: int = 20) -> pd.DataFrame:
    """Pairs of subjects that look like one device: their fixes coincide in time and place
    far beyond chance.

    For each pair, ``share`` is the part of the smaller subject's fixes (within the time the
    two overlap) that has a fix of the other subject within ``radius_m`` and ``max_dt``.
    Two people who travel together for an hour share a few per cent of a day; a phone and
    its own export share nearly all. A pair is reported when ``share >= min_share`` over at
    least ``min_fixes`` fixes.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table of the case.
    among : collection of str, optional
        Only pairs with one of these subjects (e.g. those an ingest just created); the
        fixes outside their time span are not compared at all. Default: every pair.
    radius_m : float, default 50.0
        Distance in metres within which two fixes coincide.
    max_dt : pandas.Timedelta, default 1 min
        Largest time difference of coinciding fixes.
    min_share : float, default 0.5
        Smallest share (0 to 1) that is reported: far above the few per cent of two people
        who travel together.
    min_fixes : int, default 20
        Fewest fixes of the smaller subject for a pair to be judged at all.

    Returns
    -------
    pandas.DataFrame
        ``subject_a, subject_b, n_coincident, n_fixes, share`` (sorted by share, descending).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> t = pd.date_range("2025-10-26T21:00Z", periods=20, freq="1min")
    >>> f = make_fixes(subject_id=["phone"] * 20 + ["export"] * 20, t_utc=list(t) * 2,
    ...                lat=51.0, lon=3.87, h_acc_m=10.0)
    >>> lookalike_subjects(f).values.tolist()
    [['export', 'phone', 20, 20, 1.0]]
    """
    cols = ["subject_a", "subject_b", "n_coincident", "n_fixes", "share"]
    if among is not None:
        mine = fixes["subject_id"].astype(str).isin(set(among))
        if not mine.any():
            return pd.DataFrame(columns=cols)
        span = fixes.loc[mine, "t_utc"]
        fixes = fixes[fixes["t_utc"].between(span.min() - max_dt, span.max() + max_dt)]
    if fixes["subject_id"].nunique() < 2:
        return pd.DataFrame(columns=cols)
    pairs = find_copresence_pairs(fixes, radius_m=radius_m, max_dt=max_dt)
    if among is not None:
        pairs = pairs[pairs["subject_a"].astype(str).isin(set(among))
                      | pairs["subject_b"].astype(str).isin(set(among))]
    if not len(pairs):
        return pd.DataFrame(columns=cols)
    # each subject's fix times, sorted once: the fixes within a window are counted by bisection
    times = {str(s): np.sort(g.to_numpy(dtype="datetime64[ns]"))
             for s, g in fixes.groupby("subject_id", observed=True)["t_utc"]}
    rows = []
    for (a, b), grp in pairs.groupby(["subject_a", "subject_b"], sort=True, observed=True):
        ta, tb = times[str(a)], times[str(b)]
        lo, hi = max(ta[0], tb[0]), min(ta[-1], tb[-1])
        counts = []
        for tt, col in ((ta, "fix_a"), (tb, "fix_b")):
            n_in = int(np.searchsorted(tt, hi, side="right") - np.searchsorted(tt, lo, side="left"))
            counts.append((grp[col].nunique(), n_in))
        hit, n = min(counts, key=lambda c: c[1])
        if n >= min_fixes and hit / n >= min_share:
            rows.append({"subject_a": a, "subject_b": b, "n_coincident": hit, "n_fixes": n,
                         "share": round(hit / n, 3)})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("share", ascending=False, kind="mergesort").reset_index(drop=True)


def merge_lines(keep: str, paths: Sequence[str], *, base: Path) -> str:
    """The subjects-mapping lines that put the evidence files ``paths`` under one subject
    ``keep`` (made a valid id); paths are written relative to ``base``.

    Parameters
    ----------
    keep : str
        The subject (and, with ``-device``, device) id to write.
    paths : sequence of str
        Evidence file paths; an archive member (``a.zip!m.db``) is written as its archive.
    base : pathlib.Path
        Folder the written paths are relative to (the mapping file's folder).

    Returns
    -------
    str
        YAML lines, ending with a newline.

    Example
    -------
    >>> print(merge_lines("a", ["x/1.gpx", "y/2.zip!member.db"], base=Path(".")))
    subjects:
      - id: a
        devices:
          - id: a-device
            paths: [x/1.gpx, y/2.zip]
    """
    rels = []
    for s in paths:
        outer = s.split("!", 1)[0]
        try:
            rel = Path(os.path.relpath(Path(outer).resolve(), base.resolve())).as_posix()
        except ValueError:
            rel = outer
        rels.append(rel)
    sid = "".join(c if c in _ID_CHARS else "-" for c in keep) or "subject"
    return ("subjects:\n"
            f"  - id: {sid}\n"
            "    devices:\n"
            f"      - id: {sid}-device\n"
            f"        paths: [{', '.join(sorted(dict.fromkeys(rels)))}]")


def case_material(root: str | Path) -> list[dict[str, Any]]:
    """The case's sources that belong to no subject, kept under the device ``case``: files
    that hold only places (witness statements, an investigator's pins, a GPX of waypoints)
    or nothing usable (every record rejected, or none read). ``routetrace subjects CASE``
    lists them after the subjects, so every source of the case is in that listing.

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder.

    Returns
    -------
    list of dict
        One dict per source, by path: ``source_id, path, format, records_read, n_places,
        n_rejects``.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.app.ingest import ingest
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = (d / "pins.gpx").write_text(
    ...     '<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1">'
    ...     '<wpt lat="51.0" lon="3.87"><name>safehouse</name></wpt></gpx>')
    >>> _ = ingest(d / "case", [d / "pins.gpx"])
    >>> [(m["format"], m["records_read"], m["n_places"], Path(m["path"]).name)
    ...  for m in case_material(d / "case")]
    [('gpx', 1, 1, 'pins.gpx')]
    >>> subject_overview(d / "case")
    []
    >>> tmp.cleanup()
    """
    from ..case import open_case

    sources = open_case(root).table("sources")
    mine = sources[sources["device_id"].astype(str) == "case"].sort_values(["path", "source_id"])
    return [{"source_id": str(s.source_id), "path": str(s.path), "format": str(s.format),
             "records_read": int(s.records_read), "n_places": int(s.n_places),
             "n_rejects": int(s.n_rejects)}
            for s in mine.itertuples()]


def _iso(t: Any) -> str | None:
    return None if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_overview(root: str | Path) -> list[dict[str, Any]]:
    """Subjects of a case with their devices, each device's sources and the time range of
    the fixes and events of each (``routetrace subjects CASE``).

    Parameters
    ----------
    root : str or pathlib.Path
        The case folder.

    Returns
    -------
    list of dict
        One dict per subject: ``subject_id, kind, label, declared_by, devices`` (each device
        with its ``sources``: path, format, fix count, first and last time) and ``t_first``,
        ``t_last`` (ISO UTC).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from routetrace.testing import example_case
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = example_case(d / "case")  # a lorry stopping 10 min with a phone beside it, then leaving
    >>> [(s["subject_id"], s["t_first"], s["t_last"]) for s in subject_overview(d / "case")]
    [('lorry', '2025-10-26T21:00:00Z', '2025-10-26T21:19:00Z'),
     ('phone', '2025-10-26T21:00:00Z', '2025-10-26T21:09:00Z')]
    >>> tmp.cleanup()
    """
    from ..case import open_case

    case = open_case(root)
    sources = case.table("sources")
    times = pd.concat([case.table(k)[["source_id", "t_utc"]] for k in ("fixes", "events")],
                      ignore_index=True)
    span = times.groupby("source_id", observed=True)["t_utc"].agg(["min", "max"])
    nfix = case.table("fixes").groupby("source_id", observed=True).size()
    devices = case.table("devices")
    out = []
    for subj in case.table("subjects").itertuples():
        devs = devices[devices["subject_id"].astype(str) == str(subj.subject_id)]
        dev_rows, t_all = [], []
        for dev in devs.itertuples():
            srcs = sources[sources["device_id"].astype(str) == str(dev.device_id)]
            rows = []
            for s in srcs.itertuples():
                sid = str(s.source_id)
                lo, hi = (span.loc[sid, "min"], span.loc[sid, "max"]) if sid in span.index else (pd.NaT, pd.NaT)
                t_all += [t for t in (lo, hi) if pd.notna(t)]
                rows.append({"source_id": sid, "path": str(s.path), "format": str(s.format),
                             "n_fixes": int(nfix.get(sid, 0)), "t_first": _iso(lo), "t_last": _iso(hi)})
            dev_rows.append({"device_id": str(dev.device_id), "kind": None if pd.isna(dev.kind) else str(dev.kind),
                             "n_sources": int(dev.n_sources), "declared_by": str(dev.declared_by),
                             "sources": rows})
        out.append({"subject_id": str(subj.subject_id),
                    "kind": None if pd.isna(subj.kind) else str(subj.kind),
                    "label": None if pd.isna(subj.label) else str(subj.label),
                    "declared_by": str(subj.declared_by), "devices": dev_rows,
                    "t_first": _iso(min(t_all)) if t_all else None,
                    "t_last": _iso(max(t_all)) if t_all else None})
    return out
