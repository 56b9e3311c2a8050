"""A real S3 API on 127.0.0.1 for tests: moto's ThreadedMotoServer, and a fault proxy in front of it.

The proxy forwards every request to moto, counts them, and injects faults by rule: 503 SlowDown,
500 InternalError, 403 AccessDenied, or a connection reset, for requests matching a method and a path
pattern, a given number of times (or forever).
"""
from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.server import ThreadedMotoServer

_ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "403": (403, "AccessDenied", "Access Denied"),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class MotoS3:
    """moto's server on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")).read()

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Rule:
    fault: str                 # "503" | "500" | "403" | "reset"
    method: str = "PUT"
    path: str = ".*"           # regex on the request path
    times: int | None = None   # None: every matching request
    hits: int = 0


@dataclass
class FaultProxy:
    """Forwards to `upstream`; counts requests; applies the first matching rule with uses left."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    requests: int = 0
    faults: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        proxy = self
        up_host, up_port = self.upstream.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip() or b"0", 16)
                        chunk = self.rfile.read(size + 2)
                        raw += chunk
                        if size == 0:
                            while chunk not in (b"\r\n", b""):  # trailers
                                chunk = self.rfile.readline()
                                raw += chunk
                            return raw
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                rule = proxy._match(self.command, self.path)
                if rule is not None and rule.fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if rule is not None:
                    status, code, message = _ERRORS[rule.fault]
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                               f"<Message>{message}</Message><RequestId>proxy</RequestId></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(up_host, int(up_port), timeout=30)
                headers = {k: v for k, v in self.headers.items()}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # resets and clients hanging up after a fault are the point, not news

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _match(self, method: str, path: str) -> Rule | None:
        with self.lock:
            self.requests += 1
            for rule in self.rules:
                if rule.method == method and re.search(rule.path, path) and (rule.times is None or rule.hits < rule.times):
                    rule.hits += 1
                    self.faults += 1
                    return rule
        return None

    def reset_counts(self, rules: list[Rule] | None = None) -> None:
        with self.lock:
            self.requests = self.faults = 0
            self.rules = list(rules or [])

    def stop(self) -> None:
        self.httpd.shutdown()


# Dummy credentials with unique values, so a test can prove they never leak into logs or outputs.
ACCESS_KEY = "AKIAYOLOLAKE7Q3Z9TEST"
SECRET_KEY = "yololake-dummy-secret-5c1d0e7f93a2b4"


def set_dummy_credentials(environ) -> None:
    """botocore's standard chain reads these; Spark's Python workers inherit them from the JVM's start."""
    environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    environ["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    environ["AWS_DEFAULT_REGION"] = "us-east-1"
    environ.pop("AWS_PROFILE", None)
    environ.pop("AWS_SESSION_TOKEN", None)
