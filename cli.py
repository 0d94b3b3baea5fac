"""The ``routetrace`` command: a thin shell over the public functions.

Every subcommand calls the same function a notebook user would call, prints a short
summary (or JSON with ``--json``), and exits 0 on success, 1 on a user or input error
(one clear line, no traceback unless ``--debug``) and 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .app.progress import Progress
from .display import visible
from .errors import CaseError, RoutetraceError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], dict[str, Any]]
_COMMANDS: dict[str, Handler] = {}
#: each command's own parser, by name (its usage is shown for an argument it does not take)
_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


class _Console:
    """Where output goes: results on stdout (unless ``--json``, whose object is the only
    thing on stdout), messages and progress on stderr (unless ``--quiet``)."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.json = False
        self.bar: Progress | None = None

    def info(self, msg: str) -> None:
        if self.bar is not None:  # a message ends the reading of the file shown so far
            self.bar.clear_file()
        if not self.quiet:
            print(_visible(msg), file=sys.stderr)

    def result(self, msg: str) -> None:
        """A line of the command's result (a table row, a list entry): stdout."""
        if not self.json and not self.quiet:
            print(_visible(msg))

    def progress(self, msg: str) -> None:
        """A loader's progress callback: the file now being read."""
        if self.bar is not None:
            self.bar.file(msg)

    def working(self, step: str) -> Progress:
        """Report ``step`` on stderr until the ``with`` block ends (silent under --quiet)."""
        tty = sys.stderr.isatty()
        write = (lambda _t: 0) if self.quiet else sys.stderr.write
        self.bar = Progress(step, write=write, tty=tty, interval_s=0.5 if tty else 2.0)
        return self.bar

    def done(self) -> None:
        self.bar = None


def _visible(text: str) -> str:
    """Evidence text made safe for a terminal (:func:`routetrace.display.visible`), line by
    line: our own line breaks stay, any other control or bidi character is shown escaped."""
    return "\n".join(visible(line) for line in str(text).split("\n"))


CONSOLE = _Console(quiet=False)


