"""Case-level jobs: what the ``routetrace`` command and a notebook user run on a case folder.

Each job reads a case (:mod:`routetrace.case`), calls pure stages (:mod:`routetrace.routes`),
loaders (:mod:`routetrace.loaders`) or renderers (:mod:`routetrace.maps`), and stores the
results back in the case. The layers below never open a case themselves.

========================  ==========================================================
:mod:`.ingest`            ``ingest``: evidence files, folders and archives into a case
:mod:`.analysis`          ``run_chronology``, ``run_copresence``, ``run_carparks``
:mod:`.corroborate`       ``corroborate_case``: statements against the evidence
:mod:`.export`            ``export_case``: tables as CSV, GeoJSON, GeoPackage
:mod:`.verify`            ``verify_case``: re-hash every source and output
:mod:`.demo`              ``run_demo``: the whole job on the bundled sample case
========================  ==========================================================

Example
-------
>>> from routetrace.app.ingest import ingest  # doctest: +SKIP
>>> from routetrace.app.analysis import run_chronology  # doctest: +SKIP
>>> ingest("case-42", ["phone.gpx"], subject_id="phone-A")  # doctest: +SKIP
>>> run_chronology("case-42")  # doctest: +SKIP
"""
