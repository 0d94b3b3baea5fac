"""Loader options: each loader declares the keys it reads, and a key no loader reads (a
typo) is refused with the closest key, by the API, the ingest (before anything is
written) and the CLI; ``routetrace formats`` lists the keys."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import pytest

from routetrace.app.ingest import ingest
from routetrace.cli import main
from routetrace.errors import ParameterError
from routetrace.loaders import REGISTRY, check_options, load, load_many
from routetrace.testing import example_gpx

#: how loader code reads an option: options.get("k"), options["k"], "k" in options,
#: _bool_option(ctx, "k") / _date_option(ctx, "k")
_READS = re.compile(r'(?:options|opts)(?:\.get\(|\[)"(\w+)"|"(\w+)" (?:not )?in (?:ctx\.)?(?:options|opts)\b'
                    r'|_\w*option\(ctx, "(\w+)"')


def _sources(fn: object) -> str:
    """The source of a loader's module and of its helper modules (``teltonika_*``)."""
    mod = sys.modules[fn.__module__]  # type: ignore[attr-defined]
    path = Path(inspect.getfile(mod))
    helpers = sorted(path.parent.glob(f"{path.stem}_*.py"))
    return "\n".join(p.read_text(encoding="utf-8") for p in [path, *helpers])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_loader_declares_the_option_keys_its_code_reads(name: str) -> None:
    spec, fn = REGISTRY[name]
    src = _sources(fn)
    read = {next(g for g in m.groups() if g) for m in _READS.finditer(src)}
    assert read <= set(spec.options), f"{name} reads undeclared options {sorted(read - set(spec.options))}"
    for key in spec.options:  # nothing declared that the code never names
        assert f'"{key}"' in src, f"{name} declares {key!r} but its code never names it"


def test_a_mistyped_key_is_refused_with_the_closest_key() -> None:
    check_options({"keep_damaged": "true", "chunk_rows": "10", "columns": {"lat": "y"}})
    with pytest.raises(ParameterError, match=r"unknown option 'keep_damage': no loader reads "
                                             r"it; did you mean 'keep_damaged'\?"):
        check_options({"keep_damage": "true"})
    with pytest.raises(ParameterError, match="unknown option 'zz_top': no loader reads it "
                                             r"\(options read: chunk_rows, columns"):
        check_options({"zz_top": 1})


def test_with_a_format_only_its_own_keys_are_taken(tmp_path: Path) -> None:
    """One set of options goes to every file of a folder: without a format a key of any
    loader is taken; with ``format`` only that loader's."""
    gpx = example_gpx(tmp_path / "a.gpx", [51.0, 51.001])
    assert load(gpx, options={"keep_damaged": "true"}).records_read == 2  # teltonika's key
    with pytest.raises(ParameterError, match="unknown option 'keep_damaged': the gpx loader "
                                             r"does not read it \(options read by gpx: none"):
        load(gpx, format="gpx", options={"keep_damaged": "true"})
    with pytest.raises(ParameterError, match="did you mean 'date_order'"):
        next(load_many(tmp_path, options={"date_ordr": "DMY"}))
    check_options({"door_input": 2}, format="teltonika")


def test_ingest_and_cli_refuse_a_mistyped_key_before_writing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ev").mkdir()
    gpx = example_gpx(tmp_path / "ev" / "a.gpx", [51.0, 51.001])
    with pytest.raises(ParameterError, match="keep_damage"):
        ingest(tmp_path / "case", [gpx], options={"keep_damage": True})
    assert not (tmp_path / "case").exists()
    rc = main(["ingest", str(tmp_path / "case2"), str(gpx), "--option", "keep_damage=true"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "unknown option 'keep_damage'" in err and "did you mean 'keep_damaged'" in err
    assert not (tmp_path / "case2").exists()


def test_formats_lists_each_loader_s_option_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats", "--json"]) == 0
    by_name = {f["name"]: f for f in json.loads(capsys.readouterr().out)["formats"]}
    assert "keep_damaged" in by_name["teltonika"]["options"]
    assert by_name["gpx"]["options"] == []
    assert main(["formats"]) == 0
    assert "--option keys: chunk_rows, columns, date_order" in capsys.readouterr().out