def _options(values: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in values or ():
        if "=" not in v:
            raise RoutetraceError(f"--option {v!r}: expected KEY=VALUE")
        k, _, val = v.partition("=")
        out[k.strip()] = val
    return out


def cmd_formats(args: argparse.Namespace) -> dict[str, Any]:
    """List the registered loaders."""
    from .loaders import formats

    rows = [{"name": s.name, "produces": list(s.produces), "version": s.version,
             "description": s.description, "options": list(s.options)} for s in formats()]
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        CONSOLE.result(f"{r['name']:<{width}}  {r['description']}")
        if r["options"]:
            CONSOLE.result(f"{'':<{width}}  --option keys: {', '.join(r['options'])}")
    return {"formats": rows}


def cmd_discover(args: argparse.Namespace) -> dict[str, Any]:
    """What an extraction or export holds, before ingesting it."""
    from .loaders.ios_discovery import discover as ios_discover
    from .loaders.takeout_discovery import discover as takeout_discover

    ios = ios_discover(args.path)
    found = ios[ios["status"] != "not found"]
    CONSOLE.result(f"iPhone artifacts in {args.path}:")
    if found.empty:
        CONSOLE.result("  none found")
    for r in ios.itertuples():
        if r.status == "not found" and not args.all:
            continue
        n = "" if r.records_read != r.records_read or r.records_read is None else f"{r.records_read} records"
        CONSOLE.result(f"  {r.status:<11} {r.artifact:<26} {n:<16} {r.member if isinstance(r.member, str) else ''}")
    google = takeout_discover(args.path)
    rec = google[google["status"] == "recognised"]
    CONSOLE.result(f"Files a loader recognises: {len(rec)} of {len(google)}")
    for r in rec.itertuples():
        CONSOLE.result(f"  {r.format:<26} {r.member}")
    return {"ios": json.loads(ios.to_json(orient="records")),
            "google": json.loads(google.to_json(orient="records"))}


def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Add evidence to a case."""
    with CONSOLE.working(f"ingesting {len(args.inputs)} input(s) into {args.case}"):
        from .app.ingest import ingest  # imported under the progress line: it takes a second

        rep = ingest(args.case, args.inputs, subject_id=args.subject, subjects=args.subjects,
                     tz=args.tz, format=args.format, options=_options(args.option),
                     case_id=args.case_id, progress=CONSOLE.progress,
                     file_timeout_s=args.file_timeout_s)
    CONSOLE.done()
    if rep.subjects_created or rep.devices_created:
        CONSOLE.info(f"subjects created: {', '.join(rep.subjects_created) or 'none'}; devices "
                     f"created: {', '.join(rep.devices_created) or 'none'} "
                     f"(`routetrace subjects {args.case}` lists them)")
    for path, was, now in rep.reassigned:
        CONSOLE.info(f"  re-assigned {path}: subject {was} -> {now}")
    for line in rep.rederived:
        CONSOLE.info(f"  {line}")
    if rep.unmapped:
        CONSOLE.info(f"  {len(rep.unmapped)} file(s) matched no path of the mapping and keep "
                     "their own subject: " + ", ".join(rep.unmapped[:5])
                     + (" ..." if len(rep.unmapped) > 5 else ""))
    for w in rep.warnings:
        CONSOLE.info(f"warning: {w}")
    CONSOLE.info(f"case {args.case}: {len(rep.added)} file(s) added, {len(rep.duplicates)} already "
                 f"present, {len(rep.errors)} could not be read; {rep.rejected_records} record(s) "
                 f"rejected (see {Path(args.case) / 'quality.csv'})")
    for path, err in rep.errors:
        CONSOLE.info(f"  not loaded: {err}" if path in err else f"  not loaded: {path}: {err}")
    CONSOLE.info("  rows in case: " + ", ".join(f"{k} {v}" for k, v in rep.rows.items()))
    if rep.errors and not rep.added and not rep.duplicates:
        raise RoutetraceError("nothing could be loaded from the inputs given (see above)",
                              hint="check the paths" + (" and the --option values" if args.option
                                                        else "")
                              + ", or force a loader with --format NAME")
    return rep.as_dict()


def _format_width(formats: Iterable[Any]) -> int:
    """Width of a listing's format column: the longest format name in it, at least 18."""
    return max([18, *(len(str(f)) for f in formats)])


def cmd_subjects(args: argparse.Namespace) -> dict[str, Any]:
    """List subjects, devices, sources and time ranges."""
    from .app.subjects import case_material, subject_overview

    view = subject_overview(args.case)
    material = case_material(args.case)
    w = _format_width([*(src["format"] for subj in view for dev in subj["devices"] for src in dev["sources"]),
                       *(src["format"] for src in material)])
    for subj in view:
        CONSOLE.result(f"{subj['subject_id']}  {subj['kind'] or ''} {subj['label'] or ''}  "
                       f"{subj['t_first'] or '-'} .. {subj['t_last'] or '-'}  "
                       f"({subj['declared_by']})")
        for dev in subj["devices"]:
            CONSOLE.result(f"  device {dev['device_id']}  {dev['kind'] or ''}  "
                           f"{dev['n_sources']} source(s)")
            for src in dev["sources"]:
                CONSOLE.result(f"    {src['source_id'][:12]}  {src['format']:<{w}} "
                               f"{src['n_fixes']:>8} fixes  {src['t_first'] or '-'} .. "
                               f"{src['t_last'] or '-'}  {src['path']}")
    if material:
        CONSOLE.result("no subject (device case): places only, or nothing usable")
        for src in material:
            CONSOLE.result(f"    {src['source_id'][:12]}  {src['format']:<{w}} "
                           f"{src['n_places']:>8} places  {src['n_rejects']} of "
                           f"{src['records_read']} record(s) rejected  {src['path']}")
    return {"subjects": view, "case_material": material}


def cmd_remove_source(args: argparse.Namespace) -> dict[str, Any]:
    """Remove sources from a case and re-derive its analyses."""
    from .app.remove import remove_sources

    rep = remove_sources(args.case, args.sources)
    for s in rep.removed:
        CONSOLE.info(f"removed {s['source_id'][:16]}  {s['path']}")
    if rep.subjects_removed or rep.devices_removed:
        CONSOLE.info(f"  left without a source and removed: subjects "
                     f"{', '.join(rep.subjects_removed) or 'none'}; devices "
                     f"{', '.join(rep.devices_removed) or 'none'}")
    for line in rep.rederived:
        CONSOLE.info(f"  {line}")
    CONSOLE.info("  rows in case: " + ", ".join(f"{k} {v}" for k, v in rep.rows.items()))
    return rep.as_dict()


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    """Export case tables."""
    from .app.export import export_case

    paths = export_case(args.case, to=args.to, out=args.out)
    for p in paths:
        CONSOLE.info(f"wrote {p}")
    return {"written": [str(p) for p in paths]}


def cmd_sample(args: argparse.Namespace) -> dict[str, Any]:
    """Write the sample case's evidence files."""
    from .samples import generate

    files = generate(args.out, seed=args.seed)
    CONSOLE.info(f"sample case (seed {args.seed}) written to {args.out}: {len(files)} evidence "
                 f"file(s), ground truth in {Path(args.out) / 'truth.json'}")
    for f in files:
        CONSOLE.info(f"  {f.path}  [{f.subject_id or 'case'}]  {f.description}")
    return {"out": str(args.out), "files": [f.path for f in files]}


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the sample case and run the whole pipeline on it."""
    from .app.demo import run_demo

    with CONSOLE.working("running the demo on the sample case"):
        summary = run_demo(Path(args.out), seed=args.seed, progress=CONSOLE.progress,
                           log=CONSOLE.info)
    CONSOLE.done()
    return summary


def cmd_info(args: argparse.Namespace) -> dict[str, Any]:
    """Summarise a case."""
    from .case import open_case

    case = open_case(args.case)
    tables = {n: case.n_rows(n) for n in case.table_names()}  # from the Parquet footers
    CONSOLE.result(f"case {case.case_id} (created {case.manifest.get('created')}, "
                   f"routetrace {case.manifest.get('tool', {}).get('version')})")
    records = case.source_records()
    w = _format_width(s["format"] for s in records)
    for s in records:
        CONSOLE.result(f"  {s['source_id'][:12]}  {s['format']:<{w}} {s['records_read']:>8} records  "
                       f"{s['n_rejects']:>6} rejected  {s['path']}")
    CONSOLE.result("  tables: " + ", ".join(f"{k} {v}" for k, v in tables.items()))
    return {"case_id": case.case_id, "tables": tables}


def cmd_verify(args: argparse.Namespace) -> dict[str, Any]:
    """Re-hash a case's sources and outputs."""
    from .app.verify import verify_case

    rep = verify_case(args.case, exhibit_dirs=args.exhibit, base=args.base)
    for kind, path, status, expected, actual in rep.rows:
        if status != "ok" or not args.quiet:
            line = f"{status:<8} {kind:<15} {visible(path)}"
            if status == "changed":
                line += f"  (recorded {expected[:16]}…, now {actual[:16]}…)"
            if status != "ok":
                print(_visible(line), file=sys.stderr if args.json else sys.stdout)
            else:
                CONSOLE.result(line)
    for ex in rep.exhibits:
        made = ex["code_sha256"]
        if made is None:
            code = "code not stated (made before exhibits stated it)"
        elif ex["same_code"]:
            code = f"code {made[:16]}…: this routetrace's code"
        else:
            code = (f"code {made[:16]}…: NOT this routetrace's code, so running it again here "
                    "may not give the same files")
        CONSOLE.info(f"exhibit {ex['folder']}: made by {ex['tool'] or 'an unstated tool'}, {code}")
    CONSOLE.info(f"{len(rep.rows)} file(s) checked: " + ("all match" if rep.ok else
                 f"{len(rep.problems())} do NOT match"))
    if not rep.ok:
        raise _Failed(f"verification failed: {len(rep.problems())} file(s) changed or missing",
                      rep.as_dict(),
                      hint=None if args.base or not any(
                          r[0] == "source" and r[2] == "missing" for r in rep.rows) else
                      "sources are looked for relative to the case folder; if the evidence is "
                      "elsewhere, pass --base FOLDER")
    return rep.as_dict()


class _Failed(RoutetraceError):
    """A command that ran and found a problem (e.g. verify): its result still goes to --json."""

    def __init__(self, message: str, result: dict[str, Any], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def _positive_minutes(v: str) -> Any:
    """argparse type: minutes > 0, as a Timedelta."""
    import pandas as pd

    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} is not a number of minutes") from None
    if not x > 0 or x != x or x == float("inf"):
        raise argparse.ArgumentTypeError(f"{v!r}: must be a positive number of minutes")
    return pd.Timedelta(minutes=x)


def _positive_metres(v: str) -> float:
    """argparse type: metres > 0."""
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} is not a number of metres") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"{v!r}: must be a positive number of metres")
    return x


