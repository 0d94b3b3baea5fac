"""The canonical tables, declared once: column, dtype, unit and meaning.

Every loader produces these tables, every stage consumes and returns them, every exhibit
reads them. A table is a plain :class:`pandas.DataFrame`; this module says what its
columns must be and checks it.

Conventions
-----------
* Times are ``datetime64[ns, UTC]``. A naive time is a :class:`~routetrace.errors.SchemaError`.
* Positions are WGS84 degrees (``lat``, ``lon``); distances and accuracies in metres
  (``*_m``); speeds in metres per second (``*_mps``); durations are ``timedelta64[ns]``.
* Missing is ``NA``/``NaN``, never a sentinel. Source sentinels (-1 speed, -180 latitude,
  0,0 placeholders) are translated once by the loader, which adds a flag.
* Provenance is a column: ``source_id`` (the SHA-256 of the evidence file, which is also the
  key of the ``sources`` table) and ``record`` (a locator inside that file: row id, byte
  offset, JSON or XML path).
* ``flags`` holds data-quality flags from :data:`FLAGS`, joined by ``|`` in sorted order,
  ``""`` when there are none.
* ``extra`` (where declared) holds source-specific attributes as compact JSON, kept
  verbatim for the record (e.g. routined's ``ZTYPE`` and signal-environment codes).

The lean representation
-----------------------
Provenance on every row must not cost more than the data. In the canonical tables
(``fixes``, ``events``, ``places``, ``rejects``) the repetitive text columns listed in
:data:`DICTIONARY` (``source_id``, ``subject_id``, ``fix_kind``, ``flags``, ``kind``,
``also_seen_in``, a reject's ``reason``, ...) are **dictionary-encoded**: a
:class:`pandas.CategoricalDtype` whose categories are the distinct texts (``string``
dtype, in lexical order, so sorting by the column sorts by the text) and whose codes are
the smallest integer that holds them. A 1e6-row table from one file holds its 64-character
``source_id`` once, plus one byte per row; an empty ``also_seen_in`` costs one byte per
row. The values are the same texts as before: ``astype("string")`` gives them back,
comparisons with text and ``.str`` work, and the case store writes them as Parquet
dictionary columns (``int32`` indices in every file) and reads them back in this form.
``Series.map``/``apply`` on such a column run once per category (including categories no
selected row uses): call ``astype("string")`` first for a function of each row. ``extra``
stays plain text for that reason: each row's JSON is its own (``extra.map(json.loads)``).

* :func:`coerce` (and so every loader's ``finish``, ``testing.make_fixes`` and every read
  from the case store) gives these columns their dictionary form; :func:`validate` also
  accepts them as plain text (a stage that rewrites ``flags`` may return plain text).
  Tables of several sources are joined with :func:`concat`, which unions the categories.
* ``fix_id`` and ``event_id`` are **derived, not stored**: a fix's id is
  ``<source_id[:16]>:<record>``, an event's ``<source_id[:16]>:<record>:<kind>`` (with
  ``/<part>`` after the record when a record gives several events of one kind, as a
  Takeout location's activities), so the canonical ``fixes`` and ``events`` tables do not
  hold them (:data:`DERIVED_IDS`).
  :func:`fix_ids` / :func:`event_ids` build them on demand, vectorised in Arrow, where a
  stage links rows (``fix_stop_links``, co-presence, corroboration, car-park visits) or an
  export writes them (:func:`with_ids`). :func:`coerce` drops a stored id column (a case
  written before, or a hand-built table): the id is its provenance, so two tables that
  cite the same file and record give the same id. ``place_id`` stays stored: places are
  few and their ids are cited by statements and verdicts.

Example
-------
>>> import pandas as pd
>>> from routetrace import schema
>>> df = schema.empty("fixes")
>>> list(df.columns[:5])
['subject_id', 't_utc', 'lat', 'lon', 'alt_m']
>>> schema.validate(df, "fixes") is df
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import SchemaError

__all__ = [
    "CANONICAL",
    "DERIVED_IDS",
    "DICTIONARY",
    "FLAGS",
    "STORED_AS",
    "TABLES",
    "Column",
    "add_flag",
    "as_dictionary",
    "coerce",
    "columns",
    "concat",
    "empty",
    "encode_dictionaries",
    "event_ids",
    "fix_ids",
    "has_flag",
    "kind_of",
    "repeat",
    "row_ids",
    "union_dictionaries",
    "validate",
    "with_ids",
]

Kind = Literal["str", "float", "int", "bool", "time", "timedelta"]

#: pandas dtype used for each column kind.
DTYPES: dict[str, str] = {
    "str": "string",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
    "time": "datetime64[ns, UTC]",
    "timedelta": "timedelta64[ns]",
}

#: the same, as dtype objects (a string dtype's storage included) for exact comparisons.
_RESOLVED = {k: pd.api.types.pandas_dtype(v) for k, v in DTYPES.items()}


@dataclass(frozen=True)
class Column:
    """One declared column: name, kind, unit, whether it must be present, and meaning."""

    name: str
    kind: Kind
    unit: str
    required: bool
    meaning: str


def _c(name: str, kind: Kind, unit: str, meaning: str, *, required: bool = False) -> Column:
    return Column(name, kind, unit, required, meaning)


#: Text columns stored dictionary-encoded (pandas categorical of ``string`` categories in
#: lexical order) in each canonical table: repetitive values (one source, a few subjects,
#: kinds, flag sets) or mostly empty ones. See "The lean representation" above.
DICTIONARY: dict[str, frozenset[str]] = {
    "fixes": frozenset({"subject_id", "fix_kind", "source_id", "flags", "also_seen_in"}),
    "events": frozenset({"subject_id", "kind", "unit", "source_id", "flags", "part"}),
    "places": frozenset({"subject_id", "kind", "t_precision", "source_id", "flags", "also_seen_in"}),
    "rejects": frozenset({"source_id", "reason"}),
}

#: The id column of each canonical table that derives it from the row's provenance rather
#: than storing it (see "The lean representation" above, and :func:`row_ids`).
DERIVED_IDS: dict[str, str] = {"fixes": "fix_id", "events": "event_id"}

_PROVENANCE = (
    _c("source_id", "str", "", "SHA-256 (hex) of the evidence file; key of `sources`", required=True),
    _c("record", "str", "", "locator of the record inside the file (row id, offset, path)", required=True),
    _c("flags", "str", "", "data-quality flags from FLAGS joined by '|', '' when none", required=True),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "fixes": (
        _c("subject_id", "str", "", "the person, phone or vehicle the fix belongs to", required=True),
        _c("t_utc", "time", "UTC", "time of the fix", required=True),
        _c("lat", "float", "deg", "WGS84 latitude", required=True),
        _c("lon", "float", "deg", "WGS84 longitude", required=True),
        _c("alt_m", "float", "m", "altitude above the source's datum"),
        _c("h_acc_m", "float", "m", "horizontal accuracy (radius) as the source states it"),
        _c("v_acc_m", "float", "m", "vertical accuracy"),
        _c("speed_mps", "float", "m/s", "speed over ground as recorded"),
        _c("course_deg", "float", "deg", "course over ground, 0 = north, clockwise"),
        _c("fix_kind", "str", "", "gps, wifi, cell, network, fused, visit, hint, photo, unknown", required=True),
        *_PROVENANCE,
        _c("extra", "str", "", "source-specific attributes as compact JSON"),
        _c("also_seen_in", "str", "", "other copies of this very record: 'source_id:record' joined by '|'"),
    ),
    "events": (
        _c("subject_id", "str", "", "the subject the event belongs to", required=True),
        _c("t_utc", "time", "UTC", "time of the event", required=True),
        _c("t_end", "time", "UTC", "end of the event when it spans an interval (e.g. a learned "
           "transition's stop); NA for an instant"),
        _c("kind", "str", "", "ignition_on, ignition_off, door_open, door_close, fuel_level, "
           "refuel, fuel_drop, odometer, photo, message, activity, ...", required=True),
        _c("value", "float", "see unit", "numeric value, when the event has one"),
        _c("unit", "str", "", "unit of `value` (l, %, m, V, ...)"),
        _c("text", "str", "", "verbatim text from the source (hostile: escape on output)"),
        _c("lat", "float", "deg", "WGS84 latitude where the event happened, when known"),
        _c("lon", "float", "deg", "WGS84 longitude where the event happened, when known"),
        *_PROVENANCE,
        _c("part", "str", "", "the part of the record the event comes from, when a record gives "
           "several events of one kind (Takeout: activity[1]); NA otherwise"),
        _c("extra", "str", "", "source-specific attributes as compact JSON"),
    ),
    "places": (
        _c("place_id", "str", "", "unique id: <source_id[:16]>:<record>", required=True),
        _c("subject_id", "str", "", "subject the place belongs to (NA for case-wide places)"),
        _c("kind", "str", "", "visit, learned, indicated, shared, saved, frequent, portal_stop, ...",
           required=True),
        _c("name", "str", "", "name as the source gives it (hostile text)"),
        _c("address", "str", "", "address as the source gives it (hostile text)"),
        _c("text", "str", "", "other verbatim text (statement, description; hostile text)"),
        _c("lat", "float", "deg", "WGS84 latitude", required=True),
        _c("lon", "float", "deg", "WGS84 longitude", required=True),
        _c("radius_m", "float", "m", "spatial uncertainty of the place"),
        _c("t_start", "time", "UTC", "start of the time the place refers to (NA: unknown)"),
        _c("t_end", "time", "UTC", "end of that time (NA: open or unknown)"),
        _c("t_precision", "str", "", "instant, second, minute, day, month, year, window, none"),
        _c("confidence", "float", "0..1", "confidence as the source states it"),
        *_PROVENANCE,
        _c("extra", "str", "", "source-specific attributes as compact JSON"),
        _c("also_seen_in", "str", "", "other copies of this place (e.g. the same routined visit in "
           "another extraction): 'source_id:record' joined by '|'"),
    ),
    "stops": (
        _c("subject_id", "str", "", "subject", required=True),
        _c("stop_id", "str", "", "unique id of the stop within the case", required=True),
        _c("t_arrival", "time", "UTC", "first fix of the stop", required=True),
        _c("t_departure", "time", "UTC", "last fix of the stop", required=True),
        _c("dwell", "timedelta", "", "t_departure - t_arrival minus unobserved time", required=True),
        _c("lat", "float", "deg", "stop centre (medoid)", required=True),
        _c("lon", "float", "deg", "stop centre (medoid)", required=True),
        _c("radius_m", "float", "m", "largest distance of a stop fix from the centre", required=True),
        _c("n_fixes", "int", "", "fixes in the stop", required=True),
        _c("sources", "str", "", "source_ids of those fixes joined by '|'", required=True),
        _c("observed_fraction", "float", "0..1", "share of the stop's span covered by fixes",
           required=True),
        _c("flags", "str", "", "flags, e.g. spans_gap", required=True),
        _c("t_arrival_after", "time", "UTC",
           "last position fix of the subject before the stop that places it elsewhere (beyond "
           "radius_m + 3 x its accuracy; NA: none): the true arrival lies in "
           "[t_arrival_after, t_arrival_before]"),
        _c("t_departure_before", "time", "UTC",
           "first position fix of the subject after the stop that places it elsewhere (NA: "
           "none): the true departure lies in [t_departure_after, t_departure_before]"),
        _c("t_arrival_before", "time", "UTC",
           "first fix of the stop at rest (step from the previous position fix and own speed at "
           "most edge_speed_mps) or an earlier ignition-off: the true arrival lies in "
           "[t_arrival_after, t_arrival_before]"),
        _c("t_departure_after", "time", "UTC",
           "last fix of the stop at rest (step to the next position fix and own speed at most "
           "edge_speed_mps) or a later ignition-on: the true departure lies in "
           "[t_departure_after, t_departure_before]"),
    ),
    "trips": (
        _c("subject_id", "str", "", "subject", required=True),
        _c("trip_id", "str", "", "unique id of the trip", required=True),
        _c("start_stop_id", "str", "", "stop the trip leaves (NA at the start of the record)"),
        _c("end_stop_id", "str", "", "stop the trip reaches (NA at the end of the record)"),
        _c("t_start", "time", "UTC", "departure", required=True),
        _c("t_end", "time", "UTC", "arrival", required=True),
        _c("duration", "timedelta", "", "t_end - t_start", required=True),
        _c("distance_m", "float", "m", "sum of great-circle steps between fixes", required=True),
        _c("mean_speed_mps", "float", "m/s", "distance / duration"),
        _c("max_speed_mps", "float", "m/s", "largest step speed"),
        _c("n_fixes", "int", "", "fixes in the trip", required=True),
        _c("n_gaps", "int", "", "unobserved intervals inside the trip", required=True),
        _c("flags", "str", "", "flags", required=True),
    ),
    "gaps": (
        _c("subject_id", "str", "", "subject", required=True),
        _c("gap_id", "str", "", "unique id of the unobserved interval", required=True),
        _c("t_start", "time", "UTC", "last fix before the silence", required=True),
        _c("t_end", "time", "UTC", "first fix after the silence", required=True),
        _c("duration", "timedelta", "", "t_end - t_start", required=True),
        _c("lat_start", "float", "deg", "position before"),
        _c("lon_start", "float", "deg", "position before"),
        _c("lat_end", "float", "deg", "position after"),
        _c("lon_end", "float", "deg", "position after"),
        _c("distance_m", "float", "m", "great-circle distance across the gap"),
        _c("flags", "str", "", "flags", required=True),
    ),
    "sources": (
        _c("source_id", "str", "", "SHA-256 (hex) of the file's bytes", required=True),
        _c("path", "str", "", "path as given by the user (archive path for members)", required=True),
        _c("member", "str", "", "member name inside an archive, NA for plain files"),
        _c("size_bytes", "int", "B", "file size", required=True),
        _c("format", "str", "", "detected or forced format (loader name)", required=True),
        _c("loader_version", "str", "", "version of that loader", required=True),
        _c("time_basis", "str", "", "epoch and time-zone assumptions used to read times",
           required=True),
        _c("subject_id", "str", "", "subject the file was assigned to"),
        _c("records_read", "int", "", "records the loader read", required=True),
        _c("n_fixes", "int", "", "fixes produced", required=True),
        _c("n_events", "int", "", "events produced", required=True),
        _c("n_places", "int", "", "places produced", required=True),
        _c("n_rejects", "int", "", "records rejected", required=True),
        _c("companions", "str", "", "companion files read with it (-wal, -shm) with their SHA-256"),
        _c("device_id", "str", "", "device the file came from (see the devices table)"),
        _c("case_relpath", "str", "", "the file's path relative to the case folder (what "
           "`routetrace verify` re-hashes, from any working directory)"),
    ),
    "subjects": (
        _c("subject_id", "str", "", "a person or vehicle of the case", required=True),
        _c("kind", "str", "", "person, vehicle, or NA when not declared"),
        _c("label", "str", "", "a name for people, e.g. 'Suspect A (driver)'"),
        _c("declared_by", "str", "", "where the subject comes from: a subjects mapping file, "
           "--subject, or the source itself", required=True),
    ),
    "devices": (
        _c("device_id", "str", "", "an extraction, tracker, account or camera", required=True),
        _c("subject_id", "str", "", "the subject the device belongs to", required=True),
        _c("kind", "str", "", "phone, tracker, account, camera, ... or NA"),
        _c("label", "str", "", "a name for people"),
        _c("n_sources", "int", "", "evidence files of the device in the case", required=True),
        _c("declared_by", "str", "", "a subjects mapping file, --subject, or the source",
           required=True),
    ),
    "rejects": (
        _c("source_id", "str", "", "SHA-256 of the file", required=True),
        _c("record", "str", "", "locator of the rejected record", required=True),
        _c("reason", "str", "", "why it did not become a row, for a person", required=True),
    ),
}

#: The canonical tables: what loaders produce and stages consume (coerced when read back).
CANONICAL: tuple[str, ...] = tuple(TABLES)

#: Tables the analysis stages store in a case (declared here so the store validates them).
TABLES.update({
    "fix_stop_links": (
        _c("fix_id", "str", "", "a fix of the case", required=True),
        _c("stop_id", "str", "", "the stop it belongs to or bounds", required=True),
        _c("stop_role", "str", "", "member, or the fix bounding the stop before/after it",
           required=True),
    ),
    "recurring_places": (
        _c("place_id", "str", "", "id of the recurring place (P0001...)", required=True),
        _c("lat", "float", "deg", "centre of its stops", required=True),
        _c("lon", "float", "deg", "centre of its stops", required=True),
        _c("radius_m", "float", "m", "largest distance of a stop centre from it", required=True),
        _c("n_stops", "int", "", "stops at the place", required=True),
        _c("n_subjects", "int", "", "subjects that stopped there", required=True),
        _c("subjects", "str", "", "those subjects joined by '|'", required=True),
        _c("n_days", "int", "", "distinct UTC days with a stop there"),
        _c("first_arrival", "time", "UTC", "earliest arrival"),
        _c("last_departure", "time", "UTC", "latest departure"),
        _c("total_dwell", "timedelta", "", "sum of the stops' dwell"),
        _c("stop_ids", "str", "", "the stops joined by '|'", required=True),
    ),
    "portal_comparison": (
        _c("status", "str", "", "agree, portal only, routetrace only, ...", required=True),
        _c("subject_id", "str", "", "subject", required=True),
        _c("portal_place_id", "str", "", "the portal's stop (a place of kind portal_stop)"),
        _c("stop_id", "str", "", "routetrace's matching stop"),
        _c("portal_start", "time", "UTC", "the portal's stop start"),
        _c("portal_end", "time", "UTC", "the portal's stop end"),
        _c("t_arrival", "time", "UTC", "routetrace's arrival"),
        _c("t_departure", "time", "UTC", "routetrace's departure"),
        _c("arrival_diff", "timedelta", "", "routetrace minus portal"),
        _c("departure_diff", "timedelta", "", "routetrace minus portal"),
        _c("distance_m", "float", "m", "between the two stops' positions"),
    ),
    "copresence_pairs": (
        _c("subject_a", "str", "", "first subject (subject_a < subject_b)", required=True),
        _c("subject_b", "str", "", "second subject", required=True),
        _c("fix_a", "str", "", "fix of subject_a", required=True),
        _c("fix_b", "str", "", "fix of subject_b", required=True),
        _c("t_a", "time", "UTC", "time of fix_a", required=True),
        _c("t_b", "time", "UTC", "time of fix_b", required=True),
        _c("dt", "timedelta", "", "|t_a - t_b|", required=True),
        _c("distance_m", "float", "m", "great-circle distance between the fixes", required=True),
        _c("h_acc_a", "float", "m", "accuracy of fix_a"),
        _c("h_acc_b", "float", "m", "accuracy of fix_b"),
        _c("lat_a", "float", "deg", "position of fix_a"),
        _c("lon_a", "float", "deg", "position of fix_a"),
        _c("lat_b", "float", "deg", "position of fix_b"),
        _c("lon_b", "float", "deg", "position of fix_b"),
        _c("firm", "bool", "", "within radius_m even at the accuracies' worst", required=True),
    ),
    "meetings": (
        _c("meeting_id", "str", "", "id of the meeting (M0001...)", required=True),
        _c("subject_a", "str", "", "first subject", required=True),
        _c("subject_b", "str", "", "second subject", required=True),
        _c("t_start", "time", "UTC", "first co-present pair", required=True),
        _c("t_end", "time", "UTC", "last co-present pair", required=True),
        _c("duration", "timedelta", "", "t_end - t_start", required=True),
        _c("n_pairs", "int", "", "co-present fix pairs", required=True),
        _c("n_firm", "int", "", "of which firm", required=True),
        _c("min_distance_m", "float", "m", "closest pair", required=True),
        _c("lat", "float", "deg", "where (mean of the pairs)"),
        _c("lon", "float", "deg", "where (mean of the pairs)"),
        _c("fix_ids", "str", "", "the fixes joined by '|'", required=True),
    ),
    "geofences": (
        _c("name", "str", "", "the geofence's name", required=True),
        _c("source", "str", "", "where it came from (file, OSM extract, stops)", required=True),
        _c("wkt", "str", "", "the WGS84 polygon as WKT", required=True),
    ),
    "carpark_visits": (
        _c("visit_id", "str", "", "id of the visit (V00001...)", required=True),
        _c("subject_id", "str", "", "subject", required=True),
        _c("geofence", "str", "", "the car park", required=True),
        _c("t_entry", "time", "UTC", "first fix inside", required=True),
        _c("t_exit", "time", "UTC", "last fix inside", required=True),
        _c("t_before", "time", "UTC", "last fix outside before (the entry lies between)"),
        _c("t_after", "time", "UTC", "first fix outside after (the exit lies between)"),
        _c("dwell", "timedelta", "", "t_exit - t_entry", required=True),
        _c("dwell_observed", "timedelta", "", "dwell minus unobserved time", required=True),
        _c("unobserved", "timedelta", "", "silences longer than max_gap inside the visit",
           required=True),
        _c("n_fixes", "int", "", "fixes of the visit", required=True),
        _c("n_inside", "int", "", "fixes inside with their whole accuracy circle"),
        _c("n_uncertain", "int", "", "fixes whose accuracy circle crosses the boundary"),
        _c("uncertain", "bool", "", "made only of uncertain fixes"),
        _c("ignition_on", "int", "", "ignition-on events during the visit"),
        _c("ignition_off", "int", "", "ignition-off events during the visit"),
        _c("door_open", "int", "", "door-open events during the visit"),
        _c("door_close", "int", "", "door-close events during the visit"),
        _c("event_ids", "str", "", "those events joined by '|'"),
        _c("fix_ids", "str", "", "the fixes joined by '|'", required=True),
        _c("others_present", "str", "", "subjects with an overlapping visit there"),
        _c("local_tz", "str", "", "IANA zone of the car park"),
        _c("night", "bool", "", "a door opened at night (local time)"),
        _c("pass_through", "bool", "", "shorter than the shortest stop"),
    ),
    "carpark_hour_of_week": (
        _c("geofence", "str", "", "the car park", required=True),
        _c("weekday", "int", "", "0 = Monday, local time", required=True),
        _c("hour", "int", "", "0..23, local time", required=True),
        _c("visits", "int", "", "visits starting then", required=True),
    ),
    "carpark_recurring": (
        _c("geofence", "str", "", "the car park", required=True),
        _c("subject_id", "str", "", "subject", required=True),
        _c("visits", "int", "", "visits", required=True),
        _c("days", "int", "", "distinct local days with a visit", required=True),
    ),
    "carpark_unusual_dwell": (
        _c("visit_id", "str", "", "the visit (see carpark_visits)", required=True),
        _c("subject_id", "str", "", "subject", required=True),
        _c("geofence", "str", "", "the car park", required=True),
        _c("dwell_z", "float", "", "z-score of the dwell among the car park's visits",
           required=True),
    ),
    "corroboration": (
        _c("corroboration_id", "str", "", "<statement_id>|<subject_id>", required=True),
        _c("statement_id", "str", "", "the statement tested", required=True),
        _c("subject_id", "str", "", "the subject it is tested against", required=True),
        _c("verdict", "str", "", "supported, contradicted, not observed or inconclusive",
           required=True),
        _c("reason", "str", "", "why, in words", required=True),
        _c("window_start", "time", "UTC", "start of the time the statement covers"),
        _c("window_end", "time", "UTC", "end of the time the statement covers"),
        _c("nearest_m", "float", "m", "nearest evidence to the place"),
        _c("nearest_time_diff", "timedelta", "", "time from the window to that evidence"),
    ),
    "corroboration_evidence": (
        _c("corroboration_id", "str", "", "the verdict it supports or contradicts", required=True),
        _c("evidence_kind", "str", "", "stop, fix, gap, ...", required=True),
        _c("evidence_id", "str", "", "the stop, fix or gap", required=True),
        _c("role", "str", "", "supporting, contradicting, ...", required=True),
        _c("t_start", "time", "UTC", "start of the evidence"),
        _c("t_end", "time", "UTC", "end of the evidence"),
        _c("distance_m", "float", "m", "from the place"),
    ),
    "corroboration_sequence": (
        _c("person_id", "str", "", "the person whose statements are in sequence", required=True),
        _c("subject_id", "str", "", "subject", required=True),
        _c("check", "str", "", "order, before, after", required=True),
        _c("statement_id", "str", "", "statement", required=True),
        _c("status", "str", "", "visited, not visited, ...", required=True),
        _c("consistent", "bool", "", "the order holds (NA: unknown)"),
        _c("reason", "str", "", "why, in words", required=True),
    ),
})

TABLES.update({
    "chronology": (
        _c("subject_id", "str", "", "subject", required=True),
        _c("seq", "int", "", "order of the row within the subject's chronology", required=True),
        _c("kind", "str", "", "stop, trip or gap", required=True),
        _c("ref_id", "str", "", "the stop, trip or gap it describes", required=True),
        _c("t_start_utc", "time", "UTC", "start", required=True),
        _c("t_end_utc", "time", "UTC", "end", required=True),
        _c("local_start", "str", "", "start in the place's local time with its UTC offset"),
        _c("local_end", "str", "", "end in the place's local time with its UTC offset"),
        _c("tz_start", "str", "", "IANA zone at the start"),
        _c("tz_end", "str", "", "IANA zone at the end"),
        _c("duration", "timedelta", "", "end - start"),
        _c("dwell", "timedelta", "", "observed dwell of a stop"),
        _c("lat", "float", "deg", "position (stop centre; NA for trips and gaps)"),
        _c("lon", "float", "deg", "position (stop centre; NA for trips and gaps)"),
        _c("flags", "str", "", "flags", required=True),
    ),
    "teltonika_records": (
        _c("source_id", "str", "", "the capture file (dictionary-encoded)", required=True),
        _c("record", "str", "", "offset N/rec K in the capture", required=True),
        _c("imei", "str", "", "tracker IMEI"),
        _c("t_utc", "time", "UTC", "record time"),
        _c("codec", "str", "", "Teltonika codec (8, 8E, 16, 7, ...)"),
        _c("lat", "float", "deg", "GPS position as sent"),
        _c("lon", "float", "deg", "GPS position as sent"),
        _c("has_fix", "bool", "", "the record carries a valid GPS fix"),
    ),
    # lean: ~10 rows per record, so nothing per row that the record already holds (time,
    # subject, IMEI: join teltonika_records on source_id and record)
    "teltonika_io": (
        _c("source_id", "str", "", "the capture file (dictionary-encoded)", required=True),
        _c("record", "str", "", "the record the IO element belongs to; with source_id it "
           "resolves to one teltonika_records row (time, subject, IMEI; dictionary-encoded: "
           "in a load result the code is that row's position)", required=True),
        _c("io_id", "int", "", "Teltonika AVL IO id (uint16)"),
        _c("name", "str", "", "its name in the model's IO map (dictionary-encoded)"),
        _c("width", "int", "bytes", "width of the value as sent (uint16)"),
        _c("raw", "int", "", "the value as sent (missing for a byte string: see hex)"),
        _c("value", "float", "", "in its unit"),
        _c("unit", "str", "", "the unit (dictionary-encoded)"),
        _c("hex", "str", "", "a variable-length value's bytes as hex (dictionary-encoded)"),
    ),
    # side tables of loaders (LoadResult.extra_tables), stored by ingest under these names
    "wifi_scans": (
        _c("source_id", "str", "", "the Google Timeline export file", required=True),
        _c("record", "str", "", "the rawSignals element (rawSignals[j]); one row per access "
           "point it saw", required=True),
        _c("t_utc", "time", "UTC", "time of the scan (deliveryTime)", required=True),
        _c("mac", "str", "", "access point MAC address, aa:bb:cc:dd:ee:ff"),
        _c("rssi", "float", "dBm", "received signal strength (rawRssi)"),
        _c("unusable_parts", "str", "", "other parts of the element that could not be used, "
           "with the reason (JSON)"),
    ),
    "cache_positions": (
        _c("source_id", "str", "", "the consolidated.db file", required=True),
        _c("record", "str", "", "<Table>/rowid=<n>", required=True),
        _c("table", "str", "", "the cache table (WifiLocation, CellLocation, ...)", required=True),
        _c("key", "str", "", "the access point or cell it locates (MAC; MCC, MNC, LAC, CI, ...) "
           "as JSON", required=True),
        _c("t_utc", "time", "UTC", "Timestamp of the cache row: when Apple's batch was "
           "downloaded, not a time the device was there", required=True),
        _c("lat", "float", "deg", "position of the access point or cell, not of the device",
           required=True),
        _c("lon", "float", "deg", "position of the access point or cell, not of the device",
           required=True),
        _c("h_acc_m", "float", "m", "accuracy of that position"),
        _c("confidence", "float", "", "Apple's Confidence value of the row"),
        _c("flags", "str", "", "flags (always cache_not_device)", required=True),
    ),
})

#: Stored tables that are another kind's table under another name.
STORED_AS: dict[str, str] = {"places_merged": "places", "statements": "places"}


def kind_of(name: str) -> str | None:
    """The declared kind of a table stored as ``name``, or None for an undeclared one.

    Parameters
    ----------
    name : str
        The name a table is stored under in a case (``fixes``, ``statements``, ...).

    Returns
    -------
    str or None
        The declared kind it is validated against, or None when undeclared.

    Example
    -------
    >>> kind_of("statements"), kind_of("meetings"), kind_of("nonesuch")
    ('places', 'meetings', None)
    """
    kind = STORED_AS.get(name, name)
    return kind if kind in TABLES else None


#: The flag vocabulary: token -> meaning. Loaders and stages use only these tokens.
FLAGS: dict[str, str] = {
    "sentinel_na": "a sentinel value of the source (-1, -180, 'unset') was read as missing",
    "zero_position": "the source gave 0,0, a placeholder for 'no position'; not plotted",
    "no_fix": "the device reported no satellite fix for this record",
    "low_accuracy": "horizontal accuracy worse than 1 km: evidence of an area, not a point",
    "hint": "a low-grade location hint (e.g. routined ZRTHINTMO), not a measured fix",
    "cache_not_device": "position of a Wi-Fi AP or cell from a downloaded cache, not the device",
    "time_precision_reduced": "the source gives the time only to the day, month or year",
    "clock_offset": "the device clock disagrees with GPS time; see `extra`",
    "tz_disagreement": "the stated and inferred UTC offsets of the record disagree",
    "inconsistent_value": "the record contradicts itself or its neighbours in the same file",
    "trashed": "the item was in the device's trash / recently deleted",
    "impossible_speed": "reaching this fix needs a speed above the stage's limit",
    "accuracy_outlier": "accuracy far worse than the subject's typical fixes around it",
    "duplicate_time": "another fix of the subject has the same time",
    "duplicate_merged": "identical copies of this record in several sources were merged",
    "source_conflict": "another source places the subject far away at the same time",
    "spans_gap": "the stop or trip contains an unobserved interval",
    "portal_stop": "a stop computed by a fleet portal, not by routetrace",
    "derived": "computed by routetrace from other rows, not recorded by the source",
    "bounded_by_ignition": "start or end set by a vehicle ignition event",
    "time_from_gps": "time taken from the GPS clock, not the device clock",
    "no_time": "the source gives no time for this point; never given an invented one",
    "damaged_frame": "the record parsed whole from a message that failed its CRC or length "
                     "check (kept by option; see the loader's docs)",
    "gps_week_rollover_suspect": ("the receiver's date may be 1024 weeks (7168 days) early (GPS "
                                  "week-number rollover); kept as logged, the date 1024 weeks "
                                  "later and the rule that fired are in `extra`"),
}


def columns(kind: str) -> tuple[Column, ...]:
    """Return the declared columns of table ``kind`` (``fixes``, ``events``, ...).

    Parameters
    ----------
    kind : str
        A declared table kind.

    Returns
    -------
    tuple of Column
        The columns in declared order (name, kind, unit, required, meaning).

    Raises
    ------
    SchemaError
        For an unknown kind, listing the known ones.

    Example
    -------
    >>> [c.name for c in columns("fixes")][:4]
    ['subject_id', 't_utc', 'lat', 'lon']
    """
    try:
        return TABLES[kind]
    except KeyError:
        raise SchemaError(f"unknown table kind {kind!r}; known: {', '.join(TABLES)}") from None


def _dictionary_dtype(categories: Iterable[str] = ()) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(list(categories), dtype="string"))


def _is_dictionary(kind: str, name: str) -> bool:
    return name in DICTIONARY.get(kind, ())


@functools.cache
def _empty_template(kind: str) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series([], dtype=_dictionary_dtype() if _is_dictionary(kind, c.name)
                                           else DTYPES[c.kind]) for c in columns(kind)})


def repeat(value: str | None, n: int, index: pd.Index | None = None) -> pd.Series:
    """A dictionary-encoded text column holding ``value`` on each of ``n`` rows (NA for None).

    The text is stored once; each row costs one byte (no Python object per row).

    Parameters
    ----------
    value : str or None
        The text of every row (None: every row NA).
    n : int
        Rows.
    index : pandas.Index, optional
        The index of the Series (default ``0..n-1``).

    Returns
    -------
    pandas.Series
        A categorical Series of ``string`` categories (:data:`DICTIONARY`'s form).

    Example
    -------
    >>> s = repeat("0" * 64, 3)
    >>> s.tolist(), s.memory_usage(index=False) < 200
    (['0000000000000000000000000000000000000000000000000000000000000000', '0000000000000000000000000000000000000000000000000000000000000000', '0000000000000000000000000000000000000000000000000000000000000000'], True)
    """
    cats = [] if value is None or value is pd.NA else [str(value)]
    codes = np.full(n, 0 if cats else -1, dtype=np.int8)
    cat = pd.Categorical.from_codes(codes, dtype=_dictionary_dtype(cats))
    return pd.Series(cat, index=index, copy=False)


def _all_nan(n: int, index: pd.Index) -> pd.Series:
    """An optional float column the source does not have: every row NaN, held as one value
    (a read-only zero-stride view; copy-on-write copies it if a row is ever set), so the
    five absent measurement columns of a 1e6-row fixes table cost nothing, not 40 MB."""
    return pd.Series(np.broadcast_to(np.float64(np.nan), (n,)), index=index, copy=False)


def _missing(fill: object, n: int, index: pd.Index, dtype: str) -> pd.Series:
    """A column of ``n`` missing values (``fill``): an all-NA text column built in Arrow (no
    Python object per row; a 1e6-row list took ~0.1 s), others from a repeated value."""
    if fill is pd.NA and dtype == "string":
        arr = pd.StringDtype("pyarrow").__from_arrow__(pa.nulls(n, pa.large_string()))
        return pd.Series(arr, index=index, copy=False)
    return pd.Series([fill] * n, index=index, dtype=dtype)


def as_dictionary(s: pd.Series, *, fill: str | None = None) -> pd.Series:
    """``s`` (text, plain or dictionary-encoded) in the dictionary form of :data:`DICTIONARY`.

    Categories are few: checking and ordering them costs nothing; plain text is encoded
    once (a hash of each value, no Python object per row).

    Parameters
    ----------
    s : pandas.Series
        Text, plain (``string``, ``str``, object) or categorical.
    fill : str, optional
        Text for the missing values (default: they stay NA).

    Returns
    -------
    pandas.Series
        A categorical Series with ``string`` categories in lexical order.

    Example
    -------
    >>> d = as_dictionary(pd.Series(["gps", None, "cell", "gps"]), fill="unknown")
    >>> d.tolist(), d.cat.categories.tolist()
    (['gps', 'unknown', 'cell', 'gps'], ['cell', 'gps', 'unknown'])
    """
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("string").astype("category")
    cats = s.cat.categories
    if cats.dtype != "string":
        s = s.cat.rename_categories(cats.astype("string"))
        cats = s.cat.categories
    if not cats.is_monotonic_increasing:
        s = s.cat.reorder_categories(cats.sort_values())
    if fill is not None and s.hasnans:
        if fill not in s.cat.categories:
            s = s.cat.add_categories([fill])
            if not s.cat.categories.is_monotonic_increasing:
                s = s.cat.reorder_categories(s.cat.categories.sort_values())
        s = s.fillna(fill)
    return s


def empty(kind: str) -> pd.DataFrame:
    """Return an empty table of ``kind`` with every declared column and dtype (a new frame
    each call: a copy of one built once per kind, since building it costs ~2 ms).

    Parameters
    ----------
    kind : str
        A declared table kind.

    Returns
    -------
    pandas.DataFrame
        Zero rows, every declared column with its dtype.

    Example
    -------
    >>> t = empty("fixes")
    >>> len(t), str(t["t_utc"].dtype)
    (0, 'datetime64[ns, UTC]')
    """
    return _empty_template(kind).copy(deep=True)


def _to_utc(series: pd.Series, name: str, kind: str) -> pd.Series:
    if series.dtype == DTYPES["time"]:
        return series  # already UTC nanoseconds (copy-on-write: no copy of 8 bytes per row)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype(DTYPES["time"])
    if pd.api.types.is_datetime64_dtype(series.dtype):
        raise SchemaError(f"{kind}.{name}: naive times are not accepted; localise them to UTC "
                          "with the source's stated time basis first")
    if series.isna().all():
        return pd.Series(pd.NaT, index=series.index, dtype=DTYPES["time"])
    raise SchemaError(f"{kind}.{name}: expected datetime64[ns, UTC], got {series.dtype}")


def coerce(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Return a copy of ``df`` with every declared column present, in order, with its dtype.

    Missing optional columns are added as NA (``flags`` as ``""``); extra columns are kept
    after the declared ones, except a derived id (:data:`DERIVED_IDS`: ``fix_id``,
    ``event_id``), which is dropped: :func:`row_ids` gives it from the provenance. Raises :class:`SchemaError` naming the column when a required
    column is missing or a value cannot be converted (naive times included).

    Parameters
    ----------
    df : pandas.DataFrame
        The rows; not modified.
    kind : str
        The declared table kind to coerce to.

    Returns
    -------
    pandas.DataFrame
        A new frame of ``kind``.

    Example
    -------
    >>> g = coerce(pd.DataFrame({"subject_id": ["lorry"], "gap_id": ["lorry:gap0"],
    ...                          "t_start": pd.to_datetime(["2025-10-26T21:00Z"]),
    ...                          "t_end": pd.to_datetime(["2025-10-26T23:00Z"]),
    ...                          "duration": [pd.Timedelta("2h")]}), "gaps")
    >>> g["flags"].tolist(), str(g["t_start"].dtype)
    ([''], 'datetime64[ns, UTC]')
    """
    out: dict[str, pd.Series] = {}
    n = len(df)
    derived = DERIVED_IDS.get(kind)
    for col in columns(kind):
        if col.name not in df.columns:
            if col.required and col.name != "flags":
                raise SchemaError(f"{kind}: required column {col.name!r} is missing")
            fill: object = "" if col.name == "flags" else pd.NA
            if _is_dictionary(kind, col.name):
                out[col.name] = repeat("" if col.name == "flags" else None, n, df.index)
            elif col.kind == "float":
                out[col.name] = _all_nan(n, df.index)
            elif col.kind == "time":
                out[col.name] = pd.Series(pd.NaT, index=df.index, dtype=DTYPES["time"])
            elif col.kind == "timedelta":
                out[col.name] = pd.Series(pd.NaT, index=df.index, dtype=DTYPES["timedelta"])
            else:
                out[col.name] = _missing(fill, n, df.index, DTYPES[col.kind])
            continue
        s = df[col.name]
        try:
            if col.kind == "time":
                out[col.name] = _to_utc(s, col.name, kind)
            elif col.kind == "timedelta":
                out[col.name] = pd.to_timedelta(s).astype(DTYPES["timedelta"])
            elif col.kind == "float":
                out[col.name] = (s if s.dtype == np.float64  # no copy of a float64 column
                                 else pd.to_numeric(s, errors="raise").astype("float64"))
            elif _is_dictionary(kind, col.name):
                out[col.name] = as_dictionary(s, fill="" if col.name == "flags" else None)
            elif s.dtype == _RESOLVED[col.kind]:
                out[col.name] = s  # already the declared dtype (copy-on-write: no copy needed)
            else:
                out[col.name] = s.astype(DTYPES[col.kind])
        except SchemaError:
            raise
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{kind}.{col.name}: cannot convert to {DTYPES[col.kind]}: {exc}") from exc
    if "flags" in out and not _is_dictionary(kind, "flags"):
        out["flags"] = out["flags"].fillna("")
    declared = {c.name for c in columns(kind)}
    for name in df.columns:
        if name not in declared and name != derived:  # a stored id: derived, not kept
            out[name] = df[name]
    # copy=False: the columns are not stacked into new 2-D blocks (a 1e6-row fixes table
    # held them twice for a moment, ~60 MB); copy-on-write keeps the input unchanged
    result = pd.DataFrame(out, index=df.index, copy=False)
    result.attrs = dict(df.attrs)
    return result


def encode_dictionaries(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` with the :data:`DICTIONARY` columns of ``kind`` that it has in their dictionary
    form (other columns untouched; ``df`` itself when nothing changes).

    Parameters
    ----------
    df : pandas.DataFrame
        A table of ``kind``, e.g. one a stage returned with ``flags`` as plain text.
    kind : str
        Its declared kind.

    Returns
    -------
    pandas.DataFrame
        The same rows and values.

    Example
    -------
    >>> t = encode_dictionaries(pd.DataFrame({"source_id": ["a" * 64] * 2, "lat": [51.0, 51.1]}), "fixes")
    >>> str(t["source_id"].dtype), str(t["lat"].dtype)
    ('category', 'float64')
    """
    changed = {}
    for name in [c for c in df.columns if c in DICTIONARY.get(kind, ())]:
        col = df[name]
        enc = as_dictionary(col)
        if enc is not col:
            changed[name] = enc
    return df.assign(**changed) if changed else df


def concat(frames: Iterable[pd.DataFrame], kind: str) -> pd.DataFrame:
    """Concatenate tables of one declared ``kind`` (empty ones ignored), coerced to it.

    The dictionary columns (:data:`DICTIONARY`) of the parts are given the union of their
    categories first, so the result keeps the dictionary form without turning every row
    into text (``pandas.concat`` alone makes plain text of categoricals that differ).

    Parameters
    ----------
    frames : iterable of pandas.DataFrame
        Parts of one table (e.g. the fixes of several sources).
    kind : str
        Their declared kind.

    Returns
    -------
    pandas.DataFrame
        The rows of every part, index ``0..n-1`` (an empty table of ``kind`` when no part
        has rows).

    Example
    -------
    >>> a = coerce(pd.DataFrame({"source_id": ["a" * 64], "record": ["1"], "reason": ["x"]}), "rejects")
    >>> b = coerce(pd.DataFrame({"source_id": ["b" * 64], "record": ["1"], "reason": ["y"]}), "rejects")
    >>> t = concat([a, b], "rejects")
    >>> str(t["source_id"].dtype), t["reason"].tolist()
    ('category', ['x', 'y'])
    """
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty(kind)
    if len(parts) > 1:
        parts = union_dictionaries(parts, DICTIONARY.get(kind, ()))
    return coerce(pd.concat(parts, ignore_index=True), kind)


def union_dictionaries(parts: Sequence[pd.DataFrame], names: Iterable[str]) -> list[pd.DataFrame]:
    """``parts`` with each text column of ``names`` (one all of them hold) in the dictionary
    form of :data:`DICTIONARY`, over the union of their categories: ``pandas.concat`` of
    the result keeps that form (it makes plain text of categoricals that differ). Each
    part's column is encoded once (no-op if it is in that form already); rows are never
    turned into text.

    Parameters
    ----------
    parts : sequence of pandas.DataFrame
        Parts of one table.
    names : iterable of str
        The columns to encode (those not in every part are left as they are).

    Returns
    -------
    list of pandas.DataFrame
        The parts, those columns replaced.

    Example
    -------
    >>> a = pd.DataFrame({"kind": ["door_open", "door_open"]})
    >>> b = pd.DataFrame({"kind": pd.Categorical(["alarm"])})
    >>> t = pd.concat(union_dictionaries([a, b], ["kind"]), ignore_index=True)
    >>> t["kind"].tolist(), t["kind"].cat.categories.tolist()
    (['door_open', 'door_open', 'alarm'], ['alarm', 'door_open'])
    """
    out = list(parts)
    for name in sorted(names):
        if not out or not all(name in f.columns for f in out):
            continue
        cols = [as_dictionary(f[name]) for f in out]
        cats = functools.reduce(lambda a, b: a.union(b), (c.cat.categories for c in cols))
        cats = cats.sort_values()
        out = [f.assign(**{name: c.cat.set_categories(cats)}) for f, c in zip(out, cols, strict=True)]
    return out


def _arrow_text(s: pd.Series, *, head: int | None = None) -> pa.Array | pa.ChunkedArray:
    """A text column as Arrow ``large_string`` (its first ``head`` characters when given);
    a dictionary column is taken from its categories, each cut once, with no Python string
    per row."""
    def cut(a: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        return a if head is None else pc.utf8_slice_codeunits(a, 0, head)

    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = cut(pa.array(s.cat.categories.astype(DTYPES["str"]).array).cast(pa.large_string()))
        codes = s.cat.codes.to_numpy()
        return cats.take(pa.array(codes, mask=codes < 0))
    return cut(pa.array(s.astype(DTYPES["str"]).array).cast(pa.large_string()))


def row_ids(df: pd.DataFrame, kind: str) -> pd.Series:
    """The ids of the rows of a ``fixes`` or ``events`` table, derived from their provenance.

    A fix's id is ``<source_id[:16]>:<record>``; an event's ``<source_id[:16]>:<record>:<kind>``
    (a record may hold several events), or ``<source_id[:16]>:<record>/<part>:<kind>`` for an
    event with a ``part`` (a record holding several events of one kind). They are not stored (:data:`DERIVED_IDS`); this
    builds them in one Arrow pass, the 16-character source prefix once per source.

    Parameters
    ----------
    df : pandas.DataFrame
        A ``fixes`` or ``events`` table (it needs ``source_id`` and ``record``; events also
        ``kind``).
    kind : str
        ``"fixes"`` or ``"events"``.

    Returns
    -------
    pandas.Series
        ``string`` dtype, named ``fix_id`` / ``event_id``, with ``df``'s index.

    Raises
    ------
    SchemaError
        For another kind, or a table without the provenance columns.

    Example
    -------
    >>> f = coerce(pd.DataFrame({"subject_id": ["lorry"] * 2, "t_utc": pd.to_datetime(
    ...     ["2025-10-26T21:00Z", "2025-10-26T21:01Z"]), "lat": 51.0, "lon": 3.87,
    ...     "fix_kind": "gps", "source_id": "ab" * 32, "record": ["line 2", "line 3"]}), "fixes")
    >>> row_ids(f, "fixes").tolist()
    ['abababababababab:line 2', 'abababababababab:line 3']
    """
    name = DERIVED_IDS.get(kind)
    if name is None:
        raise SchemaError(f"{kind}: no derived id (tables with one: {', '.join(DERIVED_IDS)})")
    parts = ["source_id", "record"] + (["kind"] if kind == "events" else [])
    missing = [c for c in parts if c not in df.columns]
    if missing:
        raise SchemaError(f"{kind}: the id is derived from {', '.join(parts)}; missing {', '.join(missing)}")
    if not len(df):
        return pd.Series([], index=df.index, dtype=DTYPES["str"], name=name)
    prefix = _arrow_text(df["source_id"], head=16)
    texts = [_arrow_text(df[c]) for c in parts[1:]]
    if kind == "events" and "part" in df.columns and df["part"].notna().any():
        texts[0] = pc.binary_join_element_wise(texts[0], _arrow_text(df["part"]),
                                               pa.scalar("/", pa.large_string()), null_handling="skip")
    joined = pc.binary_join_element_wise(prefix, *texts, pa.scalar(":", pa.large_string()))
    return pd.Series(_RESOLVED["str"].__from_arrow__(joined), index=df.index, name=name)


def fix_ids(fixes: pd.DataFrame) -> pd.Series:
    """The ``fix_id`` of each row of a ``fixes`` table: ``<source_id[:16]>:<record>``.

    Parameters
    ----------
    fixes : pandas.DataFrame
        A ``fixes`` table.

    Returns
    -------
    pandas.Series
        ``string``, named ``fix_id``, with the table's index (see :func:`row_ids`).

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> fix_ids(make_fixes(t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87)).tolist()
    ['0000000000000000:0']
    """
    return row_ids(fixes, "fixes")


def event_ids(events: pd.DataFrame) -> pd.Series:
    """The ``event_id`` of each row of an ``events`` table: ``<source_id[:16]>:<record>:<kind>``.

    Parameters
    ----------
    events : pandas.DataFrame
        An ``events`` table.

    Returns
    -------
    pandas.Series
        ``string``, named ``event_id``, with the table's index (see :func:`row_ids`).

    Example
    -------
    >>> ev = coerce(pd.DataFrame({"subject_id": ["lorry"], "t_utc": pd.to_datetime(["2025-10-26T21:00Z"]),
    ...                           "kind": ["door_open"], "source_id": "ab" * 32, "record": ["line 2/rec 0"]}),
    ...             "events")
    >>> event_ids(ev).tolist()
    ['abababababababab:line 2/rec 0:door_open']
    """
    return row_ids(events, "events")


def with_ids(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` with its derived id as the first column, for a table that has one
    (:data:`DERIVED_IDS`); ``df`` itself for other kinds. For exports and displays, where a
    reader resolves a ``fix_id`` cited by another table.

    Parameters
    ----------
    df : pandas.DataFrame
        A table of ``kind``; not modified.
    kind : str
        Its declared kind.

    Returns
    -------
    pandas.DataFrame
        A new frame with ``fix_id`` / ``event_id`` first, or ``df``.

    Example
    -------
    >>> from routetrace.testing import make_fixes
    >>> list(with_ids(make_fixes(t_utc=["2025-10-26T21:00Z"], lat=51.0, lon=3.87), "fixes").columns[:2])
    ['fix_id', 'subject_id']
    """
    name = DERIVED_IDS.get(kind)
    if name is None:
        return df
    ids = row_ids(df, kind)
    out = df.drop(columns=[name]) if name in df.columns else df.copy(deep=False)
    out.insert(0, name, ids)
    return out


def _kind_ok(series: pd.Series, kind: Kind) -> bool:
    dt = series.dtype
    if kind == "time":
        return isinstance(dt, pd.DatetimeTZDtype) and str(dt.tz) == "UTC"
    if kind == "timedelta":
        return pd.api.types.is_timedelta64_dtype(dt)
    if kind == "float":
        return pd.api.types.is_float_dtype(dt)
    if kind == "int":
        return pd.api.types.is_integer_dtype(dt)
    if kind == "bool":
        return pd.api.types.is_bool_dtype(dt)
    if isinstance(dt, pd.CategoricalDtype):  # dictionary-encoded text (a repetitive column)
        return bool(pd.api.types.is_string_dtype(dt.categories.dtype)
                    or pd.api.types.is_object_dtype(dt.categories.dtype))
    return pd.api.types.is_string_dtype(dt) or (pd.api.types.is_object_dtype(dt) and bool(series.isna().all()))


def validate(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Check ``df`` against the declaration of ``kind`` and return it unchanged.

    Raises
    ------
    SchemaError
        Naming the first column that is missing or of the wrong dtype, or a required
        column holding missing values where none are allowed (ids, times, positions).

    Parameters
    ----------
    df : pandas.DataFrame
        The table to check.
    kind : str
        The declared table kind.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself, unchanged (so a call can be chained).

    Example
    -------
    >>> validate(empty("stops"), "stops").empty
    True
    >>> validate(pd.DataFrame({"lat": [51.0]}), "fixes")
    Traceback (most recent call last):
    ...
    routetrace.errors.SchemaError: ...
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{kind}: expected a pandas DataFrame, got {type(df).__name__}")
    for col in columns(kind):
        if col.name not in df.columns:
            if col.required:
                raise SchemaError(f"{kind}: required column {col.name!r} is missing")
            continue
        s = df[col.name]
        if col.kind == "time" and pd.api.types.is_datetime64_dtype(s.dtype) and not isinstance(
            s.dtype, pd.DatetimeTZDtype
        ):
            raise SchemaError(f"{kind}.{col.name}: naive times are not accepted (store UTC)")
        if not _kind_ok(s, col.kind):
            raise SchemaError(f"{kind}.{col.name}: expected {DTYPES[col.kind]}, got {s.dtype}")
        if col.required and col.name not in ("flags",) and s.isna().any():
            bad = s.index[s.isna()][0]
            raise SchemaError(f"{kind}.{col.name}: missing value at row {bad!r} (required column)")
    if kind in ("fixes", "places", "events") and len(df):
        lat, lon = df["lat"].to_numpy(dtype=float), df["lon"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad_lat = (np.abs(lat) > 90) & ~np.isnan(lat)
            bad_lon = (np.abs(lon) > 180) & ~np.isnan(lon)
        if bad_lat.any():
            raise SchemaError(f"{kind}.lat: value out of [-90, 90] at row {df.index[bad_lat][0]!r}")
        if bad_lon.any():
            raise SchemaError(f"{kind}.lon: value out of [-180, 180] at row {df.index[bad_lon][0]!r}")
    return df


def add_flag(flags: pd.Series, mask: Iterable[bool] | pd.Series | np.ndarray, flag: str) -> pd.Series:
    """Return ``flags`` with ``flag`` added where ``mask`` is true (sorted, no duplicates).

    Parameters
    ----------
    flags : pandas.Series
        A ``flags`` column (``|``-joined flag names, ``""`` for none).
    mask : array-like of bool
        Which rows get the flag (same length as ``flags``).
    flag : str
        A flag declared in :data:`FLAGS`.

    Returns
    -------
    pandas.Series
        A new string Series; ``flags`` is not modified.

    Raises
    ------
    SchemaError
        For a flag not declared in :data:`FLAGS`.

    Example
    -------
    >>> s = pd.Series(["", "hint"], dtype="string")
    >>> add_flag(s, [True, True], "low_accuracy").tolist()
    ['low_accuracy', 'hint|low_accuracy']
    """
    if flag not in FLAGS:
        raise SchemaError(f"unknown flag {flag!r}; declare it in schema.FLAGS")
    m = np.asarray(mask, dtype=bool)
    out = flags.astype("string").fillna("").copy()
    if not m.any():
        return out
    sel = out[m]
    out.loc[m] = [
        "|".join(sorted(set(filter(None, v.split("|"))) | {flag})) for v in sel.tolist()
    ]
    return out


def drop_flag(flags: pd.Series, mask: Iterable[bool] | pd.Series | np.ndarray, flag: str) -> pd.Series:
    """Return ``flags`` with ``flag`` taken off where ``mask`` is true (other flags kept).

    >>> s = pd.Series(["duplicate_time|hint", "duplicate_time"], dtype="string")
    >>> drop_flag(s, [True, False], "duplicate_time").tolist()
    ['hint', 'duplicate_time']
    """
    if flag not in FLAGS:
        raise SchemaError(f"unknown flag {flag!r}; declare it in schema.FLAGS")
    m = np.asarray(mask, dtype=bool)
    out = flags.astype("string").fillna("").copy()
    if not m.any():
        return out
    out.loc[m] = ["|".join(t for t in v.split("|") if t and t != flag) for v in out[m].tolist()]
    return out


def has_flag(flags: pd.Series, flag: str) -> pd.Series:
    """Return a boolean Series: which rows carry ``flag``.

    Parameters
    ----------
    flags : pandas.Series
        A ``flags`` column.
    flag : str
        The flag name to look for (whole names only: ``low`` does not match
        ``low_accuracy``).

    Returns
    -------
    pandas.Series
        Booleans, one per row.

    Example
    -------
    >>> has_flag(pd.Series(["", "hint|low_accuracy"], dtype="string"), "low_accuracy").tolist()
    [False, True]
    """
    padded = "|" + flags.astype("string").fillna("") + "|"
    return padded.str.contains(f"|{flag}|", regex=False).astype(bool)


def from_records(rows: Iterable[Mapping[str, object]], kind: str) -> pd.DataFrame:
    """Build a table of ``kind`` from dict rows (small inputs; vectorise large ones)."""
    rows = list(rows)
    if not rows:
        return empty(kind)
    return coerce(pd.DataFrame.from_records(rows), kind)
