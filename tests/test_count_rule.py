"""The count rule's "produced" records: the distinct records of every table a loader fills,
counted once whether a table holds them as text or as a shared dictionary (issue #21)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from routetrace.errors import LoaderBug
from routetrace.loaders import REGISTRY, load
from routetrace.loaders.base import LoadContext, LoadResult, _record_union


def _columns(rng: np.random.Generator) -> list[pd.Series]:
    """Record columns of every kind: text, a dictionary shared by two columns (some entries
    unused), another dictionary, text with a missing value."""
    pool = np.array([f"offset {i}/rec {j}" for i in range(0, 400, 40) for j in range(5)], dtype=object)
    shared = pd.CategoricalDtype(pd.Index(rng.choice(pool, 30, replace=False), dtype="string"))
    n = len(shared.categories)
    return [
        pd.Series(rng.choice(pool, 25), dtype="string"),
        pd.Series(pd.Categorical.from_codes(rng.integers(0, n // 2, 40), dtype=shared)),
        pd.Series(pd.Categorical.from_codes(rng.integers(n // 3, n - 3, 12), dtype=shared)),
        pd.Series(pd.Categorical(rng.choice(pool, 6))),
        pd.Series([*rng.choice(pool, 4), None], dtype="string"),
    ]


@pytest.mark.parametrize("seed", range(12))
def test_the_union_is_the_set_of_distinct_records(seed: int) -> None:
    """Any mix of text and dictionary columns gives the size of the plain set union, and
    ``among`` finds exactly the values in it (missing counts as one record, as before)."""
    rng = np.random.default_rng(seed)
    cols = _columns(rng)
    rng.shuffle(cols)  # type: ignore[arg-type]
    cols = cols[: int(rng.integers(1, len(cols) + 1))]
    want: set[object] = set()
    for c in cols:
        want |= {None if pd.isna(v) else str(v) for v in c.tolist()}
    u = _record_union(cols)
    assert len(u) == len(want)
    probe = ["offset 0/rec 0", "offset 40/rec 3", "nowhere", "offset 360/rec 4", *sorted(v for v in want if v)[:5]]
    got = u.among(pa.array(probe, pa.large_string())).to_pylist()
    assert sorted(got) == sorted({p for p in probe if p in want})


def test_a_shared_dictionary_counts_only_the_entries_its_rows_use() -> None:
    """An IO table and its records table share one dictionary: entries no row uses are not
    records produced; the fixes' texts found in it are not counted twice."""
    shared = pd.CategoricalDtype(pd.Index(["r0", "r1", "r2", "r3"], dtype="string"))
    io = pd.Series(pd.Categorical.from_codes([0, 0, 1, 1, 1], dtype=shared))
    recs = pd.Series(pd.Categorical.from_codes([0, 1], dtype=shared))
    fixes = pd.Series(["r1", "r0", "r9"], dtype="string")
    u = _record_union([io, fixes, recs])
    assert len(u) == 3  # r0, r1, r9: r2 and r3 are in the dictionary but on no row
    assert sorted(u.among(pa.array(["r2", "r9", "r1"], pa.large_string())).to_pylist()) == ["r1", "r9"]


def _fake_loader(monkeypatch: pytest.MonkeyPatch, make: object) -> None:
    spec, _ = REGISTRY["whatsapp-txt"]
    monkeypatch.setitem(REGISTRY, "whatsapp-txt", (spec, make))


def _tables(ctx: LoadContext) -> dict[str, pd.DataFrame]:
    shared = pd.CategoricalDtype(pd.Index(["line 1", "line 2", "line 3"], dtype="string"))
    t = pd.Timestamp("2025-01-01", tz="UTC")
    fixes = pd.DataFrame({"record": ["line 1", "line 2"], "t_utc": [t, t], "lat": [50.0, 50.1],
                          "lon": [4.0, 4.1], "fix_kind": "gps"})
    side = pd.DataFrame({"record": pd.Categorical.from_codes([0, 1, 1], dtype=shared), "v": [1, 2, 3]})
    return {"fixes": fixes, "side": side}


def test_finish_counts_a_side_table_dictionary_with_the_fixes(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two records produced (in the fixes and a side table's dictionary) + one rejected = 3."""
    def loader(path: Path, *, ctx: LoadContext) -> LoadResult:
        t = _tables(ctx)
        return ctx.finish(records_read=3, time_basis="test", fixes=t["fixes"],
                          rejects=[("line 3", "why")], extra_tables={"side": t["side"]})

    _fake_loader(monkeypatch, loader)
    (tmp_path / "chat.txt").write_bytes(b"x")
    res = load(tmp_path / "chat.txt", format="whatsapp-txt")
    assert res.records_read == 3 and len(res.fixes) == 2 and len(res.rejects) == 1


def test_finish_refuses_a_record_both_in_a_dictionary_and_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record a side table's rows use (a dictionary entry) and also rejected is a loader
    bug; a dictionary entry no row uses may be rejected."""
    def loader(path: Path, *, ctx: LoadContext) -> LoadResult:
        t = _tables(ctx)
        return ctx.finish(records_read=3, time_basis="test", fixes=t["fixes"].iloc[:1],
                          rejects=[("line 2", "why"), ("line 3", "why")],
                          extra_tables={"side": t["side"]})

    _fake_loader(monkeypatch, loader)
    (tmp_path / "chat.txt").write_bytes(b"x")
    with pytest.raises(LoaderBug, match="'line 2' both produced and rejected"):
        load(tmp_path / "chat.txt", format="whatsapp-txt")
