"""Fleet-portal exports (stub, being written)."""

from __future__ import annotations

from collections.abc import Sequence


def portal_kind(header: Sequence[str]) -> str | None:
    return None
