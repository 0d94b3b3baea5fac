"""An output names the code that made it: the SHA-256 of routetrace's installed files."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tomllib
from pathlib import Path

import pytest

import routetrace
from routetrace.codehash import PACKAGE_FILES, code_files, code_sha256

ROOT = Path(routetrace.__file__).resolve().parent


def test_the_files_hashed_are_the_files_pyproject_installs() -> None:
    """PACKAGE_FILES repeats pyproject's packages and package data: a module or a data file
    added to the package without it would change outputs without changing the hash."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    cfg = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]
    dirs = {("." if p == "routetrace" else p.split(".", 1)[1]) for p in cfg["packages"]}
    assert set(PACKAGE_FILES) == dirs
    for pkg, patterns in cfg["package-data"].items():
        sub = "." if pkg == "routetrace" else pkg.split(".", 1)[1]
        assert set(patterns) | {"*.py"} == set(PACKAGE_FILES[sub]), pkg
    files = code_files()
    # every module of the package is covered, and nothing of the repository around it
    modules = {p.relative_to(ROOT).as_posix() for d in dirs for p in (ROOT / d).glob("*.py")}
    assert modules <= set(files)
    assert not [f for f in files if f.split("/")[0] in ("tests", "bench", "docs", ".venv", ".git")]
    assert any(fnmatch.fnmatch(f, "maps/static/*") for f in files)


def test_the_hash_depends_on_the_files_not_on_where_they_are(tmp_path: Path) -> None:
    """A copy of the package's files (as a wheel installs them) has the same hash; a change
    of one byte in any of them, or one more module, changes it."""
    copy = tmp_path / "routetrace"
    for rel in code_files():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, copy / rel)
    assert code_sha256(copy) == code_sha256()
    (copy / "routes" / "stops.py").write_bytes((copy / "routes" / "stops.py").read_bytes() + b"\n")
    changed = code_sha256(copy)
    assert changed != code_sha256()
    shutil.copyfile(ROOT / "routes" / "stops.py", copy / "routes" / "stops.py")
    assert code_sha256(copy) == code_sha256()
    (copy / "routes" / "extra.py").write_text("")
    assert code_sha256(copy) != code_sha256()


@pytest.mark.parametrize("what", ["exhibit", "export"])
def test_exhibits_and_exports_state_the_code_hash(what: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from routetrace.cli import main
    from routetrace.testing import example_case

    case = example_case(tmp_path / "case")
    out = tmp_path / "out"
    if what == "exhibit":
        assert main(["chronology", str(case), "--quiet"]) == 0
        assert main(["exhibit", str(case), "--out", str(out), "--no-static", "--quiet"]) == 0
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["tool_code_sha256"] == code_sha256()
        html = (out / "exhibit.html").read_text(encoding="utf-8")
        assert f"routetrace {routetrace.__version__}, SHA-256 of its files {code_sha256()}" in html
        # verify says whether the exhibit was made by this code (only then does a re-run match)
        capsys.readouterr()
        assert main(["verify", str(case), "--exhibit", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"exhibit {out}: made by routetrace {routetrace.__version__}, code {code_sha256()[:16]}…: " \
               "this routetrace's code" in err
        manifest["tool_code_sha256"] = "0" * 64  # as an exhibit made by other code states
        (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        assert main(["verify", str(case), "--exhibit", str(out)]) == 0  # the files still match
        assert "NOT this routetrace's code" in capsys.readouterr().err
    else:
        assert main(["export", str(case), "--to", "csv", "--out", str(out), "--quiet"]) == 0
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["tool"] == {"name": "routetrace", "version": routetrace.__version__,
                                    "code_sha256": code_sha256()}
