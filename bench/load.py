"""Clients that drive the portal through its real pages, several at once, each in a process of its
own (so that the clients' Python does not queue behind one interpreter lock).

Two kinds: browsers (tests/e2e/microsoft_steps.Visitor: the sign-in pages, the Microsoft round
trip through the emulator) and a bare keep-alive HTTP/1.1 loop for page rates, whose own CPU cost
per request is a few microseconds, so that it takes as little as possible from the portal on a
machine that runs both."""

import contextlib
import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.e2e.conftest import Person
from tests.e2e.microsoft_steps import MicrosoftAccount, Visitor

PORTAL_COOKIES = ("sessionid", "csrftoken", "messages")


@dataclass
class Site:
    url: str


def _forget_portal(visitor):
    """A browser back at the sign-in page with no portal session; Microsoft's cookie stays."""
    for name in PORTAL_COOKIES:
        visitor.http.cookies.delete(name)


def password_signin(site, people, authenticator):
    """Sign-in page, password, code page, code, portal page: a new browser each time."""
    person = people.pop(0)
    people.append(person)
    visitor = Visitor(site)
    try:
        page = visitor.sign_in_with_password(person, authenticator)
        assert page.url.path == "/portal/" and page.status_code == 200, page.url
    finally:
        visitor.close()
    return 5


class MicrosoftBrowser:
    """One person's browser, already signed in at Microsoft: every Sign in with Microsoft is
    redirects only (sign-in page, the button, Microsoft, the callback, the portal page)."""

    def __init__(self, site, account):
        self.visitor, self.account = Visitor(site), account
        self.signin()  # the first one signs in at Microsoft (and accepts the permissions)

    def signin(self):
        _forget_portal(self.visitor)
        page = self.visitor.microsoft_signin(self.account)
        assert page.url.path == "/portal/" and page.status_code == 200, (page.url, page.text[:300])
        return 4


class KeepAlive:
    """GET one path again and again on one connection, with the browser's cookies."""

    def __init__(self, url, path, cookies):
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: tenantlink-bench\r\n"
            f"Accept: text/html\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
        self.sock = None

    def get(self):
        reused = self.sock is not None
        if not reused:
            self._connect()
        try:
            self.sock.sendall(self.request)
            self._receive()
        except OSError:
            if not reused:
                raise
            # The server closed the idle connection (its keep-alive ran out): as a browser, retry
            # once on a new one.
            self._connect()
            self.sock.sendall(self.request)
            self._receive()
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(b":", 1) for line in lines[1:])
        headers = {key.strip().lower(): value.strip() for key, value in headers.items()}
        length = int(headers[b"content-length"])
        while len(self.buffer) < length:
            self._receive()
        self.buffer = self.buffer[length:]
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        if status != 200:
            raise AssertionError(f"{self.request.split()[1].decode()} answered {status}")
        return 1

    def _connect(self):
        self.close()
        self.sock = socket.create_connection(self.address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _receive(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the portal closed the connection")
        self.buffer += chunk

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# --- Running clients at once -------------------------------------------------------------------


def _client(make, duration, budget, ready, go, results, index, latencies):
    try:
        action = make()
        ready.wait()
        go.wait()
        deadline = time.monotonic() + (duration or 3600)
        requests = operations = 0
        timings = []
        while time.monotonic() < deadline and requests < budget:
            started = time.perf_counter()
            requests += action()
            if latencies:
                timings.append(time.perf_counter() - started)
            operations += 1
        results[index] = (operations, requests, time.monotonic(), timings, None)
    except Exception as error:  # noqa: BLE001 (reported by the parent)
        results[index] = (0, 0, time.monotonic(), [], f"{error.__class__.__name__}: {error}")
        ready.abort()


@dataclass
class Run:
    operations: int
    requests: int
    seconds: float
    cpu: float  # the portal workers' CPU seconds during the run
    latencies: list

    @property
    def rate(self):
        return self.operations / self.seconds

    @property
    def cpu_per_operation(self):
        return self.cpu / self.operations


def run_clients(makers, duration, read_cpu, latencies=False, budget=None):
    """Run each maker's action in a process of its own for `duration` seconds, all starting
    together after every client is set up (or until the clients made `budget` requests between
    them); the portal's CPU is read just before and after."""
    context = multiprocessing.get_context("fork")
    manager = context.Manager()
    results = manager.dict()
    share = -(-budget // len(makers)) if budget else float("inf")
    ready, go = context.Barrier(len(makers) + 1), context.Event()
    processes = [
        context.Process(target=_client, args=(make, duration, share, ready, go, results, index, latencies))
        for index, make in enumerate(makers)
    ]
    for process in processes:
        process.start()
    # A client that fails while setting up breaks the barrier; its error is raised below.
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait(timeout=120)
    cpu_before, started = read_cpu(), time.monotonic()
    go.set()
    for process in processes:
        process.join()
    cpu = read_cpu() - cpu_before
    collected = [results.get(index) for index in range(len(makers))]
    manager.shutdown()
    errors = [result[4] for result in collected if result is None or result[4]]
    if errors:
        raise RuntimeError(f"a benchmark client failed: {errors[0]}")
    ended = max(result[2] for result in collected)
    return Run(
        operations=sum(result[0] for result in collected),
        requests=sum(result[1] for result in collected),
        seconds=ended - started,
        cpu=cpu,
        latencies=[timing for result in collected for timing in result[3]],
    )


def run_interleaved(phases, duration, read_cpu, rounds=3):
    """Run each phase's clients for `duration` seconds in all, as `rounds` turns taken in order
    (a, b, c, a, b, c, …), so that figures compared with each other meet the same machine: on a
    shared virtual machine the speed drifts within minutes. {name: Run of all its turns}."""
    turns = {name: [] for name in phases}
    for _ in range(rounds):
        for name, makers in phases.items():
            turns[name].append(run_clients(makers, duration / rounds, read_cpu))
    return {name: merged(runs) for name, runs in turns.items()}


def merged(runs):
    """One Run of several turns."""
    return Run(
        operations=sum(run.operations for run in runs),
        requests=sum(run.requests for run in runs),
        seconds=sum(run.seconds for run in runs),
        cpu=sum(run.cpu for run in runs),
        latencies=[timing for run in runs for timing in run.latencies],
    )


def person(username, password, seed):
    return Person(username, username, "", password, seed)


def microsoft_account(upn, oid, tid):
    return MicrosoftAccount(upn, oid, tid, upn)
