"""A Microsoft (or something in its place) that answers slowly or hugely, on a real socket: every
call ends within ENTRA_HTTP_TIMEOUT, whatever trickles in, and a compressed answer is never
unpacked into memory."""

import gzip
import socket
import threading
import time

import pytest
from django.apps import apps as django_apps

from tenantlink.lib import outbound
from tenantlink.sso import microsoft
from tenantlink.sso.microsoft import MicrosoftError

JSON = b"Content-Type: application/json\r\n"


class SlowServer:
    """Answers each connection with `answer` (bytes), `pace` seconds between each of its bytes."""

    def __init__(self, answer, pace=0.0):
        self.answer, self.pace, self.requests = answer, pace, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _address = self.listener.accept()
            except OSError:
                continue
            with connection:
                self.requests.append(connection.recv(65536))
                try:
                    if not self.pace:
                        connection.sendall(self.answer)
                    for byte in self.answer if self.pace else b"":
                        if self.stopped.wait(self.pace):
                            break
                        connection.sendall(bytes([byte]))
                except OSError:
                    pass  # the portal gave up and closed it

    def stop(self):
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def real_client(settings, monkeypatch):
    """The portal's own HTTP client, not the fake Microsoft's, with a one-second timeout."""
    settings.ENTRA_HTTP_TIMEOUT = 1
    monkeypatch.setattr(microsoft, "_client", None)
    yield
    if microsoft._client is not None:
        microsoft._client.close()


@pytest.fixture
def server():
    servers = []

    def start(answer, pace=0.0):
        servers.append(SlowServer(answer, pace))
        return servers[-1]

    yield start
    for each in servers:
        each.stop()


def failure(url):
    with pytest.raises(MicrosoftError) as caught:
        microsoft.exchange("GET", url)
    return caught.value


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\n" + JSON + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n{}",  # headers, a byte at a time
        b"HTTP/1.1 200 OK\r\n" + JSON + b"Content-Length: 300\r\n\r\n" + b" " * 298 + b"{}",  # the body so
    ],
    ids=["headers", "body"],
)
def test_an_answer_that_trickles_in_ends_within_the_timeout(real_client, server, answer):
    slow = server(answer, pace=0.02)  # 200 bytes take 4 s, each byte well within the read timeout
    started = time.monotonic()

    error = failure(slow.url + "/organizations/v2.0/.well-known/openid-configuration")

    assert (error.reason, error.code) == ("unavailable", "timeout")
    assert time.monotonic() - started < 1.8


def test_a_compressed_answer_is_refused_without_unpacking_it(real_client, server):
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of JSON white space in about 50 KB
    answer = b"HTTP/1.1 200 OK\r\n" + JSON + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    compressed = server(answer + bomb)

    error = failure(compressed.url + "/organizations/discovery/v2.0/keys")

    assert (error.reason, error.code) == ("bad_answer", "encoded answer")
    assert b"accept-encoding: identity" in compressed.requests[0].lower()


def test_an_answer_in_time_is_read_as_before(real_client, server):
    fine = server(b"HTTP/1.1 200 OK\r\n" + JSON + b'Content-Length: 11\r\n\r\n{"keys":[]}')
    assert microsoft.exchange("GET", fine.url + "/organizations/discovery/v2.0/keys")[:2] == (200, {"keys": []})


def test_the_deadline_takes_hold_in_every_connection_pool_of_the_client(monkeypatch):
    """httpx gives no public way to set a network backend: outbound.client wraps its pools'."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    made = outbound.client(timeout=1)
    pools = [made._transport._pool, *(transport._pool for transport in made._mounts.values() if transport)]
    assert len(pools) == 2
    assert all(isinstance(pool._network_backend, outbound._Backend) for pool in pools)
    made.close()


def test_a_slow_microsoft_leaves_the_process_threads_for_everything_else(real_client, server, monkeypatch):
    """Only so many threads of a process wait on Microsoft at once (here one); the next call waits
    a moment for its turn and is then told Microsoft is not answering, so its thread is free again
    for other requests instead of waiting on Microsoft too."""
    monkeypatch.setattr(microsoft, "_slots", threading.BoundedSemaphore(1))
    monkeypatch.setattr(microsoft, "CALL_SLOT_WAIT", 0.2)
    slow = server(b"HTTP/1.1 200 OK\r\n" + JSON + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n{}", pace=0.02)
    first = threading.Thread(target=failure, args=(slow.url + "/organizations/v2.0/.well-known/openid-configuration",))
    first.start()
    time.sleep(0.1)
    started = time.monotonic()

    error = failure(slow.url + "/organizations/discovery/v2.0/keys")

    assert error.reason == "busy"
    assert time.monotonic() - started < 0.6
    first.join()
    # Once the slow call is over, the next one is asked again.
    fine = server(b"HTTP/1.1 200 OK\r\n" + JSON + b'Content-Length: 11\r\n\r\n{"keys":[]}')
    assert microsoft.exchange("GET", fine.url + "/organizations/discovery/v2.0/keys")[0] == 200


def test_once_microsoft_is_slow_the_next_call_is_refused_at_once(real_client, server, monkeypatch):
    """A call waiting for its turn holds the thread left for everything else: while the calls
    under way show Microsoft to be slow, none waits."""
    monkeypatch.setattr(microsoft, "_slots", threading.BoundedSemaphore(1))
    monkeypatch.setattr(microsoft, "CALL_SLOT_WAIT", 5)
    monkeypatch.setattr(microsoft, "SLOW_CALL", 0.2)
    slow = server(b"HTTP/1.1 200 OK\r\n" + JSON + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n{}", pace=0.02)
    first = threading.Thread(target=failure, args=(slow.url + "/organizations/v2.0/.well-known/openid-configuration",))
    first.start()
    time.sleep(0.4)  # the call under way has waited on Microsoft for longer than SLOW_CALL
    started = time.monotonic()

    error = failure(slow.url + "/organizations/discovery/v2.0/keys")

    assert error.reason == "busy"
    assert time.monotonic() - started < 0.1
    first.join()


def test_while_microsoft_answers_as_usual_a_call_waits_for_its_turn(real_client, server, monkeypatch):
    monkeypatch.setattr(microsoft, "_slots", threading.BoundedSemaphore(1))
    answer = b"HTTP/1.1 200 OK\r\n" + JSON + b'Content-Length: 11\r\n\r\n{"keys":[]}'
    usual = server(answer, pace=0.004)  # the whole answer in about 0.3 s: under SLOW_CALL
    fine = server(answer)
    first = threading.Thread(target=microsoft.exchange, args=("GET", usual.url + "/organizations/discovery/v2.0/keys"))
    first.start()
    time.sleep(0.05)

    assert microsoft.exchange("GET", fine.url + "/organizations/discovery/v2.0/keys")[:2] == (200, {"keys": []})
    first.join()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALL_PROXY", "ftp://proxy.example"),
        ("HTTPS_PROXY", "socks5://proxy.example:1080"),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
    ],
)
def test_proxy_or_certificate_settings_that_cannot_work_turn_single_sign_on_off(
    real_client, settings, monkeypatch, caplog, variable, value
):
    """Said at start with the variable's name (never its value: a proxy's may hold a password),
    and Microsoft sign-in is then not offered, rather than failing after the person signed in."""
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(microsoft, "ENVIRONMENT_PROBLEM", "")
    settings.ENTRA_CONFIGURATION_PROBLEM = ""  # configured: only the environment stands in the way
    django_apps.get_app_config("sso").ready()  # as at start

    assert not microsoft.is_configured()
    [line] = [record for record in caplog.records if "Single sign-on with Microsoft is off" in record.message]
    assert "proxy and certificate settings" in line.message
    assert variable in line.message.split("set here: ")[1].rstrip(".").split(", ")
    assert value not in line.message
    # Were Microsoft asked all the same: "could not be reached", no crash.
    assert (failure("https://login.example/organizations/v2.0/.well-known/openid-configuration").code) == "environment"
