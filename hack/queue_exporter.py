"""The lab's queue exporter: `PUT /queues/<name>` with a number sets overspill_lab_queue_depth{queue=<name>};
`GET /metrics` serves it to Prometheus. Listens on loopback only."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

registry = CollectorRegistry()
depth = Gauge("overspill_lab_queue_depth", "Queue depth set by tests", ["queue"], registry=registry)


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
        elif self.path == "/healthz":
            self._send(200, b"ok")
        else:
            self._send(404, b"not found\n")

    def do_PUT(self) -> None:
        if not self.path.startswith("/queues/") or len(self.path) <= len("/queues/"):
            self._send(404, b"PUT /queues/<name> with a number as the body\n")
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode().strip()
        try:
            value = float(raw)
        except ValueError:
            self._send(400, f"body must be a number, got {raw!r}\n".encode())
            return
        depth.labels(queue=self.path.removeprefix("/queues/")).set(value)
        self._send(200, b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
