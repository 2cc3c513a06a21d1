"""`make demo` refusing to start where it cannot: the whole demo story runs in tests/e2e/test_demo.py."""

import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings


def run_demo(*args, database):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "tenantlink.demo", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("taken", ["portal", "emulator"])
def test_a_port_in_use_is_said_before_anything_starts_or_is_reset(tmp_path, taken):
    """Another demo answering on the port would otherwise pass the readiness check, and its
    database be seeded again under it."""
    with socket.socket() as other, socket.socket() as free:
        other.bind(("127.0.0.1", 0))
        other.listen()
        free.bind(("127.0.0.1", 0))
        busy, unused = other.getsockname()[1], free.getsockname()[1]
        free.close()
        ports = (busy, unused) if taken == "portal" else (unused, busy)
        result = run_demo("--port", str(ports[0]), "--emulator-port", str(ports[1]), database=tmp_path / "db.sqlite3")
    assert result.returncode != 0
    assert f"The demo did not start: port {busy} is in use already." in result.stderr
    assert "is running" not in result.stdout
    assert not (tmp_path / "db.sqlite3").exists()  # nothing migrated or seeded


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "80000"], "a port is a number from 1 to 65535, not '80000'"),
        (["--port", "eighty"], "a port is a number from 1 to 65535, not 'eighty'"),
        (["--port", "8123", "--emulator-port", "8123"], "need a port each, not both 8123"),
    ],
)
def test_ports_that_cannot_work_are_refused_in_words(tmp_path, args, said):
    result = run_demo(*args, database=tmp_path / "db.sqlite3")
    assert result.returncode != 0
    assert said in result.stderr and "Traceback" not in result.stderr
