"""`make demo` as a newcomer runs it, also on other ports (what it advises when 8000 is taken):
the demo's Microsoft stand-in accepts the portal's callbacks at whatever port it runs on."""

import signal
import time
from urllib.parse import urlencode

import httpx
import pytest

from tenantlink import demo
from tests.e2e.conftest import PYTHON, START_TIMEOUT, Service, base_environment, free_port
from tests.e2e.microsoft_steps import CONTOSO

pytestmark = pytest.mark.e2e


def wait_for_output(service, text):
    deadline = time.monotonic() + START_TIMEOUT
    while text not in service.output() and service.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert text in service.output(), service.output()


def test_the_demo_on_other_ports_sends_people_to_microsoft_and_takes_them_back(tmp_path):
    port, emulator_port = free_port(), free_port()
    env = {**base_environment(), "PYTHONUNBUFFERED": "1", "DEMO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    argv = [PYTHON, "-m", "tenantlink.demo", "--port", str(port), "--emulator-port", str(emulator_port)]
    service = Service("demo", argv, env, tmp_path / "demo.log")
    try:
        wait_for_output(service, "Press Ctrl+C to stop.")  # printed once both answer
        portal = f"http://127.0.0.1:{port}"
        for callback, endpoint in (
            ("/sso/consent/callback/", "v2.0/adminconsent"),
            ("/sso/callback/", "oauth2/v2.0/authorize"),
        ):
            query = {
                "client_id": demo.DEMO_CLIENT_ID,
                "redirect_uri": portal + callback,
                "state": "s",
                "scope": "openid",
            }
            if endpoint.endswith("authorize"):
                query.update(response_type="code", nonce="n", code_challenge="x" * 43, code_challenge_method="S256")
            page = httpx.get(f"http://127.0.0.1:{emulator_port}/{CONTOSO}/{endpoint}?{urlencode(query)}")
            # Microsoft's sign-in page, not AADSTS50011 ("the redirect URI does not match").
            assert page.status_code == 200 and "AADSTS50011" not in page.text, (callback, page.text[:500])

        # Asked to stop twice (a supervisor, or an impatient Ctrl+C): nothing is left running.
        service.process.send_signal(signal.SIGTERM)
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(timeout=60)
        for address in (portal, f"http://127.0.0.1:{emulator_port}"):
            with pytest.raises(httpx.ConnectError):
                httpx.get(address + "/", timeout=5)
    finally:
        service.stop()
