"""A plain install (no extras) ingests, builds the chronology and writes the HTML exhibit;
a step that needs an extra fails with one line naming it (#16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from routetrace.errors import MissingExtra
from routetrace.extras import EXTRAS, require

# a meta-path finder that makes every extra's package unimportable, as in a plain install
_BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"blocked for the test: {{name}}")
        return None
sys.meta_path.insert(0, _Block())
"""


def test_require_names_the_extra() -> None:
    with pytest.raises(MissingExtra, match=r"pip install 'routetrace\[osm\]'"):
        require("no_such_module_routetrace_test", extra="osm", purpose="geofences from OSM")


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    blocked = sorted({d for ds in EXTRAS.values() for d in ds})
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCK.format(blocked=set(blocked)))
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "routetrace.cli", *args], capture_output=True,
                          text=True, env=env, cwd=tmp, timeout=300)


def test_without_extras_the_core_path_works_and_extras_are_named(tmp_path: Path) -> None:
    from routetrace.samples import generate

    files = generate(tmp_path / "s")
    gpx = next(f for f in files if f.path.endswith(".gpx"))
    assert _run(tmp_path, "ingest", "c", str(tmp_path / "s" / gpx.path), "--subject", "p").returncode == 0
    assert _run(tmp_path, "chronology", "c").returncode == 0
    r = _run(tmp_path, "exhibit", "c", "--out", "ex", "--no-static")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ex" / "exhibit.html").is_file()
    r = _run(tmp_path, "exhibit", "c", "--out", "ex2")
    assert r.returncode == 1 and "routetrace[static]" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = _run(tmp_path, "carparks", "c", "--geofences",
             str(tmp_path / "s" / "geofences" / "carparks.geojson"))
    assert r.returncode == 1 and "routetrace[charts]" in r.stderr, r.stderr
    r = _run(tmp_path, "copresence", "c", "--dask")
    assert r.returncode == 1 and "routetrace[fleet]" in r.stderr, r.stderr
