"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, `leadscore serve`
processes, and static web sites (see ``browsing.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from browsing import CHROMIUM, LIBRARY, ROOT, Site, free_port, handler
from playwright.sync_api import Browser, Playwright, sync_playwright


@pytest.fixture
def make_site() -> Iterator[Callable[[], Site]]:
    """A factory of :class:`Site` (each one a new origin), all stopped after the test."""
    if not LIBRARY.is_file():
        pytest.fail(f"{LIBRARY.relative_to(ROOT)} is missing: run `make js` (make test does)")
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def make() -> Site:
        config: dict[str, Any] = {}
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(config))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return Site(server, config)

    yield make
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (``make chromium`` installs it); never a downloaded browser build."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (make test does)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
    yield browser
    browser.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Starts `leadscore serve` (a real uvicorn process) on a database: ``serve(url)`` → base URL."""
    processes: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(database_url: str) -> str:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        log = log_path.open("w")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "LEADSCORE_DATABASE_URL": database_url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # a loaded CI machine can be slow to import everything
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return base
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + log_path.read_text()) from None
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
    for log in logs:
        log.close()
