"""Starts the emulator as a real process, once per test session, and resets it between tests."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from .support import Emulator

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_emulator(log_dir: Path, *extra_args: str) -> tuple[subprocess.Popen, str]:
    """Runs ``python -m entra_emulator --port 0`` and reads the chosen URL from its first line."""
    log_path = log_dir / "emulator.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entra_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-level",
            "warning",
            *extra_args,
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = log_path.read_text().splitlines()
        if lines and lines[0].startswith("Entra emulator serving ") and len(lines) > 1:
            url = lines[0].removeprefix("Entra emulator serving ").strip()
            url = lines[1].removeprefix("  listening").strip() if lines[1].startswith("  listening ") else url
            if _answers(url, log_dir / "ca.pem"):
                return process, url
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the emulator did not start:\n{log_path.read_text()}")


def _answers(url: str, ca_file: Path) -> bool:
    verify = ssl.create_default_context(cafile=str(ca_file)) if url.startswith("https") else True
    try:
        httpx.get(f"{url}/_emulator/keys", timeout=1, verify=verify)
    except httpx.HTTPError:
        return False
    return True


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def emulator_process():
    with tempfile.TemporaryDirectory(prefix="entra-emulator-test-") as log_dir:
        process, url = start_emulator(Path(log_dir))
        yield Emulator(url)
        stop(process)


@pytest.fixture(scope="session")
def https_emulator_process():
    """The emulator over TLS with a certificate from a throw-away CA (``ca.pem`` in tls_dir)."""
    with tempfile.TemporaryDirectory(prefix="entra-emulator-tls-test-") as tls_dir:
        process, url = start_emulator(Path(tls_dir), "--https", "--tls-dir", tls_dir)
        yield Emulator(url, ca_file=str(Path(tls_dir) / "ca.pem"))
        stop(process)


@pytest.fixture
def emulator(emulator_process):
    emulator_process.reset()
    yield emulator_process
    emulator_process.reset()


@pytest.fixture
def https_emulator(https_emulator_process):
    https_emulator_process.reset()
    yield https_emulator_process
    https_emulator_process.reset()


@pytest.fixture
def browser(emulator):
    with emulator.browser() as browser:
        yield browser
