"""A real local HTTP receiver for webhook tests: a thread running ``http.server`` on a free
port, checking every request's signature, able to fail (answer 500) or be down (the port
refuses connections) and come back on the same port."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    event_id: str
    event_type: str
    body: bytes
    signature: str  # the X-Leadscore-Signature header
    signed: bool  # the signature matched the receiver's secret
    status: int  # what the receiver answered

    @property
    def document(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


def verify(secret: str, header: str, body: bytes) -> bool:
    """The check the user guide shows: ``v1`` is HMAC-SHA256(secret, f"{t}.{body}")."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    """``failing`` makes it answer 500; :meth:`stop` makes the port refuse connections."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.secret = ""
        self.failing = False
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/leadscore"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if receiver.failing else 200
                item = Received(
                    event_id=self.headers.get("X-Leadscore-Event-Id", ""),
                    event_type=self.headers.get("X-Leadscore-Event-Type", ""),
                    body=body,
                    signature=self.headers.get("X-Leadscore-Signature", ""),
                    signed=verify(receiver.secret, self.headers.get("X-Leadscore-Signature", ""), body),
                    status=status,
                )
                with receiver._lock:
                    receiver.received.append(item)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def accepted(self) -> list[Received]:
        """The requests answered 200."""
        with self._lock:
            return [item for item in self.received if item.status == 200]
