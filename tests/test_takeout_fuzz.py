"""Mutated Google location files: a result that keeps the count rule, or one clear LoaderError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routetrace.fuzzing import MUTATION_KINDS, load_bytes_outcome, mutate
from routetrace.loaders import detect_format

OPS = st.lists(st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 1 << 20),
                         st.integers(0, 1 << 20)), min_size=1, max_size=4)


REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"


def _small_real_files() -> list[Path]:
    root = REALDATA / "takeout"
    return [f for f in sorted(root.rglob("*.json")) if f.stat().st_size < 20_000]


FILES = _small_real_files()


@pytest.mark.skipif(not FILES, reason="../shared/realdata/takeout is not present")
@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_mutations_never_escape(path: Path, ops: list[tuple[str, int, int]]) -> None:
    fmt = detect_format(path).name
    data = mutate(path.read_bytes(), ops)
    with tempfile.TemporaryDirectory() as tmp:
        status, detail = load_bytes_outcome(data, name=path.name, tmp_dir=Path(tmp), format=fmt)
    assert status in ("ok", "error"), (status, detail)
