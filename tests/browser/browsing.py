"""The browser tests' helpers: small static web sites on their own origins serving the test
pages (``site/``) and Segment's browser library from ``build/js`` (installed by ``make js``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import Browser

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LIBRARY = ROOT / "build" / "js" / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd" / "index.js"
PAGES = Path(__file__).parent / "site"
ROUTES = {"/": "index.html", "/pricing": "pricing.html", "/site.js": "site.js"}


@dataclass
class Site:
    """A web site on its own origin (``http://127.0.0.1:PORT``) serving the test pages; its
    ``config`` becomes ``window.leadscoreConfig`` on every page."""

    server: ThreadingHTTPServer
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def handler(config: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/config.js":
                body, kind = b"window.leadscoreConfig = " + orjson.dumps(config) + b";", "text/javascript"
            elif path == "/analytics-next/index.js":
                body, kind = LIBRARY.read_bytes(), "text/javascript"
            elif path in ROUTES:
                name = ROUTES[path]
                body, kind = (PAGES / name).read_bytes(), "text/html" if name.endswith(".html") else "text/javascript"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            pass

    return Handler


def desktop_user_agent(browser: Browser) -> str:
    """Chrome's ordinary user agent: headless Chromium says "HeadlessChrome", which the
    example model rightly treats as machine activity (stored, not scored)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
