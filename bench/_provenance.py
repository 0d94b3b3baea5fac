"""Provenance of a results file: the commit, command, machine load and measured code.

Every script that writes a figure under ``bench/results/`` or ``docs/validation.md`` puts
one machine-readable line in it::

    provenance: {"commit": "<40 hex>", "uncommitted": [...], "command": "...",
                 "measures": ["routes/corroborate.py", ...], "code_sha256": "<64 hex>",
                 "machine_load": "..."}

(as ``# provenance: ...`` in text files, ``<!-- provenance: ... -->`` in Markdown).
``measures`` are git pathspecs of the code the figures measure; ``uncommitted`` lists the
measured paths that differed from ``commit`` when the figures were made, and
``code_sha256`` fingerprints the measured files as they were (:func:`code_fingerprint`),
so figures made from a working tree and committed with it are recognised as current. ``tests/test_staleness.py`` fails when a
results file is older than the last commit that changed what it measures, unless the file
carries a ``STALE:`` first line (``bench/staleness.py --mark``).

Example
-------
>>> line = provenance_line(command="python bench/x.py", measures=["routes/"], style="text")
>>> parse_provenance(line)["measures"]
['routes/']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_LINE = re.compile(r"provenance: (\{.*\})")


def _git(*args: str, root: Path = ROOT, stdin: str | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                             check=True, timeout=60, input=stdin)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_fingerprint(measures: Sequence[str], *, root: Path = ROOT) -> str:
    """SHA-256 over the git blob ids of the measured files as they are on disk.

    The files are those git would see under ``measures`` (tracked or untracked, not
    ignored). Equal fingerprints mean byte-identical measured code, whatever the commits in
    between; ``"unknown"`` outside a git checkout.
    """
    listed = _git("ls-files", "-co", "--exclude-standard", "--", *measures, root=root)
    if listed is None:
        return "unknown"
    files = sorted(p for p in set(listed.splitlines()) if p and (root / p).is_file())
    blobs = (_git("hash-object", "--stdin-paths", root=root, stdin="\n".join(files) + "\n")
             if files else "")
    if blobs is None:
        return "unknown"
    text = "".join(f"{p}\0{b}\n" for p, b in zip(files, blobs.splitlines(), strict=True))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def head_commit() -> str:
    """The full hash of HEAD, or ``"unknown"`` outside a git checkout."""
    return _git("rev-parse", "HEAD") or "unknown"


def uncommitted(measures: Sequence[str]) -> list[str]:
    """Measured paths with changes not in HEAD (modified, staged or untracked)."""
    changed = _git("diff", "--name-only", "HEAD", "--", *measures) or ""
    new = _git("ls-files", "--others", "--exclude-standard", "--", *measures) or ""
    return sorted({p for p in (changed + "\n" + new).splitlines() if p})


def machine_load() -> str:
    """The 1/5/15-minute load averages and the CPU count, as a reader needs them."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def provenance(*, command: str, measures: Sequence[str], load: bool = True) -> dict[str, Any]:
    """The provenance record of a run about to be written (see the module doc)."""
    return {"commit": head_commit(), "uncommitted": uncommitted(measures), "command": command,
            "measures": list(measures), "code_sha256": code_fingerprint(measures),
            "machine_load": machine_load() if load else "not relevant (accuracy figures)"}


def provenance_line(*, command: str, measures: Sequence[str], style: str = "text",
                    load: bool = True) -> str:
    """The provenance line in ``style`` ``text`` (``# ...``) or ``markdown`` (a comment)."""
    body = "provenance: " + json.dumps(provenance(command=command, measures=measures, load=load),
                                       sort_keys=True)
    return f"<!-- {body} -->" if style == "markdown" else f"# {body}"


def parse_provenance(text: str) -> dict[str, Any] | None:
    """The provenance record stated in ``text``, or ``None`` when it states none."""
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            body = m.group(1).removesuffix(" -->")
            rec: dict[str, Any] = json.loads(body)
            return rec
    return None


def command_line() -> str:
    """The command that is running, as a user would type it from the repository root."""
    argv = [Path(sys.argv[0]).resolve().relative_to(ROOT).as_posix()
            if Path(sys.argv[0]).resolve().is_relative_to(ROOT) else sys.argv[0], *sys.argv[1:]]
    return "python " + " ".join(argv)
