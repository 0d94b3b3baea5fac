"""Evidence text shown to a person: control, bidi and invisible characters made visible.

A file name or a record from a seized device is hostile text. Printed raw, an escape
sequence (``ESC [ 2 K``) rewrites the terminal line it is on, so a ``changed`` line of
``routetrace verify`` can be made to read ``ok``; a bidi override (U+202E) reverses what
follows, so ``gpx.exe`` reads as ``exe.xpg``; a zero-width space makes two different names
look the same. :func:`visible` replaces every such character by its code point in brackets
(``[U+001B]``, ``[U+202E]``), which a reader sees and can quote.

It is the one escaper of routetrace: the terminal (``cli``, progress lines), the HTML exhibit
(its data, title, footer, chronology and popups; so the PNG and PDF too), the KML names and
descriptions, and the car-park figures all show evidence text through it. Data files meant
for machines (CSV, GeoJSON, GeoPackage, GPX, the case tables) keep the text exact.
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "visible"]

#: Characters a reader cannot see or that change how the rest of a line is shown: C0 and C1
#: controls and DEL; the bidi controls (marks U+200E/F and U+061C, embeddings and overrides
#: U+202A-E, isolates U+2066-9); line and paragraph separators U+2028/9; zero-width and
#: invisible characters (U+200B-D, U+2060-4, U+FEFF, U+180E); and what XML 1.0 cannot carry
#: (lone surrogates, as a file name with undecodable bytes has, U+FFFE, U+FFFF). Space is
#: kept. Zero-width joiners are shown too: inside an emoji sequence that reads
#: ``👩[U+200D]💻``, faithful rather than pretty, as evidence should be.
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
                    "\ufeff\ud800-\udfff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    return f"[U+{ord(m.group()):04X}]"


def visible(text: object, *, keep: str = "") -> str:
    """Return ``str(text)`` with hidden characters (:data:`HIDDEN`) shown as ``[U+XXXX]``.

    Parameters
    ----------
    text : object
        Any value; device text (file names, names, messages) in particular.
    keep : str
        Characters of :data:`HIDDEN` to leave as they are: ``"\\t\\n\\r"`` where a line
        break is the writer's own (a KML description, HTML between tags), never for a line
        printed on a terminal.

    Returns
    -------
    str
        The text, safe to print on a terminal or to show in an exhibit.

    Example
    -------
    >>> visible("ok\\x1b[2K\\rchanged \\u202egpx.exe")
    'ok[U+001B][2K[U+000D]changed [U+202E]gpx.exe'
    >>> visible("Bo\\u200bb\\nstop", keep="\\n")
    'Bo[U+200B]b\\nstop'
    """
    s = str(text)
    if not keep:
        return HIDDEN.sub(_escape, s)
    return HIDDEN.sub(lambda m: m.group() if m.group() in keep else _escape(m), s)
