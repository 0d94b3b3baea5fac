"""Hardened lxml parsing for evidence XML (TCX, GPX): one definition, shared by the loaders.

An evidence file is hostile until read: no entity is resolved, nothing is fetched from the
network, no DTD is loaded, trees are held to libxml2's default limits (``huge_tree=False``),
comments and processing instructions are dropped. A document that declares entities is
refused before parsing by the callers (:func:`declares_entities`), since a declaration is
the start of an expansion ("billion laughs") or external-entity attack.

Example
-------
>>> import io
>>> [el.tag for _, el in iterparse(io.BytesIO(b"<a><b/></a>"), events=("end",))]
['b', 'a']
>>> declares_entities(b'<!DOCTYPE a [<!ENTITY x "y">]><a/>')
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, Any

from lxml import etree

__all__ = ["PARSER_ARGS", "declares_dtd", "declares_entities", "iterparse"]

#: keyword arguments of every evidence XML parser (``etree.XMLParser`` and ``iterparse``)
PARSER_ARGS: dict[str, Any] = dict(resolve_entities=False, no_network=True, load_dtd=False,
                                   huge_tree=False, remove_comments=True, remove_pis=True)


def declares_entities(head: bytes) -> bool:
    """Whether the start of a document (its first 64 KiB, UTF-8 or ASCII) declares an entity.

    Parameters
    ----------
    head
        The first bytes of the document (the loaders pass 64 KiB).

    Returns
    -------
    bool
        True when ``<!ENTITY`` (or ``<!entity``) occurs: the caller refuses the file.

    Example
    -------
    >>> declares_entities(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    True
    >>> declares_entities(b'<gpx version="1.1"/>')
    False
    """
    return b"<!ENTITY" in head or b"<!entity" in head


def declares_dtd(head: bytes) -> bool:
    """Whether the start of a document (UTF-8 or ASCII) has a ``<!DOCTYPE`` (any DTD).

    Parameters
    ----------
    head
        The first bytes of the document.

    Returns
    -------
    bool
        True when a ``<!DOCTYPE`` occurs, in any letter case.

    Example
    -------
    >>> declares_dtd(b'<?xml version="1.0"?><!doctype gpx><gpx/>')
    True
    >>> declares_dtd(b"<gpx/>")
    False
    """
    return b"<!doctype" in head.lower()


def iterparse(fh: IO[bytes], *, events: Sequence[str],
              tag: Sequence[str] | None = None) -> Iterator[tuple[str, Any]]:
    """:func:`lxml.etree.iterparse` with :data:`PARSER_ARGS`; ``tag`` filters the events
    (``{*}name`` matches ``name`` in any namespace or none). The iterator's ``root`` is the
    document's root element once parsing has started.

    Parameters
    ----------
    fh
        The document, opened in binary mode.
    events
        The lxml events wanted (``"start"``, ``"end"``, ...).
    tag
        Only events of elements with these tags; default every element.

    Returns
    -------
    Iterator of (str, lxml.etree._Element)
        ``(event, element)`` pairs, parsed with entities unresolved, no network, no DTD.

    Example
    -------
    >>> import io
    >>> doc = b'<gpx xmlns="http://www.topografix.com/GPX/1/1"><wpt/><trkpt/></gpx>'
    >>> [el.tag.split("}")[1] for _, el in iterparse(io.BytesIO(doc), events=("end",),
    ...                                                tag=("{*}trkpt",))]
    ['trkpt']
    """
    it: Iterator[tuple[str, Any]] = etree.iterparse(fh, events=tuple(events), tag=tag, **PARSER_ARGS)
    return it
