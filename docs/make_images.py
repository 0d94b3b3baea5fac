"""Regenerate the exhibit images in docs/img from the sample case.

    .venv/bin/python docs/make_images.py

Runs ``routetrace demo --out demo-out`` (the bundled, fictional sample case) in a temporary
folder with ``SOURCE_DATE_EPOCH=1761000000``, then writes:

* ``docs/img/exhibit-sample.png``: the HTML exhibit as it opens (Chromium screenshot, the
  ``exhibit.png`` of the exhibit set), shown in README.md;
* ``docs/img/exhibit-page-overview.png``, ``exhibit-page-detail.png`` and
  ``exhibit-page-chronology.png``: pages of ``exhibit.pdf`` (the overview, the detail page
  of the group with the most stops, the first chronology page) rasterised by poppler's ``pdftoppm`` at 100 dpi;
* ``docs/img/exhibit-pages.txt``: the commit, the command and which PDF page each image is.

Needs Debian's chromium and poppler-utils (as the tests do).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMG = HERE / "img"


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    # the images themselves are this script's output: their own changes do not count
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)docs/img")
    return head + (" (with uncommitted changes)" if dirty else "")


def _page_texts(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")


def _biggest_detail(pages: list[str]) -> int | None:
    """The detail page of the group with the most stops (the first of equals)."""
    import re

    best, best_n = None, 0
    for k, text in enumerate(pages, 1):
        m = re.search(r"Detail [A-Z]+: stops? ([0-9, \u2013]+)", text)
        if not m:
            continue
        n = 0
        for part in m.group(1).replace(" ", "").strip(",").split(","):
            lo, _, hi = part.partition("\u2013")
            n += int(hi) - int(lo) + 1 if hi else 1
        if n > best_n:
            best, best_n = k, n
    return best


def _raster(pdf: Path, page: int, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "p"
        subprocess.run(["pdftoppm", "-r", "100", "-png", "-singlefile", "-f", str(page), "-l", str(page),
                        str(pdf), str(stem)], check=True)
        shutil.copyfile(stem.with_suffix(".png"), out)


def main() -> int:
    """Write the images and their note; return the exit status."""
    os.environ["SOURCE_DATE_EPOCH"] = "1761000000"
    from routetrace.app.demo import run_demo

    commit = _commit()  # before writing: the images are outputs of this commit
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        # run as the README does (`routetrace demo --out demo-out`): the evidence paths the
        # footer prints are then the same on every run, and so are the images
        os.chdir(tmp)
        try:
            run_demo(Path("demo-out"))
        finally:
            os.chdir(cwd)
        ex = Path(tmp) / "demo-out" / "exhibit"
        pdf = ex / "exhibit.pdf"
        pages = _page_texts(pdf)
        overview = next(k for k, t in enumerate(pages, 1) if "Overview: the whole journey" in t)
        detail = _biggest_detail(pages) or overview
        chrono = next(k for k, t in enumerate(pages, 1) if "Chronology \u00b7 Exhibit" in t)
        IMG.mkdir(exist_ok=True)
        shutil.copyfile(ex / "exhibit.png", IMG / "exhibit-sample.png")
        for name, page in (("overview", overview), ("detail", detail), ("chronology", chrono)):
            _raster(pdf, page, IMG / f"exhibit-page-{name}.png")
        n_pages = len([t for t in pages if t.strip()])
    (IMG / "exhibit-pages.txt").write_text(
        f"Written by `python docs/make_images.py` at commit {commit} from `routetrace demo` "
        "(SOURCE_DATE_EPOCH=1761000000).\n"
        f"exhibit-sample.png: exhibit.png (the HTML exhibit as it opens, 1280 px wide).\n"
        f"exhibit-page-overview.png: exhibit.pdf page {overview} of {n_pages}.\n"
        f"exhibit-page-detail.png: exhibit.pdf page {detail} of {n_pages}.\n"
        f"exhibit-page-chronology.png: exhibit.pdf page {chrono} of {n_pages}.\n", encoding="utf-8")
    print((IMG / "exhibit-pages.txt").read_text(encoding="utf-8"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
