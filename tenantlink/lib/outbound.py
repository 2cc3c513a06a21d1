"""HTTP clients for calls to other services (Microsoft), with a deadline for the whole exchange.

httpx's timeouts bound each step (connecting, each read, each write), not the whole: a server
that sends its headers a byte a second never trips them, and would hold the request's thread for
as long as it likes. Inside `deadline(seconds)`, every read, write and connection of a client
made by `client()` gets at most what is left of the time, and none is started after it ran out
(httpx then raises its ReadTimeout, WriteTimeout or ConnectTimeout, as for any timeout). Looking
up the server's name is the system resolver's and not bounded here (a local resolver answers or
gives up within seconds).
"""

import contextlib
import threading
import time

import httpcore
import httpx

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds):
    """Every request of this thread made inside ends within `seconds` from now (or sooner, inside
    another deadline that ends sooner)."""
    previous = getattr(_local, "at", None)
    at = time.monotonic() + seconds
    _local.at = at if previous is None else min(previous, at)
    try:
        yield
    finally:
        _local.at = previous


def _left(timeout, error):
    """The time a network step may take: its own timeout, and no more than what is left."""
    at = getattr(_local, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream):
        self._stream = stream

    def read(self, max_bytes, timeout=None):
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        return self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self):
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds):
        self._backend.sleep(seconds)


def client(**options):
    """An httpx.Client (with `options`) whose connections keep `deadline`. httpx offers no way to
    give its transports a network backend, so the one of each connection pool it made (direct,
    and through the proxies of the environment) is wrapped after the fact; a test checks that
    this still takes hold with the pinned httpx and httpcore."""
    made = httpx.Client(**options)
    for transport in [made._transport, *made._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if pool is not None and not isinstance(pool._network_backend, _Backend):
            pool._network_backend = _Backend(pool._network_backend)
    return made