def _folder(what: str) -> Callable[[str], str]:
    """argparse type: a folder, new or existing, not a file (checked before any work);
    ``what`` names it in the error (``--out names a folder``)."""
    def check(v: str) -> str:
        if Path(v).exists() and not Path(v).is_dir():
            raise argparse.ArgumentTypeError(f"{v!r} is a file; {what} (new or existing)")
        return v
    return check


_out_folder = _folder("--out names a folder")
_case_folder = _folder("the case is a folder")


def _zone_name(v: str) -> str:
    """argparse type: an IANA zone name (checked before anything is read or written)."""
    from .timebase import zone

    try:
        zone(v)
    except RoutetraceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return v


def _time_arg(v: str, flag: str) -> str:
    from .maps.selection import utc_bound

    try:
        utc_bound(v, name=flag)
    except RoutetraceError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return v


def _time_from(v: str) -> str:
    """argparse type: a time with its zone (``--from``)."""
    return _time_arg(v, "--from")


def _time_to(v: str) -> str:
    """argparse type: a time with its zone (``--to``)."""
    return _time_arg(v, "--to")


def cmd_chronology(args: argparse.Namespace) -> dict[str, Any]:
    """Stops, trips, gaps and the chronology of every subject."""
    from .app.analysis import run_chronology
    from .localtime import fmt_duration

    with CONSOLE.working("computing stops, trips and unobserved intervals"):
        chrono = run_chronology(args.case, radius_m=args.radius_m, min_dwell=args.min_dwell_min,
                                max_gap=args.max_gap_min)
    CONSOLE.done()
    if not args.json and not args.quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Chronology of case {args.case}", show_lines=False)
        for col in ("subject", "#", "kind", "from (local time of the place)", "to", "dwell/duration",
                    "fixes", "flags"):
            table.add_column(col)
        for r in chrono.itertuples():
            span = r.dwell if r.kind == "stop" else r.duration
            table.add_row(str(r.subject_id), str(r.seq), str(r.kind), str(r.local_start), str(r.local_end),
                          fmt_duration(span), "" if r.n_fixes != r.n_fixes else str(int(r.n_fixes)),
                          str(r.flags or ""))
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        console.print(table)
    CONSOLE.info(f"{(chrono['kind'] == 'stop').sum()} stop(s), {(chrono['kind'] == 'trip').sum()} trip(s), "
                 f"{(chrono['kind'] == 'gap').sum()} unobserved interval(s); CSV: {Path(args.case) / 'chronology.csv'}")
    return {"rows": len(chrono), "stops": int((chrono["kind"] == "stop").sum())}


