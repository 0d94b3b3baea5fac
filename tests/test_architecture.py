"""The house plan, enforced: which layer may import which, routes open no files, and no
algorithm is written twice (STYLE.md §1; issue #16).

Layers, from the bottom: the core (``errors``, ``schema``, ``timebase``, ``geodesy``,
``localtime``, ``evidence``, ``csvout``, ``extras``), then ``loaders`` and the store (``case``), then the pure stages
(``routes``) and the renderers (``maps``), then the jobs (``app``), then ``cli``. The sample
generator (``samples``) writes evidence files with encoders of its own, never the readers'.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = {"errors", "schema", "timebase", "geodesy", "localtime", "display", "evidence", "csvout", "extras", "__init__"}
FORBIDDEN: dict[str, set[str]] = {
    # layer -> top-level routetrace modules/packages it must not import
    "core": {"loaders", "routes", "maps", "app", "cli", "case", "samples", "testing", "fuzzing"},
    "loaders": {"routes", "maps", "case", "app", "cli", "samples"},
    "case": {"loaders", "routes", "maps", "app", "cli", "samples"},
    "routes": {"loaders", "maps", "case", "app", "cli"},
    "maps": {"loaders", "testing", "fuzzing", "app", "cli"},
    "samples": {"loaders", "app", "cli"},
    "app": {"cli"},
}
# calls that read or write files; a pure stage takes tables and returns tables
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "to_csv",
              "to_parquet", "read_parquet", "read_csv", "read_file", "to_file", "savefig",
              "mkdir", "unlink"}


def _package_files() -> Iterator[Path]:
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in {"tests", "bench", "docs", ".venv", "build"} or rel.parts[0].startswith("."):
            continue
        yield p


def _layer(rel: Path) -> str:
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = rel.stem
    return "core" if stem in CORE else stem


def _imported_modules(tree: ast.AST, rel: Path) -> Iterator[tuple[int, str]]:
    """Top-level routetrace module names imported (absolute or relative)."""
    depth = len(rel.parts) - 1  # package depth below the root package
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "routetrace" and len(parts) > 1:
                    yield node.lineno, parts[1]
                elif parts[0] == "routetrace":
                    for a in node.names:
                        yield node.lineno, a.name
                continue
            if node.level - 1 < depth:  # relative import inside the same sub-package
                continue
            if node.module:
                yield node.lineno, node.module.split(".")[0]
            else:
                for a in node.names:
                    yield node.lineno, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "routetrace" and len(parts) > 1:
                    yield node.lineno, parts[1]


# files allowed to break a rule, with the reason (none today: keep it that way)
_KNOWN: set[str] = set()


def test_layers_import_only_downwards() -> None:
    violations = []
    for p in _package_files():
        rel = p.relative_to(ROOT)
        layer = _layer(rel)
        banned = FORBIDDEN.get(layer, set())
        for line, mod in _imported_modules(ast.parse(p.read_text(encoding="utf-8")), rel):
            if mod in banned and str(rel) not in _KNOWN:
                violations.append(f"{rel}:{line} ({layer}) imports {mod}")
    assert violations == []


def test_routes_open_no_files() -> None:
    violations = []
    for p in sorted((ROOT / "routes").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name in FILE_CALLS:
                    violations.append(f"routes/{p.name}:{node.lineno} calls {name}")
    assert violations == []


@pytest.mark.parametrize("name", ["haversine_m", "EARTH_R_M", "fmt_local", "fmt_duration"])
def test_one_definition(name: str) -> None:
    """No algorithm (or constant) is written twice: exactly one definition in the package."""
    found = []
    for p in _package_files():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and (node.name == name or
                                                      (node.name.strip("_") in {"hav", "haversine"} and name == "haversine_m")):
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id.strip("_") == name for t in node.targets):
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert len(found) == 1, found
    # and no inline copy of the radius either
    if name == "EARTH_R_M":
        copies = [str(p.relative_to(ROOT)) for p in _package_files()
                  if "6_371_008" in p.read_text(encoding="utf-8") or "6371008" in p.read_text(encoding="utf-8")]
        assert copies == ["geodesy.py"]


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself: a loader importing routes is reported (this test can fail)."""
    rel = Path("loaders/x.py")
    tree = ast.parse("from ..routes.stops import detect_stops\nfrom . import base\n")
    mods = [m for _, m in _imported_modules(tree, rel)]
    assert mods == ["routes"]
    tree = ast.parse("from routetrace.maps import timeline\n")
    assert [m for _, m in _imported_modules(tree, rel)] == ["maps"]
