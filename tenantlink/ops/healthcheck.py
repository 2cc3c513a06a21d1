"""The container's health check: `python -m tenantlink.ops.healthcheck` asks this instance's
/health/live/ where gunicorn listens (GUNICORN_BIND, as gunicorn.conf.py reads it: the first
address of the list), with the site's host name, which ALLOWED_HOSTS accepts. Exit 0 when it
answers 200. It does not set Django up: it runs every 30 s beside the portal."""

import http.client
import os
import re
import socket
import sys
from urllib.parse import urlsplit

# Listening on every address: asked on this machine's own.
ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "::1"}  # noqa: S104 (read, not bound)


def _host_and_port(address):
    """(host, port text) of host:port, [v6]:port or tcp://host:port; None for a host alone."""
    split = re.fullmatch(r"(\[[^\]]*\]|[^:]*):(.*)", address.removeprefix("tcp://"))
    return (split[1], split[2]) if split else None


def addresses(bind):
    """GUNICORN_BIND's addresses (separated by commas), as gunicorn.conf.py gives them to gunicorn:
    ValueError names the first whose port is not a number from 0 to 65535."""
    listed = [part.strip() for part in bind.split(",") if part.strip()]
    for address in listed:
        if address.startswith(("unix:", "fd://")):  # a socket file, or a descriptor the manager opened
            continue
        port = (_host_and_port(address) or ("", "0"))[1]
        if not (port.isascii() and port.isdigit() and int(port) <= 65535):
            raise ValueError(address)
    return listed


def target(bind):
    """("tcp", host, port) or ("unix", path, None) of the first address gunicorn listens on."""
    first = (addresses(bind) or ["127.0.0.1:8000"])[0]
    if first.startswith("unix:"):
        return "unix", first.removeprefix("unix:").removeprefix("//"), None
    if first.startswith("fd://"):
        raise SystemExit(f"GUNICORN_BIND is a file descriptor ({first}): give the health check an address.")
    host, port = _host_and_port(first) or (first.removeprefix("tcp://"), "8000")  # a host alone: gunicorn's 8000
    return "tcp", ANY_ADDRESS.get(host, host).removeprefix("[").removesuffix("]"), int(port)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def main():
    kind, where, port = target(os.environ.get("GUNICORN_BIND", "127.0.0.1:8000"))
    site = urlsplit(os.environ.get("SITE_URL", "http://localhost")).netloc or "localhost"
    connection = _UnixConnection(where, 4) if kind == "unix" else http.client.HTTPConnection(where, port, timeout=4)
    try:
        connection.request("GET", "/health/live/", headers={"Host": site})
        status = connection.getresponse().status
    except OSError as error:
        raise SystemExit(f"unhealthy: {error}") from None
    finally:
        connection.close()
    if status != 200:
        raise SystemExit(f"unhealthy: /health/live/ answered {status}")


if __name__ == "__main__":
    sys.exit(main())