def cmd_copresence(args: argparse.Namespace) -> dict[str, Any]:
    """Find which subjects were together."""
    from .app.analysis import run_copresence

    with CONSOLE.working("looking for subjects together"):
        summary = run_copresence(args.case, radius_m=args.radius_m, max_dt=args.max_dt_min,
                                 dask=args.dask, scheduler=args.scheduler)
    CONSOLE.done()
    for m in summary["meetings"][:50]:
        CONSOLE.result(f"  {m['meeting_id']}  {m['subject_a']} + {m['subject_b']}  {m['t_start']} .. "
                     f"{m['t_end']}  {m['n_pairs']} pair(s), min {m['min_distance_m']:.0f} m")
    CONSOLE.info(f"{len(summary['meetings'])} meeting(s); tables copresence_pairs and meetings "
                 f"written to {args.case}")
    return summary


def cmd_carparks(args: argparse.Namespace) -> dict[str, Any]:
    """Car-park visits and patterns."""
    from .app.analysis import run_carparks

    with CONSOLE.working("finding car-park visits"):
        summary = run_carparks(args.case, geofences=args.geofences, osm=args.osm, dask=args.dask,
                               scheduler=args.scheduler)
    CONSOLE.done()
    CONSOLE.info(f"{summary['n_visits']} visit(s) to {summary['n_geofences']} geofence(s) "
                 f"({summary['geofence_source']}); {summary['n_night_door']} night visit(s) with a "
                 f"door opening; figures: {', '.join(summary['figures'])}")
    return summary


