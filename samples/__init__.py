"""The bundled fictional sample case: a deterministic generator written in real file formats.

See :mod:`routetrace.samples.scenario` for the story and :func:`generate` for the files.
"""

from __future__ import annotations

from .generate import SampleFile, generate

__all__ = ["SampleFile", "generate"]
