"""The one loader of ``bench/`` scripts for the tests (the scripts are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` as module ``routetrace_bench_<name>`` (loaded once; ``bench/`` on
    ``sys.path`` for the scripts' own imports of each other)."""
    key = f"routetrace_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(key, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod
