"""The container's health check finds the instance wherever GUNICORN_BIND puts it."""

import http.server
import os
import socketserver
import subprocess
import sys
import threading

import pytest
from django.conf import settings

from tenantlink.ops.healthcheck import target


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("0.0.0.0:8000", ("tcp", "127.0.0.1", 8000)),
        ("0.0.0.0:8000,unix:/run/t.sock", ("tcp", "127.0.0.1", 8000)),  # the first of several
        ("0.0.0.0:8000,", ("tcp", "127.0.0.1", 8000)),
        ("[::]:9000", ("tcp", "::1", 9000)),
        ("[::1]:9000", ("tcp", "::1", 9000)),
        ("10.0.0.5:8000", ("tcp", "10.0.0.5", 8000)),
        ("tcp://10.0.0.5:8001", ("tcp", "10.0.0.5", 8001)),
        ("0.0.0.0", ("tcp", "127.0.0.1", 8000)),  # gunicorn's own port
        ("unix:/run/tenantlink.sock", ("unix", "/run/tenantlink.sock", None)),
    ],
)
def test_the_first_address_gunicorn_listens_on(bind, expected):
    assert target(bind) == expected


class _Live(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        ok = self.path == "/health/live/" and self.headers["Host"] == "portal.example.com"
        self.send_response(200 if ok else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_check_passes_while_the_instance_answers_and_fails_when_it_does_not():
    server = socketserver.TCPServer(("127.0.0.1", 0), _Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def check():
        env = {**os.environ, "GUNICORN_BIND": f"0.0.0.0:{port}", "SITE_URL": "https://portal.example.com"}
        return subprocess.run(
            [sys.executable, "-m", "tenantlink.ops.healthcheck"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    try:
        assert check().returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    failed = check()
    assert failed.returncode != 0 and failed.stderr.startswith("unhealthy:")
