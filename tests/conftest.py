"""Shared fixtures: a network guard for every test, and the real-data corpus."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to open a network connection."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that connects anywhere but a local Unix socket or loopback it owns.

    Tests marked ``allow_loopback`` (the browser and Dask tests, which talk to a local
    Chromium or scheduler) may connect to 127.0.0.1/::1 only.
    """
    real_connect = socket.socket.connect
    allow_loopback = request.node.get_closest_marker("allow_loopback") is not None

    def guarded(self: socket.socket, address: object) -> object:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        host = address[0] if isinstance(address, tuple) else address
        if allow_loopback and host in ("127.0.0.1", "::1", "localhost"):
            return real_connect(self, address)
        raise NetworkBlocked(f"test tried to open a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: (_ for _ in ()).throw(NetworkBlocked(f"create_connection{a}")))
    yield


def realdata(sub: str = "") -> Path:
    """The real-data folder (or a sub-folder); skip the test with a reason when absent."""
    p = REALDATA / sub
    if not p.exists():
        pytest.skip(f"real-data corpus not found at {p} (it lives in ../shared/realdata beside "
                    "the project; these tests only run where it is present)")
    return p


@pytest.fixture
def realdata_dir() -> Path:
    """The ../shared/realdata folder, or skip with a reason."""
    return realdata()
