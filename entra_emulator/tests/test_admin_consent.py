"""Admin consent, and the client-credentials check a portal uses to verify it."""

from .support import (
    ADA,
    BEN,
    CLIENT_ID,
    CONSENT_REDIRECT_URI,
    CONTOSO,
    FABRIKAM,
    FIONA,
    FRANK,
    GRAPH_USER_READ,
    claims_of,
    redirect_params,
)
from .test_token import error_of


def test_an_administrator_approves_and_the_app_comes_back_with_the_tenant(emulator, browser):
    page = browser.admin_consent(CONTOSO)
    assert page.status_code == 200 and "Sign in as an administrator" in page.text

    consent = browser.sign_in(page, ADA)
    assert "Permissions requested" in consent.text and "Contoso" in consent.text

    params = redirect_params(browser.accept(consent), to=CONSENT_REDIRECT_URI)
    assert params == {
        "admin_consent": "True",
        "tenant": CONTOSO,
        "scope": f"openid profile email {GRAPH_USER_READ}",
        "state": "consent-state",
    }


def test_admin_consent_creates_the_service_principal_and_a_tenant_wide_grant(emulator, browser):
    browser.grant_admin_consent(ADA)

    contoso = next(t for t in emulator.control("GET", "directory").json()["tenants"] if t["id"] == CONTOSO)
    assert contoso["service_principals"] == [CLIENT_ID]
    assert contoso["admin_consents"][CLIENT_ID] == ["openid", "profile", "email", GRAPH_USER_READ]


def test_after_admin_consent_members_sign_in_without_a_consent_page(emulator, browser):
    browser.grant_admin_consent(ADA)
    browser.client.cookies.clear()

    page = browser.sign_in(browser.authorize(), BEN)

    assert redirect_params(page)["code"]


def test_client_credentials_fail_with_700016_before_admin_consent(emulator):
    response = emulator.client_credentials(CONTOSO)

    assert error_of(response) == ("unauthorized_client", 700016)
    assert "was not found in the directory 'Contoso'" in response.json()["error_description"]


def test_client_credentials_succeed_after_admin_consent(emulator, browser):
    browser.grant_admin_consent(FRANK)

    response = emulator.client_credentials(FABRIKAM)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    assert "refresh_token" not in body and "id_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["tid"] == FABRIKAM and claims["appid"] == CLIENT_ID and claims["idtyp"] == "app"
    assert claims["aud"] == "https://graph.microsoft.com"


def test_client_credentials_work_with_the_tenant_domain_too(emulator, browser):
    browser.grant_admin_consent(FRANK)

    assert emulator.client_credentials("fabrikam.onmicrosoft.com").status_code == 200


def test_client_credentials_fail_again_once_the_app_is_removed_from_the_tenant(emulator, browser):
    browser.grant_admin_consent(FRANK)
    emulator.control("DELETE", f"tenants/{FABRIKAM}/service_principals/{CLIENT_ID}").raise_for_status()

    assert error_of(emulator.client_credentials(FABRIKAM)) == ("unauthorized_client", 700016)


def test_client_credentials_need_a_tenant(emulator):
    assert error_of(emulator.client_credentials("organizations")) == ("invalid_request", 50059)


def test_client_credentials_need_a_default_scope(emulator, browser):
    browser.grant_admin_consent(ADA)

    assert error_of(emulator.client_credentials(CONTOSO, scope=GRAPH_USER_READ)) == ("invalid_scope", 1002012)


def test_client_credentials_for_an_unknown_resource_are_refused(emulator, browser):
    browser.grant_admin_consent(ADA)

    response = emulator.client_credentials(CONTOSO, scope="api://elsewhere/.default")

    assert error_of(response) == ("invalid_resource", 500011)


def test_client_credentials_with_a_wrong_secret_are_invalid_client(emulator, browser):
    browser.grant_admin_consent(ADA)

    assert error_of(emulator.client_credentials(CONTOSO, client_secret="nope"), status=401) == (
        "invalid_client",
        7000215,
    )


