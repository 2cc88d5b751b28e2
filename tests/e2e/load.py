"""The strict load check every zero-downtime test uses.

48 clients (at least 16), half of them opening a new connection for every request, over HTTP
and HTTPS, paced to a steady total rate; 48 keep the rate when a busy machine slows answers.
(With HTTPS on, a plain HTTP request's right answer is the proxy's 308 redirect to HTTPS; every
HTTPS request must get the page.) Every request is recorded with its start and end time; a
request that fails is a failure (nothing is retried), and so is one slower than the bound. Like
any browser, a client does not send a request on a kept-alive connection the server has already
closed; it opens a new one (no request was lost, so that is not a retry). The test
tells the check when the change under test started, when it reported its switch done and when it
ended, and the check proves that load covered all of it and that no request started after the
switch saw the old release.
"""
from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass

class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the VPS on 127.0.0.1 for `domain`: its name is sent as SNI and checked against the
    certificate, as for a browser whose DNS points the domain at the VPS."""

    def __init__(self, domain: str, port: int, context: ssl.SSLContext, timeout: float = 30):
        super().__init__(domain, port, context=context, timeout=timeout)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_https(info: dict, host: str, path: str = "/") -> tuple[int, str]:
    """GET a page over HTTPS as a browser would (`info` from the https fixture)."""
    connection = PinnedHTTPS(host, info["https_port"], info["tls"])
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


# Every figure the run measured (load checks, how long a recovery took), shown together at the end
# of the run by conftest.py; README quotes them.
FIGURES: list[str] = []


def figure(line: str) -> str:
    FIGURES.append(line)
    return line


VERSION = re.compile(r'<p id="version">([^<]+)</p>')
MAINTENANCE_PAGE = "Service Unavailable"    # in the body of Laravel's 503 page (php artisan down)


@dataclass(frozen=True)
class Request:
    started: float          # time.monotonic()
    ended: float
    client: int
    tls: bool
    fresh: bool             # a new connection for this request
    status: int             # 0 when no answer came
    version: str            # the example app's version marker in a 2xx page
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def page(self) -> bool:
        """The app's page came back (not the redirect to HTTPS)."""
        return not self.error and 200 <= self.status < 300


def closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or is broken)."""
    if connection.sock is None:
        return True
    readable, _, _ = select.select([connection.sock], [], [], 0)
    return bool(readable)


class StrictLoad:
    def __init__(self, info: dict, host: str, path: str = "/", *, tls: ssl.SSLContext | None = None,
                 clients: int = 48, rate: float = 125.0, max_seconds: float = 300, timeout: float = 10,
                 maintenance_ok: bool = False):
        assert clients >= 16 and rate >= 100, "the strict check is at least 16 clients and 100 requests/s"
        self.http_port, self.https_port = info["http_port"], info.get("https_port")
        self.host, self.path, self.context, self.timeout = host, path, tls, timeout
        # Laravel's maintenance page (503 Service Unavailable) is an answer, not an error: for a change
        # made in maintenance on purpose. Any other 5xx still is one.
        self.maintenance_ok = maintenance_ok
        self.interval = clients / rate            # each client's pause between request starts
        self.deadline = time.monotonic() + max_seconds
        self.requests: list[Request] = []
        self.replaced = 0                         # idle connections the server closed, not reused
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(number,), daemon=True)
                         for number in range(clients)]

    # ---- clients ----------------------------------------------------------------------------

    def _connection(self, tls: bool) -> http.client.HTTPConnection:
        if tls:
            return PinnedHTTPS(self.host, self.https_port, self.context, timeout=self.timeout)
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=self.timeout)

    def _client(self, number: int) -> None:
        fresh = number % 2 == 1                       # half the clients: a new connection every time
        tls = self.context is not None and number % 4 >= 2   # half of each kind over HTTPS
        connection = None
        next_start = time.monotonic() + self.interval * number / len(self._threads)
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            pause = next_start - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break
            next_start += self.interval
            started = time.monotonic()
            status, version, error = 0, "", ""
            try:
                if connection is not None and not fresh and closed_by_server(connection):
                    # As a browser or urllib3 does before reusing a kept-alive connection: one
                    # the server closed while it was idle (nginx does at a reload) is not used.
                    # No request was sent on it, so this is not a retry.
                    connection.close()
                    connection = None
                    with self._lock:
                        self.replaced += 1
                if connection is None or fresh:
                    connection = self._connection(tls)
                connection.request("GET", self.path, headers={"Host": self.host})
                response = connection.getresponse()
                body = response.read().decode(errors="replace")
                status = response.status
                marker = VERSION.search(body) if 200 <= status < 300 else None
                version = marker.group(1) if marker else ""
                if self.context is not None and not tls:     # HTTPS is on: HTTP is redirected to it
                    location = response.getheader("Location", "")
                    if status != 308 or location != f"https://{self.host}{self.path}":
                        error = f"{status} {location}: {body[:200]}"
                elif self.maintenance_ok and status == 503 and MAINTENANCE_PAGE in body:
                    pass
                elif not 200 <= status < 300:
                    error = body[:200]
            except (OSError, http.client.HTTPException) as failure:
                error = repr(failure)
                if connection is not None:
                    connection.close()
                connection = None
            if fresh and connection is not None:
                connection.close()
                connection = None
            with self._lock:
                self.requests.append(Request(started, time.monotonic(), number, tls, fresh, status, version, error))
        if connection is not None:
            connection.close()

    def __enter__(self) -> "StrictLoad":
        self.began = time.monotonic()
        for thread in self._threads:
            thread.start()
        self.wait_for(len(self._threads) * 4)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.ended = time.monotonic()

    def settle(self, after: float, seconds: float = 30) -> None:
        """Until every client has started a request after `after` (the end of the change under test)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                clients = {r.client for r in self.requests if r.started > after}
            if len(clients) == len(self._threads):
                return
            time.sleep(0.05)

    def wait_for(self, count: int, seconds: float = 120) -> None:
        """Until `count` requests have been answered (bounded by `seconds`); waits on the condition."""
        deadline = time.monotonic() + seconds
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    # ---- what the test checks ---------------------------------------------------------------

    def during(self, start: float, end: float) -> list[Request]:
        return [r for r in self.requests if r.ended >= start and r.started <= end]

    def report(self, start: float, end: float, name: str) -> str:
        window = self.during(start, end)
        latencies = sorted(r.seconds for r in window) or [0.0]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rate = len(window) / max(end - start, 1e-9)
        return (f"load during {name}: {len(window)} requests in {end - start:.1f} s ({rate:.0f}/s, "
                f"{sum(r.tls for r in window)} over HTTPS, {sum(r.fresh for r in window)} on new connections), "
                f"{sum(not r.ok for r in window)} failed, p50 {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
                + (f"; {self.replaced} idle connection(s) the server had closed were not reused" if self.replaced else ""))

    def check(self, start: float, end: float, *, switched: float | None = None, new: str | None = None,
              old: set[str] | frozenset[str] = frozenset(), bound: float = 1.0, name: str = "the change",
              min_rate: float = 100, max_gap: float = 0.5) -> str:
        """Assert zero failures, latency within `bound`, coverage of [start, end], and, after
        `switched`, only the `new` release. Returns the report line (print it)."""
        line = self.report(start, end, name)
        window = self.during(start, end)
        failed = [r for r in window if not r.ok]
        assert not failed, f"{line}; failures: {[(round(r.started - start, 2), r.status, r.error) for r in failed[:5]]}"
        slow = [r for r in window if r.seconds > bound]
        assert not slow, f"{line}; {len(slow)} slower than {bound} s, the slowest {max(r.seconds for r in slow):.2f} s"
        starts = sorted(r.started for r in self.requests)
        assert starts and starts[0] <= start and starts[-1] >= end, f"{line}; load did not span the whole change"
        inside = [t for t in starts if start <= t <= end]
        gaps = [b - a for a, b in zip([start, *inside], [*inside, end])]
        assert max(gaps) <= max_gap, f"{line}; no request started for {max(gaps):.2f} s during the change"
        assert len(window) / max(end - start, 1e-9) >= min_rate, f"{line}; the load fell below {min_rate} requests/s"
        if self.context is not None:
            assert any(r.tls for r in window) and any(not r.tls for r in window), line
        if switched is not None and new is not None:
            stale = [r for r in self.requests if r.started >= switched and r.page and r.version != new]
            assert not stale, f"{line}; {len(stale)} request(s) after the switch saw {stale[0].version!r}, not {new!r}"
        if old:
            seen = {r.version for r in window if r.page}
            assert seen <= set(old) | ({new} if new else set()), f"{line}; unexpected versions {seen}"
        return figure(line)
