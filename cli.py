"""The ``routetrace`` command: a thin shell over the public functions.

Every subcommand calls the same function a notebook user would call, prints a short
summary (or JSON with ``--json``), and exits 0 on success, 1 on a user or input error
(one clear line, no traceback unless ``--debug``) and 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .display import visible
from .errors import RoutetraceError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], dict[str, Any]]
_COMMANDS: dict[str, Handler] = {}


class _Console:
    """Prints to stderr unless quiet; progress lines only on a terminal."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(visible(msg), file=sys.stderr)

    def progress(self, msg: str) -> None:
        if not self.quiet and sys.stderr.isatty():
            print(f"\r\033[K  reading {visible(msg)[-100:]}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.quiet and sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)


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
             "description": s.description} for s in formats()]
    if not args.json:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            print(f"{r['name']:<{width}}  {r['description']}")
    return {"formats": rows}


def cmd_discover(args: argparse.Namespace) -> dict[str, Any]:
    """What an extraction or export holds, before ingesting it."""
    from .loaders.ios_discovery import discover as ios_discover
    from .loaders.takeout_discovery import discover as takeout_discover

    ios = ios_discover(args.path)
    found = ios[ios["status"] != "not found"]
    if not args.json:
        print(f"iPhone artifacts in {args.path}:")
        if found.empty:
            print("  none found")
        for r in ios.itertuples():
            if r.status == "not found" and not args.all:
                continue
            n = "" if r.records_read != r.records_read or r.records_read is None else f"{r.records_read} records"
            print(f"  {r.status:<11} {r.artifact:<26} {n:<16} {visible(r.member) if isinstance(r.member, str) else ''}")
    google = takeout_discover(args.path)
    rec = google[google["status"] == "recognised"]
    if not args.json:
        print(f"Files a loader recognises: {len(rec)} of {len(google)}")
        for r in rec.itertuples():
            print(f"  {r.format:<26} {visible(r.member)}")
    return {"ios": json.loads(ios.to_json(orient="records")),
            "google": json.loads(google.to_json(orient="records"))}


