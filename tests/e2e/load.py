"""A bounded load loop: GET requests through the VPS's port 80 (or 443), counting every answer."""
import http.client
import re
import socket
import ssl
import threading
import time
from collections import Counter


class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the VPS on 127.0.0.1 for `domain`: its name is sent as SNI and checked against the
    certificate, as for a browser whose DNS points the domain at the VPS."""

    def __init__(self, domain: str, port: int, context: ssl.SSLContext, timeout: float = 30):
        super().__init__(domain, port, context=context, timeout=timeout)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class LoadLoop:
    def __init__(self, port: int, host: str, path: str = "/", threads: int = 2,
                 max_requests: int = 20000, max_seconds: float = 300, tls: ssl.SSLContext | None = None):
        self.port, self.host, self.path, self.tls = port, host, path, tls
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.bodies: list[str] = []
        self.versions: set[str] = set()  # the example app's version markers seen in 2xx pages
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    @property
    def count(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def failures(self) -> int:
        return len(self.errors) + sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return PinnedHTTPS(self.host, self.port, self.tls)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _get(self, connection) -> tuple[int, str]:
        connection.request("GET", self.path, headers={"Host": self.host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")

    def _loop(self):
        connection, reused = self._connection(), False
        while not self._stop.is_set() and self.count < self.max_requests and time.monotonic() < self.deadline:
            try:
                try:
                    status, body = self._get(connection)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    # A server may close an idle keep-alive connection just as a request goes out
                    # (nginx does on a graceful reload, as the old workers exit). Browsers and
                    # HTTP libraries send an idempotent GET again on a fresh connection; so do we,
                    # once. A fresh connection that fails still counts as an error.
                    connection.close()
                    connection = self._connection()
                    status, body = self._get(connection)
                reused = True
                with self._lock:
                    self.statuses[status] += 1
                    if not 200 <= status < 300:
                        self.bodies.append(body[:300])
                    else:
                        marker = re.search(r'<p id="version">([^<]+)</p>', body)
                        self.versions.add(marker.group(1) if marker else "")
            except (OSError, http.client.HTTPException) as error:
                with self._lock:
                    self.errors.append(repr(error))
                connection.close()
                connection, reused = self._connection(), False
        connection.close()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def wait_for(self, count: int, seconds: float = 120) -> None:
        """Let the loop run until it has sent `count` requests (bounded by `seconds`)."""
        deadline = time.monotonic() + seconds
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.1)

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def summary(self) -> str:
        return f"{self.count} requests, statuses {dict(self.statuses)}, errors {self.errors[:3]}, {self.bodies[:2]}"
