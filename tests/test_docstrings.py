"""Every public function of the documented modules has numpydoc Parameters/Returns and an example.

A public function is a name in the module's ``__all__`` defined in that module (re-exports
are checked where they are defined). Every module of the package that has public functions
is in ``DOCUMENTED`` or, while it is being completed (issue #16, item 5), in ``STILL_TO_DO``;
a new module is in neither until it is documented, and the walk over the package says so.
The examples themselves are run by ``test_doctests.py``.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil

import pytest

import routetrace

DOCUMENTED = [
    "routetrace.app.analysis",
    "routetrace.app.corroborate",
    "routetrace.app.demo",
    "routetrace.app.export",
    "routetrace.app.ingest",
    "routetrace.app.progress",
    "routetrace.app.remove",
    "routetrace.app.subjects",
    "routetrace.app.verify",
    "routetrace.case",
    "routetrace.cli",
    "routetrace.codehash",
    "routetrace.csvout",
    "routetrace.display",
    "routetrace.evidence",
    "routetrace.extras",
    "routetrace.fuzzing",
    "routetrace.geodesy",
    "routetrace.loaders",
    "routetrace.loaders.base",
    "routetrace.loaders.chat",
    "routetrace.loaders.csv",
    "routetrace.loaders.exif",
    "routetrace.loaders.fit",
    "routetrace.loaders.geo_links",
    "routetrace.loaders.geofences",
    "routetrace.loaders.google_common",
    "routetrace.loaders.gpx",
    "routetrace.loaders.igc",
    "routetrace.loaders.ios_consolidated",
    "routetrace.loaders.ios_discovery",
    "routetrace.loaders.ios_knowledgec",
    "routetrace.loaders.ios_photos",
    "routetrace.loaders.ios_routined",
    "routetrace.loaders.kml",
    "routetrace.loaders.nmea",
    "routetrace.loaders.portal",
    "routetrace.loaders.statements",
    "routetrace.loaders.takeout_discovery",
    "routetrace.loaders.takeout_records",
    "routetrace.loaders.takeout_semantic",
    "routetrace.loaders.tcx",
    "routetrace.loaders.teltonika",
    "routetrace.loaders.teltonika_codec",
    "routetrace.loaders.teltonika_events",
    "routetrace.loaders.teltonika_tables",
    "routetrace.loaders.timeline_device",
    "routetrace.loaders.xmlsafe",
    "routetrace.localtime",
    "routetrace.maps.basemap",
    "routetrace.maps.chronology",
    "routetrace.maps.exhibit",
    "routetrace.maps.exports",
    "routetrace.maps.footer",
    "routetrace.maps.gazetteer",
    "routetrace.maps.layout",
    "routetrace.maps.patterns",
    "routetrace.maps.selection",
    "routetrace.maps.static",
    "routetrace.maps.timeline",
    "routetrace.memory",
    "routetrace.routes.arrays",
    "routetrace.routes.carparks",
    "routetrace.routes.chronology",
    "routetrace.routes.clean",
    "routetrace.routes.copresence",
    "routetrace.routes.corroborate",
    "routetrace.routes.distributed",
    "routetrace.routes.geo",
    "routetrace.routes.merge",
    "routetrace.routes.order",
    "routetrace.routes.places",
    "routetrace.routes.stops",
    "routetrace.routes.trips",
    "routetrace.samples.demo_tables",
    "routetrace.samples.generate",
    "routetrace.samples.ios_db",
    "routetrace.samples.scenario",
    "routetrace.samples.simulate",
    "routetrace.samples.write_ios",
    "routetrace.samples.write_teltonika",
    "routetrace.schema",
    "routetrace.testing",
    "routetrace.timebase",
]

#: Modules with public functions whose docstrings are still being completed (#16, item 5):
#: none since every module joined DOCUMENTED; a new module goes into DOCUMENTED directly.
STILL_TO_DO: list[str] = []

#: Public functions whose examples are all ``# doctest: +SKIP`` (shown, never run), each
#: with its reason. Every other public function of DOCUMENTED has an example that runs.
EXAMPLES_NOT_RUN = {
    "routetrace.loaders.geofences.geofences_from_osm",  # needs osmium (extra 'osm') and a .pbf
}


def _package_modules() -> list[str]:
    """Every module of the package, as ``test_doctests.py`` walks it."""
    return sorted(m.name for m in pkgutil.walk_packages(routetrace.__path__, "routetrace.")
                  if ".tests" not in m.name and not m.name.startswith("routetrace.bench"))


def _public_functions(name: str) -> list[tuple[str, ast.FunctionDef]]:
    module = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(module))
    public = set(getattr(module, "__all__", ()))
    return [(node.name, node) for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name in public]


def _missing(node: ast.FunctionDef) -> list[str]:
    doc = ast.get_docstring(node) or ""
    a = node.args
    takes_args = bool(a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg)
    returns_none = isinstance(node.returns, ast.Constant) and node.returns.value is None
    missing = []
    if takes_args and "Parameters\n----------" not in doc:
        missing.append("Parameters")
    if not returns_none and "Returns\n-------" not in doc:
        missing.append("Returns")
    if ">>>" not in doc:
        missing.append("example (>>>)")
    return missing


def test_the_check_sees_a_missing_section() -> None:
    node = ast.parse('def f(x: int) -> int:\n    """Double.\n\n    >>> f(1)\n    2\n    """\n').body[0]
    assert isinstance(node, ast.FunctionDef)
    assert _missing(node) == ["Parameters", "Returns"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_functions_are_documented(name: str) -> None:
    functions = _public_functions(name)
    gaps = {fn: m for fn, node in functions if (m := _missing(node))}
    assert not gaps, f"{name}: public functions without numpydoc sections: {gaps}"


def test_every_module_with_public_functions_is_documented() -> None:
    """The walk over the package, not the hand list, decides what must be documented."""
    modules = _package_modules()
    assert "routetrace.case" in modules and "routetrace.loaders.gpx" in modules
    with_functions = [m for m in modules if _public_functions(m)]
    missing = sorted(set(with_functions) - set(DOCUMENTED) - set(STILL_TO_DO))
    assert not missing, f"modules with public functions in neither DOCUMENTED nor STILL_TO_DO: {missing}"


def test_the_module_lists_are_current() -> None:
    modules = set(_package_modules())
    assert DOCUMENTED == sorted(set(DOCUMENTED)) and STILL_TO_DO == sorted(set(STILL_TO_DO))
    assert not set(DOCUMENTED + STILL_TO_DO) - modules, "a listed module does not exist"
    both = sorted(set(DOCUMENTED) & set(STILL_TO_DO))
    assert not both, f"documented, so no longer to do (remove from STILL_TO_DO): {both}"
    no_functions = [m for m in STILL_TO_DO if not _public_functions(m)]
    assert not no_functions, f"no public functions (remove from STILL_TO_DO): {no_functions}"


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_documented_function_has_an_example_that_runs(name: str) -> None:
    """``test_doctests.py`` collects each public function's example (a decorator that hid
    the docstring from doctest would drop it) and runs at least one line of it."""
    found = {t.name: t for t in doctest.DocTestFinder().find(importlib.import_module(name))}
    not_run = []
    for fn, _ in _public_functions(name):
        test = found.get(f"{name}.{fn}")
        runs = test is not None and any(not e.options.get(doctest.SKIP) for e in test.examples)
        if not runs and f"{name}.{fn}" not in EXAMPLES_NOT_RUN:
            not_run.append(fn)
    assert not not_run, f"{name}: public functions whose examples doctest does not run: {not_run}"