def test_declining_admin_consent_is_access_denied_65004(emulator, browser):
    consent = browser.sign_in(browser.admin_consent(CONTOSO), ADA)

    params = redirect_params(browser.decline(consent), to=CONSENT_REDIRECT_URI)

    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004: ")
    assert params["admin_consent"] == "True"
    assert params["state"] == "consent-state"
    assert "tenant" not in params
    assert error_of(emulator.client_credentials(CONTOSO)) == ("unauthorized_client", 700016)


def test_a_non_administrator_is_told_an_admin_must_approve(emulator, browser):
    page = browser.sign_in(browser.admin_consent(CONTOSO), BEN)
    assert "Need admin approval" in page.text

    params = redirect_params(browser.leave_without_approval(page), to=CONSENT_REDIRECT_URI)

    # As Microsoft answers a cancelled sign-in: no error_description, no tenant.
    assert params == {"error": "access_denied", "error_subcode": "cancel", "state": "consent-state"}
    assert error_of(emulator.client_credentials(CONTOSO))[1] == 700016


def test_an_administrator_of_another_tenant_is_refused_with_50020(emulator, browser):
    params = redirect_params(browser.sign_in(browser.admin_consent(CONTOSO), FRANK), to=CONSENT_REDIRECT_URI)

    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS50020: ")
    assert params["state"] == "consent-state"
    assert "tenant" not in params


def test_an_unregistered_redirect_uri_is_shown_on_the_emulators_page(emulator, browser):
    response = browser.admin_consent(CONTOSO, redirect_uri="https://evil.example/cb")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "AADSTS50011" in response.text


def test_an_unknown_tenant_is_shown_on_the_emulators_page(emulator, browser):
    response = browser.admin_consent("nosuch.onmicrosoft.com")

    assert response.status_code == 400
    assert "AADSTS90002" in response.text


def test_admin_consent_through_organizations_uses_the_admins_tenant(emulator, browser):
    consent = browser.sign_in(browser.admin_consent("organizations"), FRANK)

    params = redirect_params(browser.accept(consent))

    assert params["tenant"] == FABRIKAM


def test_an_admin_already_signed_in_picks_their_account(emulator, browser):
    browser.sign_in_through(FRANK)  # Frank consents for himself on first sign-in (admins may)
    page = browser.admin_consent(FABRIKAM)
    assert "Pick an account" in page.text

    consent = browser.pick(page, FRANK)

    assert redirect_params(browser.accept(consent))["tenant"] == FABRIKAM


def test_admin_consent_with_the_default_scope_grants_the_apps_required_permissions(emulator, browser):
    page = browser.admin_consent(FABRIKAM, scope="https://graph.microsoft.com/.default")
    consent = browser.sign_in(page, FRANK)

    params = redirect_params(browser.accept(consent))

    assert params["scope"] == f"openid profile email {GRAPH_USER_READ}"


def test_admin_consent_without_scope_is_an_invalid_request(emulator, browser):
    # The v2.0 admin consent endpoint requires scope; the error goes to the (registered) redirect URI.
    params = redirect_params(browser.admin_consent(FABRIKAM, scope=None), to=CONSENT_REDIRECT_URI)

    assert params["error"] == "invalid_request"
    assert params["error_description"].startswith("AADSTS900144: ")
    assert params["state"] == "consent-state"


def test_a_declined_admin_consent_lists_its_parameters_in_microsofts_order(emulator, browser):
    consent = browser.sign_in(browser.admin_consent(CONTOSO), ADA)

    location = browser.decline(consent).headers["location"]

    names = [pair.split("=")[0] for pair in location.split("?", 1)[1].split("&")]
    assert names == ["error", "error_description", "error_uri", "admin_consent", "state"]


def test_fiona_still_needs_approval_for_permissions_beyond_the_admin_grant(emulator, browser):
    browser.grant_admin_consent(FRANK)
    browser.client.cookies.clear()

    page = browser.sign_in(browser.authorize(scope="openid offline_access"), FIONA)

    assert "Need admin approval" in page.text
