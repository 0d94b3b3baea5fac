"""Static exhibits (PNG, A4 landscape PDF) rendered by Debian's Chromium through Playwright.

The browser is started with networking switched off in every way we can ask for, inside a
network namespace of its own where the system allows one (:func:`network_isolation`), and
every request that is not a ``file:``/``data:`` URL is aborted and recorded, so a static
exhibit is exactly what the offline HTML shows. Screenshots are taken at a fixed viewport with a
fixed device scale and with animations off, so the same HTML gives the same pixels on the
same machine.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import ExportError
from ..extras import require

__all__ = ["BrowserReport", "CHROMIUM_ARGS", "chromium_path", "network_isolation", "open_exhibit", "page_templates",
           "render_static"]

#: Chromium's launch flags. Offline (#20): no background services (component updates,
#: safe browsing, metrics, pings, DNS prefetch, network time), and every host name resolves
#: to "not found" except loopback, so no DNS query or outside connect is ever made (a test
#: counts them under strace).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
                 "--metrics-recording-only", "--no-default-browser-check",
                 "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider,"
                 "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
                 "NetworkTimeServiceQuerying,InterestFeedContentSuggestions",
                 "--no-pings", "--dns-prefetch-disable", "--disable-client-side-phishing-detection",
                 "--disable-component-extensions-with-background-pages", "--disable-breakpad",
                 "--safebrowsing-disable-auto-update", "--no-service-autorun",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 # the on-device AI models' manifest (component ceofaddefefcbblgcgnibnonglccbfja)
                 # is asked for at start even with component updates off; read from a path that
                 # does not exist instead, it is never fetched, and nothing resolves a host
                 "--optimization-guide-manifest-override=/nonexistent/routetrace-offline",
                 "--font-render-hinting=none", "--disable-lcd-text", "--force-color-profile=srgb",
                 "--hide-scrollbars"]
VIEWPORT = {"width": 1280, "height": 900}


#: The ways tried, in order, to give Chromium a network namespace with no interface but a
#: down loopback: as root a plain ``unshare --net``; otherwise inside a user namespace,
#: keeping the user's own id, or mapped to root where ``--map-current-user`` is missing.
_NETNS_PREFIXES = (["--net"], ["--net", "--map-current-user"], ["--net", "--map-root-user"])


@functools.lru_cache(maxsize=1)
def network_isolation() -> tuple[tuple[str, ...], str]:
    """The command prefix that starts Chromium in a network namespace of its own, and its
    description for the exhibit's manifest.

    Chromium's own switches stop its background services and pin host resolution, but its
    host resolver asks the kernel which source address would reach ``2001:4860:4860::8888``
    (a UDP ``connect()`` that sends nothing) before its first resolution, whatever the host,
    and no switch turns that probe off; on a machine with a network Chromium still starts
    one resolution (``accounts.google.com``, ListAccounts; Chromium 156). Inside a namespace
    of its own there is no route at all and Chromium, seeing no network, resolves nothing:
    no outside ``connect()`` is even tried (a test counts them under strace). Playwright
    talks to it over a pipe, which the namespace does not touch. Where ``unshare`` is missing
    or not permitted (no user namespaces), the prefix is empty and the description says so.

    Returns
    -------
    tuple of (tuple of str, str)
        ``(prefix, description)``; ``prefix`` is ``()`` when no namespace could be made.

    Example
    -------
    >>> prefix, how = network_isolation()
    >>> how.startswith(("network namespace", "none"))
    True
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return (), "none: 'unshare' (util-linux) is not installed; Chromium's switches only"
    reason = ""
    for opts in _NETNS_PREFIXES:
        if opts == ["--net"] and os.geteuid() != 0:
            continue
        try:
            run = subprocess.run([unshare, *opts, "--", "true"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
            continue
        if run.returncode == 0:
            return (unshare, *opts, "--"), f"network namespace ({' '.join(['unshare', *opts])}): no route out"
        reason = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit status {run.returncode}"
    return (), f"none: a network namespace is not permitted here ({reason}); Chromium's switches only"


@contextmanager
def _launch_command(executable: str) -> Iterator[tuple[str, str]]:
    """``(executable, isolation)``: Chromium itself, or a two-line wrapper script that
    execs it inside :func:`network_isolation`'s namespace (Playwright starts one
    executable, with its own arguments)."""
    prefix, how = network_isolation()
    if not prefix:
        yield executable, how
        return
    with tempfile.TemporaryDirectory(prefix="routetrace-chromium-") as tmp:
        wrapper = Path(tmp) / "chromium-netns"
        wrapper.write_text("#!/bin/sh\nexec " + " ".join(map(shlex.quote, [*prefix, executable])) + ' "$@"\n')
        wrapper.chmod(0o700)
        yield str(wrapper), how


def chromium_path() -> str:
    """The Chromium executable: ``$ROUTETRACE_CHROMIUM``, else Debian's ``chromium``.

    A ``ROUTETRACE_CHROMIUM`` that names no executable is an error, never a silent fall-back
    to another browser (the exhibit's manifest records which one drew it).

    Returns
    -------
    str
        The path of the executable.

    Raises
    ------
    ExportError
        ``ROUTETRACE_CHROMIUM`` names no executable, or no Chromium is installed.

    Example
    -------
    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"ROUTETRACE_CHROMIUM": sys.executable}):
    ...     chromium_path() == shutil.which(sys.executable)  # any executable may be named
    True
    >>> with mock.patch.dict(os.environ, {"ROUTETRACE_CHROMIUM": "no-such-browser"}):
    ...     chromium_path()
    Traceback (most recent call last):
    ...
    routetrace.errors.ExportError: ROUTETRACE_CHROMIUM='no-such-browser' is not an executable; fix or unset it
    """
    env = os.environ.get("ROUTETRACE_CHROMIUM")
    if env:
        p = shutil.which(env)
        if not p:
            raise ExportError(f"ROUTETRACE_CHROMIUM={env!r} is not an executable; fix or unset it")
        return p
    for cand in ["/usr/bin/chromium", "chromium", "chromium-browser"]:
        p = shutil.which(cand) if cand else None
        if p:
            return p
    raise ExportError("Chromium not found: install Debian's 'chromium' (apt-get install chromium) "
                      "or set ROUTETRACE_CHROMIUM")


@dataclass
class BrowserReport:
    """What happened while a page was open: blocked requests, console errors, page errors."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    load_ms: float = 0.0
    isolation: str = ""  # how Chromium was kept off the network (see network_isolation)


@contextmanager
def open_exhibit(html: str | Path, *, timezone_id: str = "UTC", viewport: dict[str, int] | None = None,
                 wait_ready: bool = True, timeout_ms: float = 120_000) -> Iterator[tuple[Any, BrowserReport]]:
    """Open an exhibit HTML file in headless Chromium; yield ``(page, report)``.

    Every non-``file:``/``data:`` request is aborted and recorded in ``report.blocked``;
    console errors, uncaught page errors and dialogs (``alert`` etc.) are recorded too.

    Parameters
    ----------
    html : str or pathlib.Path
        The exhibit HTML file.
    timezone_id : str
        The browser's time zone (an exhibit never uses it: times are shown as written).
    viewport : dict, optional
        ``{"width": ..., "height": ...}`` in CSS pixels (default 1280 x 900).
    wait_ready : bool
        Wait until the page sets ``window.routetraceReady`` and its canvases have drawn.
    timeout_ms : float
        Longest wait for the page to load and be ready, milliseconds.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields ``(page, report)``: the Playwright page and a :class:`BrowserReport`; the
        browser is closed when the ``with`` block ends.

    Raises
    ------
    MissingExtra
        Playwright is not installed (extra ``static``).
    ExportError
        No Chromium (:func:`chromium_path`).

    Example
    -------
    Nothing starts until the ``with`` block (which needs Chromium):

    >>> opened = open_exhibit("exhibit-4/exhibit.html", timezone_id="Europe/Brussels")
    >>> hasattr(opened, "__enter__")
    True
    >>> with opened as (page, report):  # doctest: +SKIP
    ...     page.locator("#rt-footer").count(), report.blocked
    (1, [])
    """
    import time

    sync_playwright = require("playwright.sync_api", extra="static",
                              purpose="PNG/PDF exhibits").sync_playwright

    path = Path(html).resolve()
    rep = BrowserReport()
    with _launch_command(chromium_path()) as (executable, rep.isolation), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport=cast(Any, viewport or VIEWPORT), device_scale_factor=1,
                                      timezone_id=timezone_id, locale="en-GB",
                                      reduced_motion="reduce", offline=True)
            page = ctx.new_page()

            def route(r: Any) -> None:
                url = r.request.url
                rep.requests.append(url)
                if url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    rep.blocked.append(url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: rep.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: rep.page_errors.append(str(e)))

            def dialog(d: Any) -> None:
                rep.dialogs.append(f"{d.type}: {d.message}")
                d.dismiss()

            page.on("dialog", dialog)
            t = time.perf_counter()
            page.goto(path.as_uri(), wait_until="load", timeout=timeout_ms)
            if wait_ready:
                page.wait_for_function("window.routetraceReady === true", timeout=timeout_ms)
                # canvases (routes, evidence points) draw in the next animation frames
                page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            rep.load_ms = (time.perf_counter() - t) * 1000
            yield page, rep
        finally:
            browser.close()


def _fix_pdf_dates(path: Path) -> None:
    """Replace Chromium's wall-clock /CreationDate and /ModDate with SOURCE_DATE_EPOCH (or
    1980-01-01), byte for byte the same length, so the xref table stays valid."""
    import re

    import pandas as pd

    from .exports import _epoch
    stamp = pd.Timestamp(_epoch(), unit="s", tz="UTC").strftime("D:%Y%m%d%H%M%S+00'00'").encode()
    data = path.read_bytes()
    fixed = re.sub(rb"(/(?:CreationDate|ModDate) \()D:\d{14}\+00'00'(\))",
                   lambda m: m.group(1) + stamp + m.group(2), data)
    if fixed != data:
        path.write_bytes(fixed)


#: PDF page margins: the header (exhibit) and footer ("page k of m") are printed in them.
PDF_MARGINS = {"top": "12mm", "bottom": "10mm", "left": "8mm", "right": "8mm"}
_HEAD_STYLE = ("font-family:'DejaVu Sans',Arial,sans-serif;font-size:8.5px;color:#222;width:100%;"
               "margin:0 8mm;display:flex;justify-content:space-between")


def page_templates(header: dict[str, str]) -> tuple[str, str]:
    """The PDF's header (exhibit number, case, title) and footer ("page k of m") templates.

    The texts may come from evidence: they are HTML-escaped.

    Parameters
    ----------
    header : dict of str to str
        ``exhibit_no``, ``case_id`` and ``title`` (a missing one is left blank).

    Returns
    -------
    tuple of str
        ``(header_template, footer_template)``, HTML for Chromium's ``page.pdf``.

    Example
    -------
    >>> head, foot = page_templates({"exhibit_no": "7", "case_id": "<b>", "title": "Map"})
    >>> "Exhibit 7 \u00b7 Case &lt;b&gt; \u00b7 Map" in head, 'class="totalPages"' in foot
    (True, True)
    """
    import markupsafe

    text = markupsafe.escape(f"Exhibit {header.get('exhibit_no', '')} \u00b7 Case {header.get('case_id', '')}"
                             f" \u00b7 {header.get('title', '')}")
    head = f'<div style="{_HEAD_STYLE}"><span>{text}</span><span>routetrace</span></div>'
    foot = (f'<div style="{_HEAD_STYLE}"><span>{text}</span><span>page <span class="pageNumber"></span> of '
            '<span class="totalPages"></span></span></div>')
    return head, foot


def _print_pdf(page: Any, pdf: Path) -> None:
    """A4 landscape PDF: overview page, one detail page per group, chronology, footer."""
    page.emulate_media(media="print")
    # the print pages are built with print media on (their maps need their printed size);
    # then fonts and two animation frames, so every canvas has drawn before printing
    page.evaluate("window.routetracePrint ? window.routetracePrint() : 0")
    page.evaluate("document.fonts.ready.then(() => new Promise(r => "
                  "requestAnimationFrame(() => requestAnimationFrame(r))))")
    header = page.evaluate("window.routetraceData ? window.routetraceData.header : {}") or {}
    head, foot = page_templates({str(k): str(v) for k, v in header.items()})
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True, margin=PDF_MARGINS,
             display_header_footer=True, header_template=head, footer_template=foot)


def render_static(html: str | Path, png: str | Path | None = None, pdf: str | Path | None = None, *,
                  chronology_png: str | Path | None = None, timezone_id: str = "UTC") -> BrowserReport:
    """Write a PNG of the map page (title, map, footer), a PNG of the chronology table and an
    A4 landscape PDF of an exhibit HTML file: the overview page with each group of close
    markers framed and lettered, one detail page per group, the chronology, then sources and
    parameters. Every page carries the exhibit header and "page k of m"; every map page a
    scale bar, a north arrow and the legend beside the map.

    Parameters
    ----------
    html : str or pathlib.Path
        The exhibit HTML file (:func:`routetrace.maps.exhibit.make_exhibit` writes one).
    png : str or pathlib.Path, optional
        Where to write the map page as PNG (None: not written).
    pdf : str or pathlib.Path, optional
        Where to write the A4 landscape PDF (None: not written); its creation and
        modification dates are ``SOURCE_DATE_EPOCH`` (or 1980-01-01), not the wall clock.
    chronology_png : str or pathlib.Path, optional
        Where to write the chronology table as PNG (None: not written).
    timezone_id : str
        The browser's time zone (the exhibit shows times as written, whatever it is).

    Returns
    -------
    BrowserReport
        The requests the page made (none blocked) and its load time.

    Raises
    ------
    ExportError
        When the page requested anything outside the file, or logged an error; or when no
        Chromium is found (:func:`chromium_path`).
    MissingExtra
        Playwright is not installed (extra ``static``).

    Example
    -------
    A browser that is not there is said, never replaced by another one:

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"ROUTETRACE_CHROMIUM": "no-such-browser"}):
    ...     render_static("exhibit-4/exhibit.html", png="exhibit-4/map.png")
    Traceback (most recent call last):
    ...
    routetrace.errors.ExportError: ROUTETRACE_CHROMIUM='no-such-browser' is not an executable; fix or unset it

    With Chromium installed:

    >>> render_static("exhibit-4/exhibit.html", png="exhibit-4/map.png",
    ...               pdf="exhibit-4/exhibit.pdf").blocked  # doctest: +SKIP
    []
    """
    with open_exhibit(html, timezone_id=timezone_id) as (page, rep):
        page.add_style_tag(content="*{transition:none!important;animation:none!important;caret-color:transparent!important}")
        page.evaluate("document.fonts.ready.then(() => true)")
        if png is not None:
            clip = page.evaluate(
                "(() => { const f = document.getElementById('rt-footer').getBoundingClientRect();"
                " return {x: 0, y: 0, width: document.documentElement.clientWidth,"
                " height: Math.ceil(f.bottom + window.scrollY)}; })()")
            page.screenshot(path=str(png), clip=clip, full_page=True, animations="disabled")
        if chronology_png is not None:
            page.locator("#rt-chronology").screenshot(path=str(chronology_png), animations="disabled")
        if pdf is not None:
            _print_pdf(page, Path(pdf))
    if pdf is not None:
        _fix_pdf_dates(Path(pdf))
    if rep.blocked or rep.page_errors or rep.console_errors:
        raise ExportError(f"the exhibit page was not clean offline: blocked {rep.blocked[:3]}, "
                          f"errors {(rep.page_errors + rep.console_errors)[:3]}", path=str(html))
    return rep
