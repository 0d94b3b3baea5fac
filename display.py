"""Evidence text shown to a person: control and bidi characters made visible.

A file name or a record from a seized device is hostile text. Printed raw, an escape
sequence (``ESC [ 2 K``) rewrites the terminal line it is on, so a ``changed`` line of
``routetrace verify`` can be made to read ``ok``; a bidi override (U+202E) reverses what
follows, so ``gpx.exe`` reads as ``exe.xpg``. :func:`visible` replaces every such
character by its escape (``\\x1b``, ``\\u202e``), which a reader sees and can quote.
"""

from __future__ import annotations

import re

__all__ = ["visible"]

#: C0 and C1 controls, DEL, and the Unicode bidi controls (embeddings, overrides, isolates,
#: marks) plus line/paragraph separators; space is kept.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def visible(text: object) -> str:
    """Return ``str(text)`` with control and bidi characters shown as escapes.

    Other format characters (category ``Cf``, e.g. zero-width joiners inside emoji) are
    kept: they cannot move the cursor or reorder a line.

    Parameters
    ----------
    text : object
        Any value; device text (file names, messages) in particular.

    Returns
    -------
    str
        The text, safe to print on a terminal.

    Example
    -------
    >>> visible("ok\\x1b[2K\\rchanged \\u202egpx.exe")
    'ok\\\\x1b[2K\\\\x0dchanged \\\\u202egpx.exe'
    """
    return _HIDDEN.sub(_escape, str(text))
