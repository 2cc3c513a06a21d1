"""The portal pointed at another Microsoft through configuration alone: a second identity
platform over HTTPS with its own certificate authority, its own tenant and its own app
registration (client ID, and a secret read from a file). The same pages connect a tenant there,
connect a user's account and sign in with it, and refuse every broken token — nothing of the
demo's Microsoft is built into the portal."""

import json
import re
import ssl
import time
import uuid

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from entra_emulator.faults import TOKEN_FAULTS
from tenantlink import demo
from tests import postgres
from tests.e2e.conftest import PYTHON, ProcessFailed, Service, base_environment, free_port, running_portal

pytestmark = pytest.mark.e2e

TENANT = str(uuid.uuid4())
CLIENT_ID = str(uuid.uuid4())
SECRET = "woodgrove-stand-in-secret-" + uuid.uuid4().hex


def directory():
    return {
        "apps": [
            {
                "client_id": CLIENT_ID,
                "display_name": "Customer portal",
                "secrets": [{"value": SECRET, "expires": "2099-12-31T00:00:00Z"}],
                "redirect_uris": ["https://placeholder.invalid/"],
                "required_scopes": ["openid", "profile", "email"],
            }
        ],
        "tenants": [
            {
                "id": TENANT,
                "domain": "woodgrove.onmicrosoft.com",
                "display_name": "Woodgrove",
                "user_consent_allowed": False,
                "users": [
                    {
                        "oid": str(uuid.uuid4()),
                        "upn": "wanda@woodgrove.onmicrosoft.com",
                        "display_name": "Wanda Wood",
                        "password": "Woodgrove-pass-1",
                        "admin": True,
                    }
                ],
            }
        ],
    }


@pytest.fixture
def stand_in(tmp_path):
    """Another Microsoft at an https address, trusted through its CA file only."""
    (tmp_path / "directory.json").write_text(json.dumps(directory()))
    url = f"https://127.0.0.1:{free_port()}"
    service = Service(
        "The other Microsoft",
        [
            PYTHON,
            "-m",
            "entra_emulator",
            "--port",
            url.rsplit(":", 1)[1],
            "--https",
            "--tls-dir",
            str(tmp_path / "tls"),
            "--directory",
            str(tmp_path / "directory.json"),
        ],
        {**base_environment(), "PYTHONUNBUFFERED": "1"},
        tmp_path / "stand-in.log",
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                trust = ssl.create_default_context(cafile=tmp_path / "tls" / "ca.pem")
                httpx.get(f"{url}/organizations/v2.0/.well-known/openid-configuration", verify=trust).raise_for_status()
                break
            except (OSError, httpx.HTTPError):
                if time.monotonic() > deadline or service.process.poll() is not None:
                    raise ProcessFailed(f"The other Microsoft did not start:\n{service.output()}") from None
                time.sleep(0.2)
        yield url, tmp_path / "tls" / "ca.pem", trust
    finally:
        service.stop()


@pytest.fixture
def portal_on_stand_in(stand_in, database_server, tmp_path):
    url, ca_file, _trust = stand_in
    database = postgres.create_database(postgres.with_database(database_server, "tenantlink_stand_in"))
    (tmp_path / "entra-secret").write_text(SECRET + "\n")
    try:
        with running_portal(
            database,
            tmp_path,
            workers=1,
            ENTRA_AUTHORITY=url,
            ENTRA_CLIENT_ID=CLIENT_ID,
            ENTRA_CLIENT_SECRET_FILE=str(tmp_path / "entra-secret"),
            SSL_CERT_FILE=str(ca_file),  # the only CA this portal trusts: the stand-in's
        ) as (portal, service):
            portal.shell("from tenantlink.demo import seed\nseed()\n")
            yield portal, service
    finally:
        postgres.drop_database(database)


def test_the_same_pages_work_with_another_microsoft(browser, stand_in, portal_on_stand_in):
    url, _ca_file, trust = stand_in
    portal, service = portal_on_stand_in
    for path in ("/sso/consent/callback/", "/sso/callback/"):
        httpx.post(
            f"{url}/_emulator/apps/{CLIENT_ID}/redirect_uris", json={"uri": f"{portal.url}{path}"}, verify=trust
        ).raise_for_status()
    _username, _name, _mail, _company, _role, password, seed = demo.ACCOUNTS[0]  # ada, Contoso Ltd's administrator
    context = browser.new_context(ignore_https_errors=True)  # the browser does not know the stand-in's CA
    page = context.new_page()
    page.set_default_timeout(10_000)

    page.goto(f"{portal.url}/signin/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Single sign-on").click()
    page.get_by_role("link", name="Add integration").click()
    page.get_by_label("Tenant ID or domain").fill("woodgrove.onmicrosoft.com")
    page.get_by_role("button", name="Continue to Microsoft").click()

    expect(page).to_have_url(re.compile(re.escape(f"{url}/{TENANT}/v2.0/adminconsent?client_id={CLIENT_ID}&")))
    page.locator("#username").fill("wanda@woodgrove.onmicrosoft.com")
    page.locator("#password").fill("Woodgrove-pass-1")
    page.locator("#idSIButton9").click()
    page.locator("#idBtn_Accept").click()

    expect(page).to_have_url(f"{portal.url}/company/sso/")
    expect(page.get_by_text("woodgrove.onmicrosoft.com is active: Microsoft confirmed the approval.")).to_be_visible()
    expect(page.locator("li.integration").get_by_text("Active", exact=True)).to_be_visible()
    expect(page.locator("li.integration").get_by_text(TENANT)).to_be_visible()

    # Ada connects her Microsoft account there (Wanda's, an administrator of Woodgrove) ...
    page.goto(f"{portal.url}/profile/settings/")
    page.locator("#microsoft").get_by_role("button", name="Enable").click()
    expect(page).to_have_url(re.compile(re.escape(f"{url}/{TENANT}/oauth2/v2.0/authorize?")))
    page.get_by_text("wanda@woodgrove.onmicrosoft.com").first.click()  # already signed in there: pick the account
    expect(page.get_by_text("Your portal account is now connected to Wanda Wood")).to_be_visible()

    # ... and signs in with it alone.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with Microsoft").click()
    expect(page).to_have_url(f"{portal.url}/portal/")

    # Every broken token is refused: no session, and the sign-in page says why.
    for fault in BROKEN_TOKENS:
        httpx.post(f"{url}/_emulator/faults", json={"fault": fault, "times": 1}, verify=trust).raise_for_status()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in with Microsoft").click()
        expect(page).to_have_url(f"{portal.url}/signin/")
        # (A key not fetched yet may be one Microsoft rolled in a moment ago: try again later.)
        refusal = (
            "try again in a few minutes" if fault == "unknown_kid" else "did not pass the portal's security checks"
        )
        expect(page.get_by_role("status")).to_contain_text(refusal)
        page.goto(f"{portal.url}/portal/")
        expect(page).to_have_url(re.compile(r"/signin/\?next="))
        page.get_by_role("button", name="Sign in with Microsoft").click()  # the next token is a good one
        expect(page).to_have_url(f"{portal.url}/portal/")
    context.close()
    assert SECRET not in service.output()


# Every broken token the stand-in can issue ("rotated_kid" is a good token signed by a new key).
BROKEN_TOKENS = [fault for fault in TOKEN_FAULTS if fault != "rotated_kid"]
