"""Every public function of the documented modules has numpydoc Parameters/Returns and an example.

The list of modules grows as modules are completed (issue #16, item 5); a public function is
a name in the module's ``__all__`` defined in that module (re-exports are checked where they
are defined). The examples themselves are run by ``test_doctests.py``.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

DOCUMENTED = [
    "routetrace.app.analysis",
    "routetrace.app.corroborate",
    "routetrace.app.demo",
    "routetrace.app.export",
    "routetrace.app.ingest",
    "routetrace.app.progress",
    "routetrace.app.subjects",
    "routetrace.app.verify",
    "routetrace.case",
    "routetrace.cli",
    "routetrace.csvout",
    "routetrace.display",
    "routetrace.evidence",
    "routetrace.extras",
    "routetrace.fuzzing",
    "routetrace.geodesy",
    "routetrace.localtime",
    "routetrace.maps.basemap",
    "routetrace.maps.chronology",
    "routetrace.maps.exhibit",
    "routetrace.maps.exports",
    "routetrace.maps.footer",
    "routetrace.maps.gazetteer",
    "routetrace.maps.layout",
    "routetrace.maps.patterns",
    "routetrace.maps.static",
    "routetrace.maps.timeline",
    "routetrace.routes.arrays",
    "routetrace.routes.carparks",
    "routetrace.routes.chronology",
    "routetrace.routes.clean",
    "routetrace.routes.copresence",
    "routetrace.routes.corroborate",
    "routetrace.routes.distributed",
    "routetrace.routes.geo",
    "routetrace.routes.merge",
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