def cmd_corroborate(args: argparse.Namespace) -> dict[str, Any]:
    """Test indicated places against the evidence."""
    from .app.corroborate import corroborate_case

    res = corroborate_case(args.case, args.statements, tz=args.tz, options=_options(args.option),
                           out=args.out)
    for r in res.verdicts.itertuples():
        CONSOLE.result(f"  {r.statement_id}  {r.subject_id}: {r.verdict} — {r.reason}")
    if len(res.sequence):
        bad = int((res.sequence["consistent"] == False).sum())  # noqa: E712 (NA is unknown, not bad)
        CONSOLE.info(f"sequence check: {len(res.sequence)} check(s), {bad} inconsistent")
    out = json.loads(res.verdicts.to_json(orient="records", date_format="iso"))
    return {"verdicts": out}


def cmd_exhibit(args: argparse.Namespace) -> dict[str, Any]:
    """Write the exhibit set of a case."""

    from .case import open_case
    from .maps.exhibit import exhibit_from_case

    static = not args.no_static
    if static:  # the one resolver of the browser, before any work: a clear line, not a late failure
        from .maps.static import chromium_path

        try:
            chromium_path()
        except RoutetraceError as exc:
            raise RoutetraceError(exc.message, hint="pass --no-static for the HTML and exports "
                                  "only") from exc
    case = open_case(args.case)
    if "stops" not in case.table_names():
        raise CaseError("the case has no chronology yet, so the exhibit would show no stops",
                        path=str(args.case), hint=f"run `routetrace chronology {args.case}` first")
    with CONSOLE.working("drawing the exhibit" + (" (HTML, PNG, PDF)" if static else " (HTML)")):
        written = exhibit_from_case(args.case, out_dir=args.out, exhibit_no=args.exhibit_no,
                                    title=args.title, tiles=args.tiles, roads=args.roads,
                                    static=static, subjects=args.subject, t_from=args.t_from,
                                    t_to=args.t_to)
    CONSOLE.done()
    for name in sorted(written):
        CONSOLE.info(f"wrote {Path(args.out) / name}")
    return {"out": str(args.out), "outputs": written}


#: flags users type for a positional argument, and the hint that says where it goes
_POSITIONAL_HINTS = {
    "--case": "the case folder takes no flag: it is the first argument after the command, "
              "e.g. `routetrace ingest CASE EVIDENCE...`, `routetrace chronology CASE`",
}


