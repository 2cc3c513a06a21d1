"""Acceptance: MSAL for Python, unmodified, against the emulator served over HTTPS.

MSAL is an independent client written by Microsoft; if it accepts the emulator's discovery
document, redirects, token responses and errors, the emulator speaks the protocol faithfully.
"""

import msal
import pytest

from .support import ADA, BEN, CLIENT_ID, CONTOSO, REDIRECT_URI, SECRET, form_post_params, redirect_params


@pytest.fixture
def emulator(https_emulator, monkeypatch):
    # requests (under MSAL) lets these variables override a session's `verify`; point both at
    # the test CA so MSAL trusts the emulator's certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_emulator.ca_file)
    monkeypatch.setenv("CURL_CA_BUNDLE", https_emulator.ca_file)
    return https_emulator


def msal_app(emulator, tenant=CONTOSO) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=SECRET, authority=f"{emulator.url}/{tenant}", instance_discovery=False
    )


def test_msal_signs_a_person_in_with_the_auth_code_flow(emulator):
    app = msal_app(emulator)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, response_mode="form_post")
    assert flow["auth_uri"].startswith(f"{emulator.url}/{CONTOSO}/oauth2/v2.0/authorize?")

    with emulator.browser() as browser:
        page = browser.client.get(flow["auth_uri"])
        consent = browser.sign_in(page, BEN)
        action, auth_response = form_post_params(browser.accept(consent))
    assert action == REDIRECT_URI

    result = app.acquire_token_by_auth_code_flow(flow, auth_response)

    assert "error" not in result, result
    claims = result["id_token_claims"]
    assert claims["iss"] == f"{emulator.url}/{CONTOSO}/v2.0"
    assert claims["aud"] == CLIENT_ID
    assert claims["tid"] == CONTOSO
    assert claims["oid"] == BEN.oid
    assert claims["name"] == BEN.name
    assert claims["preferred_username"] == BEN.upn
    assert result["access_token"] and result["refresh_token"]
    account = app.get_accounts()[0]
    assert account["home_account_id"] == f"{BEN.oid}.{CONTOSO}"
    assert account["username"] == BEN.upn


def test_msal_refreshes_silently_with_the_refresh_token(emulator):
    app = msal_app(emulator)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, response_mode="form_post")
    with emulator.browser() as browser:
        consent = browser.sign_in(browser.client.get(flow["auth_uri"]), BEN)
        app.acquire_token_by_auth_code_flow(flow, form_post_params(browser.accept(consent))[1])

    result = app.acquire_token_silent(["User.Read"], account=app.get_accounts()[0], force_refresh=True)

    assert result and "access_token" in result, result


def test_msal_client_credentials_fail_with_700016_before_admin_consent_and_work_after(emulator):
    app = msal_app(emulator)

    before = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert before["error"] == "unauthorized_client"
    assert before["error_codes"] == [700016]

    with emulator.browser() as browser:
        consent = browser.sign_in(browser.admin_consent(CONTOSO), ADA)
        granted = redirect_params(browser.accept(consent))
    assert granted["admin_consent"] == "True" and granted["tenant"] == CONTOSO

    # A new MSAL object: MSAL remembers an identical request's HTTP 400 answer for 60 seconds.
    after = msal_app(emulator).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "error" not in after, after
    assert after["access_token"] and after["token_type"] == "Bearer"


def test_msal_reports_an_unknown_tenant(emulator):
    with pytest.raises(ValueError, match="double check your tenant name") as raised:
        msal_app(emulator, tenant="nosuch.onmicrosoft.com")

    assert "AADSTS90002" in str(raised.value.__context__)


def test_msal_works_through_the_organizations_authority(emulator):
    app = msal_app(emulator, tenant="organizations")
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, response_mode="form_post")
    with emulator.browser() as browser:
        consent = browser.sign_in(browser.client.get(flow["auth_uri"]), BEN)
        result = app.acquire_token_by_auth_code_flow(flow, form_post_params(browser.accept(consent))[1])

    assert result["id_token_claims"]["tid"] == CONTOSO, result
