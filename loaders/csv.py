"""Generic delimited-text (CSV) loader — placeholder until the full mapping loader lands."""

from __future__ import annotations