class _UsageError(Exception):
    """A usage error found by argparse (exit 2); carried to :func:`main` for --json."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.hint: str | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's hook: usage errors exit 2
        raise _UsageError(f"{self.prog}: error: {message}", self.format_usage())


#: flags of one command that users type for another of its flags, and the hint
_COMMAND_FLAG_HINTS = {
    ("export", "--format"): "export's output format is --to (csv, geojson or gpkg), e.g. "
                            "`routetrace export CASE --to gpkg --out exports`",
}


def _usage_hint(argv: Sequence[str]) -> str | None:
    """A hint for a usage error: where a value given with a flag it does not take goes."""
    def given(flag: str) -> bool:
        return any(a == flag or a.startswith(flag + "=") for a in argv)

    hints = [h for flag, h in _POSITIONAL_HINTS.items() if given(flag)]
    hints += [h for (cmd, flag), h in _COMMAND_FLAG_HINTS.items() if argv[:1] == [cmd] and given(flag)]
    return "; ".join(hints) or None


_EPILOG = """times: every table stores UTC; exhibits show the local time of the place with its
UTC offset. Generation stamps honour SOURCE_DATE_EPOCH (seconds since 1970, UTC), e.g.
SOURCE_DATE_EPOCH=1767225600 routetrace exhibit ..., for byte-identical outputs.
exit codes: 0 ok, 1 input or user error (one line naming the file and record),
2 usage error (names the flag). --json: one JSON object on stdout, on success and failure."""


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="routetrace",
        description="Reconstruct journeys from seized location evidence; make court map exhibits.",
        epilog="example: routetrace demo --out demo-out\n\n" + _EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"routetrace {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    common.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (also on failure: error, file, "
                             "record, hint)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Handler, help_: str, *examples: str) -> argparse.ArgumentParser:
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) + "\n\n" + _EPILOG
        sp = sub.add_parser(name, parents=[common], help=help_, description=help_, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(handler=fn)
        _COMMANDS[name] = fn
        _SUBPARSERS[name] = sp
        return sp

    def case_arg(sp: argparse.ArgumentParser, help_: str = "case folder (see `routetrace ingest`)") -> None:
        sp.add_argument("case", help=help_, type=_case_folder)

    def dask_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dask", action="store_true",
                        help="run on Dask (a LocalCluster by default; extra 'fleet')")
        sp.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler, e.g. tcp://host:8786")

    add("formats", cmd_formats, "list the evidence formats routetrace reads",
        "routetrace formats", "routetrace formats --json")

    sp = add("ingest", cmd_ingest, "add evidence files, folders or archives to a case folder",
             "routetrace ingest case-42 phone.gpx --subject phone-A",
             "routetrace ingest case-42 lorry.csv --tz Europe/Brussels",
             "routetrace ingest case-42 evidence/ --subjects evidence/subjects.yaml")
    case_arg(sp, "case folder (created if new; an input path that does not exist is refused "
             "before anything is written)")
    sp.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="evidence files, folders, zip or tar archives (read-only)")
    sp.add_argument("--subject", help="subject id for these inputs (default: from the source)")
    sp.add_argument("--subjects", metavar="YAML",
                    help="mapping of input paths to subjects and devices (see docs/subjects.md)")
    sp.add_argument("--tz", metavar="ZONE", type=_zone_name,
                    help="IANA zone for local times without offset, e.g. Europe/Brussels")
    sp.add_argument("--format", metavar="NAME", help="force a loader (see `routetrace formats`)")
    sp.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="loader option (repeatable), e.g. date_order=DMY")
    sp.add_argument("--case-id", help="case identifier for a new case (default: folder name)")
    sp.add_argument("--file-timeout-s", type=float, metavar="SECONDS",
                    help="time budget per file: a file that takes longer is a file error "
                    "in quality.csv and the ingest goes on (default: none)")

    sp = add("subjects", cmd_subjects, "list a case's subjects, their devices, sources and time "
             "ranges", "routetrace subjects case-42")
    case_arg(sp)

    sp = add("remove-source", cmd_remove_source, "remove sources from a case (exactly their "
             "rows and files; the evidence is not touched) and re-derive the analyses",
             "routetrace remove-source case-42 wrong-phone.gpx",
             "routetrace remove-source case-42 3efa13e65598610d")
    case_arg(sp)
    sp.add_argument("sources", nargs="+", metavar="SOURCE",
                    help="a source's path as ingested, its file name, or its id's first 8+ "
                         "characters (`routetrace subjects CASE` lists them)")

    sp = add("discover", cmd_discover, "list the location artifacts an extraction or Takeout "
             "export holds (zip, tar or folder), and what each loads to",
             "routetrace discover iphone_extraction.zip")
    sp.add_argument("path", help="an extraction or export: zip, tar or folder")
    sp.add_argument("--all", action="store_true", help="also list artifacts not found")

    sp = add("export", cmd_export, "export case tables as CSV, GeoJSON or GeoPackage",
             "routetrace export case-42 --to gpkg --out exports")
    case_arg(sp)
    sp.add_argument("--to", required=True, choices=["csv", "geojson", "gpkg"],
                    help="output format")
    sp.add_argument("--out", required=True, type=_out_folder, help="output folder (gets a manifest.json that "
                    "`routetrace verify --exhibit` checks)")

    sp = add("sample", cmd_sample, "write the bundled fictional sample case's evidence files",
             "routetrace sample --out sample")
    sp.add_argument("--out", required=True, type=_out_folder, help="output folder")
    sp.add_argument("--seed", type=int, default=7, help="random seed of the scenario (default 7)")

    sp = add("demo", cmd_demo, "generate the sample case and run the whole pipeline on it",
             "routetrace demo --out demo-out")
    sp.add_argument("--out", required=True, type=_out_folder, help="output folder")
    sp.add_argument("--seed", type=int, default=7, help="random seed of the scenario (default 7)")

    sp = add("info", cmd_info, "summarise a case: sources, counts, tables", "routetrace info case-42")
    case_arg(sp)

    sp = add("chronology", cmd_chronology, "stops, trips and unobserved intervals of every subject",
             "routetrace chronology case-42", "routetrace chronology case-42 --min-dwell-min 10")
    case_arg(sp)
    sp.add_argument("--radius-m", type=_positive_metres, default=100.0, metavar="M",
                    help="stop radius in metres (default 100)")
    sp.add_argument("--min-dwell-min", type=_positive_minutes, default="5", metavar="MIN",
                    help="shortest stop in minutes (default 5)")
    sp.add_argument("--max-gap-min", type=_positive_minutes, default="30", metavar="MIN",
                    help="silence that counts as unobserved, in minutes (default 30)")

    sp = add("copresence", cmd_copresence, "find subjects that were together (meetings)",
             "routetrace copresence case-42 --radius-m 50")
    case_arg(sp)
    sp.add_argument("--radius-m", type=_positive_metres, default=100.0, metavar="M",
                    help="distance in metres (default 100)")
    sp.add_argument("--max-dt-min", type=_positive_minutes, default="10", metavar="MIN",
                    help="time difference in minutes (default 10)")
    dask_args(sp)

    sp = add("carparks", cmd_carparks, "car-park visits, door openings, co-presence and patterns",
             "routetrace carparks case-42 --geofences carparks.geojson")
    case_arg(sp)
    sp.add_argument("--geofences", metavar="FILE",
                    help="polygons of car parks (GeoJSON, KML, GeoPackage)")
    sp.add_argument("--osm", metavar="FILE",
                    help="an OpenStreetMap extract (.osm.pbf) to take car parks from (extra 'osm')")
    dask_args(sp)

    sp = add("corroborate", cmd_corroborate, "test places indicated in statements against the "
             "evidence", "routetrace corroborate case-42 statements.yaml --tz Europe/Brussels")
    case_arg(sp)
    sp.add_argument("statements", nargs="?", help="statements file (YAML or CSV); default: the "
                    "indicated places already ingested into the case")
    sp.add_argument("--tz", metavar="ZONE", type=_zone_name, help="IANA zone for local times in the statements")
    sp.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="statements loader option (repeatable)")
    sp.add_argument("--out", type=_out_folder, help="folder for the CSVs (default CASE/corroboration)")

    sp = add("exhibit", cmd_exhibit, "write the map exhibit set (HTML, PNG, PDF, KML, GPKG, ...)",
             "routetrace exhibit case-42 --out exhibit-4 --exhibit-no 4",
             "routetrace exhibit case-42 --out exhibit-5 --exhibit-no 5 --subject lorry-1 "
             "--from 2025-10-26T19:00+01:00 --to 2025-10-27T03:00+01:00",
             "SOURCE_DATE_EPOCH=1767225600 routetrace exhibit case-42 --out ex --no-static")
    case_arg(sp, "case folder; run `routetrace chronology` on it first")
    sp.add_argument("--out", required=True, type=_out_folder, help="output folder")
    sp.add_argument("--exhibit-no", default="1", help="exhibit number shown on every page")
    sp.add_argument("--title", default="Timeline map", help="title shown on every page")
    sp.add_argument("--tiles", metavar="FILE", help="offline tiles for the background: MBTiles "
                    "(raster) or PMTiles (vector, e.g. a Protomaps extract, or raster); the tiles "
                    "covering the exhibit are inlined and recorded in the footer")
    sp.add_argument("--roads", metavar="FILE",
                    help="road lines (GeoJSON/GeoPackage) for the background")
    sp.add_argument("--no-static", action="store_true",
                    help="skip PNG/PDF (no Chromium needed)")
    sp.add_argument("--subject", action="append", metavar="SUBJECT",
                    help="show this subject only (repeatable); places without a subject (pins, "
                         "statements) stay. `routetrace subjects CASE` lists them")
    sp.add_argument("--from", dest="t_from", metavar="TIME", type=_time_from,
                    help="show the period from TIME (with its zone: 2025-10-25T00:00+02:00 or ...Z); "
                         "stops and trips overlapping it are shown whole")
    sp.add_argument("--to", dest="t_to", metavar="TIME", type=_time_to,
                    help="show the period up to TIME (excluded; with its zone)")

    sp = add("verify", cmd_verify, "re-hash every source and output of a case and report changes",
             "routetrace verify case-42", "routetrace verify case-42 --exhibit exhibit-4 "
             "--exhibit exports/csv")
    case_arg(sp)
    sp.add_argument("--exhibit", action="append", metavar="DIR",
                    help="also verify an exhibit or export folder's manifest.json (repeatable)")
    sp.add_argument("--base", metavar="DIR", help="folder that relative source paths are "
                    "resolved against (default: the case folder)")
    return p


def _error_object(exc: BaseException, code: int) -> dict[str, Any]:
    if isinstance(exc, RoutetraceError):
        obj: dict[str, Any] = {"ok": False, "error": exc.message, "kind": type(exc).__name__,
                               "file": exc.path, "record": exc.record, "hint": exc.hint}
        if isinstance(exc, _Failed):
            obj["result"] = exc.result
    else:
        obj = {"ok": False, "error": str(exc), "kind": type(exc).__name__.lstrip("_"), "file": None,
               "record": None, "hint": getattr(exc, "hint", None)}  # kind: UsageError, not the private class
    obj["exit_code"] = code
    return obj


def _fail(exc: BaseException, code: int, *, as_json: bool, line: str) -> int:
    print(_visible(line), file=sys.stderr)
    if as_json:
        print(json.dumps(_error_object(exc, code), indent=2, sort_keys=True, default=str))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 input error, 2 usage error).

    Results go to stdout (one JSON object with ``--json``), messages and errors to stderr.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``routetrace`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 ok, 1 an input or user error (one line on stderr naming the file
        and record), 2 a usage error (naming the flag), 130 interrupted, 141 stdout closed
        by its reader (``| head``).

    Example
    -------
    >>> import tempfile
    >>> from routetrace.testing import example_gpx
    >>> tmp = tempfile.TemporaryDirectory()
    >>> gpx = example_gpx(Path(tmp.name) / "phone.gpx", [51.0, 51.001])
    >>> case = str(Path(tmp.name) / "case-42")
    >>> main(["ingest", case, str(gpx), "--subject", "phone-A", "--quiet"])
    0
    >>> main(["info", str(Path(tmp.name) / "nonesuch"), "--quiet"])  # not a case: an input error
    1
    >>> main(["info", case, "--radius"])  # no such flag: a usage error
    2
    >>> tmp.cleanup()
    """
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # stdout's reader left (`routetrace ... | head`): stop quietly, as Unix tools do
        try:  # and keep the interpreter's own flush at exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


