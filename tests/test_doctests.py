"""The examples in routetrace's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import routetrace

MODULES = sorted(m.name for m in pkgutil.walk_packages(routetrace.__path__, "routetrace.")
                 if ".tests" not in m.name and not m.name.startswith("routetrace.bench"))


def test_modules_found() -> None:
    assert "routetrace.evidence" in MODULES and "routetrace.loaders.ios_photos" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