def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Add evidence to a case."""
    from .app.ingest import ingest

    rep = ingest(args.case, args.inputs, subject_id=args.subject, tz=args.tz, format=args.format,
                 options=_options(args.option), case_id=args.case_id, progress=CONSOLE.progress,
                 file_timeout_s=args.file_timeout_s)
    CONSOLE.done()
    CONSOLE.info(f"case {args.case}: {len(rep.added)} file(s) added, {len(rep.duplicates)} already "
                 f"present, {len(rep.errors)} could not be read; {rep.rejected_records} record(s) "
                 f"rejected (see {Path(args.case) / 'quality.csv'})")
    for path, err in rep.errors:
        CONSOLE.info(f"  not loaded: {err}" if path in err else f"  not loaded: {path}: {err}")
    CONSOLE.info("  rows in case: " + ", ".join(f"{k} {v}" for k, v in rep.rows.items()))
    if rep.errors and not rep.added and not rep.duplicates:
        raise RoutetraceError("nothing could be loaded from the inputs given (see above)")
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

    summary = run_demo(Path(args.out), seed=args.seed, progress=CONSOLE.progress, log=CONSOLE.info)
    CONSOLE.done()
    return summary


def cmd_info(args: argparse.Namespace) -> dict[str, Any]:
    """Summarise a case."""
    from .case import open_case

    case = open_case(args.case)
    tables = {n: len(case.table(n)) for n in case.table_names()}
    if not args.json:
        print(f"case {visible(case.case_id)} (created {case.manifest.get('created')}, "
              f"routetrace {case.manifest.get('tool', {}).get('version')})")
        for s in case.manifest.get("sources", []):
            print(f"  {s['source_id'][:12]}  {s['format']:<18} {s['records_read']:>8} records  "
                  f"{s['n_rejects']:>6} rejected  {visible(s['path'])}")
        print("  tables: " + ", ".join(f"{k} {v}" for k, v in tables.items()))
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
            print(line, file=sys.stderr)
    CONSOLE.info(f"{len(rep.rows)} file(s) checked: " + ("all match" if rep.ok else
                 f"{len(rep.problems())} do NOT match"))
    if not rep.ok:
        raise RoutetraceError(f"verification failed: {len(rep.problems())} file(s) changed or missing")
    return rep.as_dict()


def _minutes(v: str) -> Any:
    import pandas as pd

    return pd.Timedelta(minutes=float(v))


def cmd_chronology(args: argparse.Namespace) -> dict[str, Any]:
    """Stops, trips, gaps and the chronology of every subject."""
    from .app.analysis import run_chronology

    chrono = run_chronology(args.case, radius_m=args.radius_m, min_dwell=_minutes(args.min_dwell_min),
                            max_gap=_minutes(args.max_gap_min))
    if not args.quiet and not args.json:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Chronology of case {args.case}", show_lines=False)
        for col in ("subject", "#", "kind", "from (local time of the place)", "to", "dwell/duration",
                    "fixes", "flags"):
            table.add_column(col)
        for r in chrono.itertuples():
            span = r.dwell if r.kind == "stop" else r.duration
            table.add_row(str(r.subject_id), str(r.seq), str(r.kind), str(r.local_start), str(r.local_end),
                          str(span).replace("0 days ", ""), "" if r.n_fixes != r.n_fixes else str(int(r.n_fixes)),
                          str(r.flags or ""))
        console = Console(stderr=True)
        if not console.is_terminal:
            console = Console(stderr=True, width=200)
        console.print(table)
    CONSOLE.info(f"{(chrono['kind'] == 'stop').sum()} stop(s), {(chrono['kind'] == 'trip').sum()} trip(s), "
                 f"{(chrono['kind'] == 'gap').sum()} unobserved interval(s); CSV: {Path(args.case) / 'chronology.csv'}")
    return {"rows": len(chrono), "stops": int((chrono["kind"] == "stop").sum())}


def cmd_copresence(args: argparse.Namespace) -> dict[str, Any]:
    """Find which subjects were together."""
    from .app.analysis import run_copresence

    summary = run_copresence(args.case, radius_m=args.radius_m, max_dt=_minutes(args.max_dt_min),
                             dask=args.dask, scheduler=args.scheduler)
    for m in summary["meetings"][:50]:
        CONSOLE.info(f"  {m['meeting_id']}  {m['subject_a']} + {m['subject_b']}  {m['t_start']} .. "
                     f"{m['t_end']}  {m['n_pairs']} pair(s), min {m['min_distance_m']:.0f} m")
    CONSOLE.info(f"{len(summary['meetings'])} meeting(s); tables copresence_pairs and meetings "
                 f"written to {args.case}")
    return summary


def cmd_carparks(args: argparse.Namespace) -> dict[str, Any]:
    """Car-park visits and patterns."""
    from .app.analysis import run_carparks

    summary = run_carparks(args.case, geofences=args.geofences, osm=args.osm, dask=args.dask,
                           scheduler=args.scheduler)
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
        CONSOLE.info(f"  {r.statement_id}  {r.subject_id}: {r.verdict} — {r.reason}")
    if len(res.sequence):
        bad = int((res.sequence["consistent"] == False).sum())  # noqa: E712 (NA is unknown, not bad)
        CONSOLE.info(f"sequence check: {len(res.sequence)} check(s), {bad} inconsistent")
    out = json.loads(res.verdicts.to_json(orient="records", date_format="iso"))
    return {"verdicts": out}


def cmd_exhibit(args: argparse.Namespace) -> dict[str, Any]:
    """Write the exhibit set of a case."""
    import shutil

    from .maps.exhibit import exhibit_from_case

    static = not args.no_static
    if static and shutil.which("chromium") is None:
        raise RoutetraceError("PNG/PDF exhibits need Debian's chromium (`apt-get install chromium`, "
                              "or `bash .ci/install`); pass --no-static for HTML and exports only")
    written = exhibit_from_case(args.case, out_dir=args.out, exhibit_no=args.exhibit_no,
                                title=args.title, tiles=args.tiles, roads=args.roads, static=static)
    for name in sorted(written):
        CONSOLE.info(f"wrote {Path(args.out) / name}")
    return {"out": str(args.out), "outputs": written}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routetrace",
        description="Reconstruct journeys from seized location evidence; make court map exhibits.")
    p.add_argument("--version", action="version", version=f"routetrace {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Handler, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(handler=fn)
        _COMMANDS[name] = fn
        return sp

    add("formats", cmd_formats, "list the evidence formats routetrace reads")

    sp = add("ingest", cmd_ingest, "add evidence files, folders or archives to a case folder")
    sp.add_argument("case", help="case folder (created if new)")
    sp.add_argument("inputs", nargs="+", help="evidence files, folders, zip or tar archives")
    sp.add_argument("--subject", help="subject id for these files (default: from the source)")
    sp.add_argument("--tz", help="IANA zone for local times without offset, e.g. Europe/Brussels")
    sp.add_argument("--format", help="force a loader (see `routetrace formats`)")
    sp.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="loader option (repeatable), e.g. date_order=DMY")
    sp.add_argument("--case-id", help="case identifier for a new case (default: folder name)")
    sp.add_argument("--file-timeout-s", type=float, metavar="SECONDS",
                    help="time budget per file: a file that takes longer is a file error "
                    "in quality.csv and the ingest goes on (default: none)")

    sp = add("discover", cmd_discover, "list the location artifacts an extraction or Takeout "
             "export holds (zip, tar or folder), and what each loads to")
    sp.add_argument("path")
    sp.add_argument("--all", action="store_true", help="also list artifacts not found")

    sp = add("export", cmd_export, "export case tables as CSV, GeoJSON or GeoPackage")
    sp.add_argument("case")
    sp.add_argument("--to", required=True, choices=["csv", "geojson", "gpkg"])
    sp.add_argument("--out", required=True, help="output folder")

    sp = add("sample", cmd_sample, "write the bundled fictional sample case's evidence files")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--seed", type=int, default=7)

    sp = add("demo", cmd_demo, "generate the sample case and run the whole pipeline on it")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--seed", type=int, default=7)

    sp = add("info", cmd_info, "summarise a case: sources, counts, tables")
    sp.add_argument("case")

    sp = add("chronology", cmd_chronology, "stops, trips and unobserved intervals of every subject")
    sp.add_argument("case")
    sp.add_argument("--radius-m", type=float, default=100.0, help="stop radius (default 100 m)")
    sp.add_argument("--min-dwell-min", default="5", help="shortest stop in minutes (default 5)")
    sp.add_argument("--max-gap-min", default="30", help="silence that counts as unobserved, "
                    "in minutes (default 30)")

    sp = add("copresence", cmd_copresence, "find subjects that were together (meetings)")
    sp.add_argument("case")
    sp.add_argument("--radius-m", type=float, default=100.0, help="distance (default 100 m)")
    sp.add_argument("--max-dt-min", default="10", help="time difference in minutes (default 10)")
    sp.add_argument("--dask", action="store_true", help="run on Dask (a LocalCluster by default)")
    sp.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")

    sp = add("carparks", cmd_carparks, "car-park visits, door openings, co-presence and patterns")
    sp.add_argument("case")
    sp.add_argument("--geofences", help="polygons of car parks (GeoJSON, KML, GeoPackage)")
    sp.add_argument("--osm", help="an OpenStreetMap extract (.osm.pbf) to take car parks from")
    sp.add_argument("--dask", action="store_true", help="run on Dask (a LocalCluster by default)")
    sp.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")

    sp = add("corroborate", cmd_corroborate, "test places indicated in statements against the evidence")
    sp.add_argument("case")
    sp.add_argument("statements", nargs="?", help="statements file (YAML or CSV); default: the "
                    "indicated places already ingested into the case")
    sp.add_argument("--tz", help="IANA zone for local times in the statements")
    sp.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option")
    sp.add_argument("--out", help="folder for the CSVs (default CASE/corroboration)")

    sp = add("exhibit", cmd_exhibit, "write the map exhibit set (HTML, PNG, PDF, KML, GPKG, ...)")
    sp.add_argument("case")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--exhibit-no", default="1", help="exhibit number shown on every page")
    sp.add_argument("--title", default="Timeline map")
    sp.add_argument("--tiles", help="offline raster tiles (MBTiles) for the background; recorded "
                    "in the footer")
    sp.add_argument("--roads", help="road lines (GeoJSON/GeoPackage) for the background")
    sp.add_argument("--no-static", action="store_true", help="skip PNG/PDF (no Chromium needed)")

    sp = add("verify", cmd_verify, "re-hash every source and output of a case and report changes")
    sp.add_argument("case")
    sp.add_argument("--exhibit", action="append", metavar="DIR",
                    help="also verify an exhibit folder's manifest.json (repeatable)")
    sp.add_argument("--base", help="folder that relative source paths are resolved against")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 input error, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    CONSOLE.quiet = bool(getattr(args, "quiet", False))
    try:
        result = args.handler(args)
    except RoutetraceError as exc:
        if args.debug:
            raise
        print(f"routetrace: error: {visible(exc.one_line())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("routetrace: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI boundary: one line, never a traceback by default
        if args.debug:
            raise
        print(f"routetrace: internal error: {type(exc).__name__}: {visible(exc)} "
              "(run again with --debug for the traceback and report it)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