def _main(argv: list[str]) -> int:
    as_json = "--json" in argv
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named by the command's own parser, with its usage (not routetrace's)
            _SUBPARSERS[args.command].error(
                f"unrecognized arguments: {' '.join(extra)} (`routetrace {args.command} --help` "
                "lists what it takes)")
    except _UsageError as exc:
        exc.hint = _usage_hint(argv)
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        return _fail(exc, 2, as_json=as_json, line=exc.usage.rstrip() + "\n" + str(exc) + hint)
    CONSOLE.quiet = bool(getattr(args, "quiet", False))
    CONSOLE.json = bool(args.json)
    try:
        result = args.handler(args)
    except RoutetraceError as exc:
        if args.debug:
            raise
        line = f"routetrace: error: {exc.one_line()}"
        if exc.hint:
            line += f"\n  hint: {exc.hint}"
        return _fail(exc, 1, as_json=args.json, line=line)
    except KeyboardInterrupt as exc:
        return _fail(exc, 130, as_json=args.json, line="routetrace: interrupted")
    except BrokenPipeError:
        raise  # not an error of routetrace's: main stops quietly
    except Exception as exc:  # the CLI boundary: one line, never a traceback by default
        if args.debug:
            raise
        return _fail(exc, 1, as_json=args.json,
                     line=f"routetrace: internal error: {type(exc).__name__}: {exc} "
                          "(run again with --debug for the traceback and report it)")
    finally:
        CONSOLE.done()
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
