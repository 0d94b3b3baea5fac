"""Mutation fuzzing of every loader family (modest example count; bench/fuzz.py runs long).

Seeds are the sample case's evidence files (always) and ../shared/realdata (when present).
Each example mutates a seed (bit flips, truncations, splices, nasty tokens, repeats) and
loads it with the seed's format forced. Allowed outcomes: a LoadResult that obeys the count
rule, or a RoutetraceError. Anything else escaping is a defect.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routetrace.errors import RoutetraceError
from routetrace.fuzzing import MUTATION_KINDS, load_bytes_outcome, mutate
from routetrace.loaders import detect_format
from routetrace.samples import generate

REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
_TMP = Path(tempfile.mkdtemp(prefix="routetrace-fuzz-seeds-"))


def _seeds() -> dict[str, list[tuple[bytes, str]]]:
    generate(_TMP / "sample", seed=7)
    files = sorted(p for p in (_TMP / "sample" / "evidence").rglob("*") if p.is_file())
    if REALDATA.exists():
        files += sorted(p for p in REALDATA.rglob("*") if p.is_file())
    out: dict[str, list[tuple[bytes, str]]] = {}
    for f in files:
        if f.name.endswith(("-wal", "-shm", ".md", "SHA256SUMS")) or f.stat().st_size > 1 << 20:
            continue
        try:
            fmt = detect_format(f).name
        except RoutetraceError:
            continue
        out.setdefault(fmt, []).append((f.read_bytes(), f.name))
    return out


SEEDS = _seeds()
OPS = st.lists(st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 1 << 30),
                         st.integers(0, 1 << 30)), min_size=1, max_size=4)


@pytest.mark.parametrize("family", sorted(SEEDS))
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_inputs_give_rows_or_a_clear_error(family: str, data: st.DataObject, tmp_path: Path) -> None:
    seeds = SEEDS[family]
    blob, name = seeds[data.draw(st.integers(0, len(seeds) - 1))]
    other = seeds[data.draw(st.integers(0, len(seeds) - 1))][0]
    mutated = mutate(blob, data.draw(OPS), other=other)
    status, detail = load_bytes_outcome(mutated, name=name, tmp_dir=tmp_path, format=family)
    assert status in ("ok", "error", "wrapped"), detail
    sniffed, detail = load_bytes_outcome(mutated, name=name, tmp_dir=tmp_path)
    assert sniffed in ("ok", "error", "wrapped"), detail


def test_every_sample_format_has_seeds() -> None:
    assert "gpx" in SEEDS


def _archive_seeds() -> list[tuple[bytes, str]]:
    from routetrace.evidence import is_archive

    files = sorted(p for p in (_TMP / "sample" / "evidence").rglob("*") if p.is_file())
    if REALDATA.exists():
        files += sorted(REALDATA.rglob("*.kmz"))
    return [(f.read_bytes(), f.name) for f in files if is_archive(f) and f.stat().st_size < 1 << 20]


ARCHIVE_SEEDS = _archive_seeds()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_archives_give_outcomes_never_an_exception(data: st.DataObject, tmp_path: Path) -> None:
    """Zip/tar containers through load_many: each member an outcome (rows or a clear error)."""
    from routetrace.loaders import load_many
    from routetrace.testing import assert_count_rule

    blob, name = ARCHIVE_SEEDS[data.draw(st.integers(0, len(ARCHIVE_SEEDS) - 1))]
    other = ARCHIVE_SEEDS[data.draw(st.integers(0, len(ARCHIVE_SEEDS) - 1))][0]
    p = tmp_path / name
    p.write_bytes(mutate(blob, data.draw(OPS), other=other))
    for outcome in load_many(p):
        assert (outcome.result is None) != (outcome.error is None)
        if outcome.result is not None:
            assert_count_rule(outcome.result)
        else:
            assert isinstance(outcome.error, RoutetraceError)
