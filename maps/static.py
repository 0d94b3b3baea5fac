"""Static exhibits (PNG, A4 landscape PDF) rendered by Debian's Chromium through Playwright.

The browser is started with networking switched off in every way we can ask for, and every
request that is not a ``file:``/``data:`` URL is aborted and recorded, so a static exhibit
is exactly what the offline HTML shows. Screenshots are taken at a fixed viewport with a
fixed device scale and with animations off, so the same HTML gives the same pixels on the
same machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import ExportError

__all__ = ["BrowserReport", "CHROMIUM_ARGS", "chromium_path", "open_exhibit", "render_static"]

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
                 "--font-render-hinting=none", "--disable-lcd-text", "--force-color-profile=srgb",
                 "--hide-scrollbars"]
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str:
    """The Chromium executable: ``$ROUTETRACE_CHROMIUM``, else Debian's ``chromium``."""
    env = os.environ.get("ROUTETRACE_CHROMIUM")
    for cand in ([env] if env else []) + ["/usr/bin/chromium", "chromium", "chromium-browser"]:
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


@contextmanager
def open_exhibit(html: str | Path, *, timezone_id: str = "UTC", viewport: dict[str, int] | None = None,
                 wait_ready: bool = True, timeout_ms: float = 120_000) -> Iterator[tuple[Any, BrowserReport]]:
    """Open an exhibit HTML file in headless Chromium; yield ``(page, report)``.

    Every non-``file:``/``data:`` request is aborted and recorded in ``report.blocked``;
    console errors, uncaught page errors and dialogs (``alert`` etc.) are recorded too.
    """
    import time

    from playwright.sync_api import sync_playwright

    path = Path(html).resolve()
    rep = BrowserReport()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
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


def render_static(html: str | Path, png: str | Path | None = None, pdf: str | Path | None = None, *,
                  chronology_png: str | Path | None = None, timezone_id: str = "UTC") -> BrowserReport:
    """Write a PNG of the map page (title, map, footer), a PNG of the chronology table and an
    A4 landscape PDF (map page, then the chronology pages) of an exhibit HTML file.

    Raises
    ------
    ExportError
        When the page requested anything outside the file, or logged an error.
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
            page.emulate_media(media="print")
            # the print style hides the slider and layer control: let the page lay out and its
            # canvases redraw (two frames, as after loading) before printing
            page.evaluate("document.fonts.ready.then(() => new Promise(r => "
                          "requestAnimationFrame(() => requestAnimationFrame(r))))")
            page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True,
                     margin={"top": "8mm", "bottom": "8mm", "left": "8mm", "right": "8mm"})
    if pdf is not None:
        _fix_pdf_dates(Path(pdf))
    if rep.blocked or rep.page_errors or rep.console_errors:
        raise ExportError(f"the exhibit page was not clean offline: blocked {rep.blocked[:3]}, "
                          f"errors {(rep.page_errors + rep.console_errors)[:3]}", path=str(html))
    return rep
