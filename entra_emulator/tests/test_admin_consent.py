"""Admin consent, and the client-credentials check a portal uses to verify it.

The demo app is registered, and consented to, with the delegated permissions the portal asks for:
``openid profile email``, no Graph permission and no ``offline_access``. Its registration also
declares Graph's ``User.Read.All`` application permission, which only admin consent with
``/.default``, by a Global Administrator or Privileged Role Administrator, grants.
"""

import pytest

from .support import (
    ADA,
    BEN,
    CLIENT_ID,
    CONSENT_REDIRECT_URI,
    CONTOSO,
    FABRIKAM,
    FIONA,
    FRANK,
    GRAPH_DEFAULT,
    GRAPH_USER_READ,
    PORTAL_SCOPES,
    claims_of,
    redirect_params,
)
from .test_token import error_of


def tenant_in_directory(emulator, tid: str) -> dict:
    return next(t for t in emulator.control("GET", "directory").json()["tenants"] if t["id"] == tid)


@pytest.mark.parametrize(("admin", "tenant_name"), [(ADA, "Contoso"), (FRANK, "Fabrikam")])
def test_an_administrator_approves_and_the_app_comes_back_with_the_tenant(emulator, browser, admin, tenant_name):
    page = browser.admin_consent(admin.tid, scope=PORTAL_SCOPES)
    assert page.status_code == 200 and "Sign in as an administrator" in page.text

    consent = browser.sign_in(page, admin)
    assert "Permissions requested" in consent.text and tenant_name in consent.text
    for permission in ("Sign you in", "View your basic profile", "View your email address"):
        assert permission in consent.text
    assert "read your profile" not in consent.text and "Maintain access" not in consent.text

    response = browser.accept(consent)

    params = redirect_params(response, to=CONSENT_REDIRECT_URI)
    assert params == {
        "admin_consent": "True",
        "tenant": admin.tid,
        "scope": PORTAL_SCOPES,
        "state": "consent-state",
    }
    # In the order of Microsoft's documented example.
    names = [pair.split("=")[0] for pair in response.headers["location"].split("?", 1)[1].split("&")]
    assert names == ["admin_consent", "tenant", "scope", "state"]


def test_admin_consent_creates_the_service_principal_and_a_tenant_wide_grant(emulator, browser):
    assert tenant_in_directory(emulator, CONTOSO)["service_principals"] == []

    browser.grant_admin_consent(ADA, scope=PORTAL_SCOPES)

    contoso = tenant_in_directory(emulator, CONTOSO)
    assert contoso["service_principals"] == [CLIENT_ID]
    assert contoso["admin_consents"][CLIENT_ID] == ["openid", "profile", "email"]
    assert contoso["user_consents"] == {}
    # Only Contoso: Fabrikam still does not have the app.
    assert tenant_in_directory(emulator, FABRIKAM)["service_principals"] == []


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
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)

    response = emulator.client_credentials(FABRIKAM)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    assert "refresh_token" not in body and "id_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["tid"] == FABRIKAM and claims["appid"] == CLIENT_ID and claims["idtyp"] == "app"
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["oid"] == claims["sub"]  # the service principal


def test_the_portals_verification_fails_before_and_succeeds_after_its_admin_consent(emulator, browser):
    assert error_of(emulator.client_credentials(FABRIKAM)) == ("unauthorized_client", 700016)

    params = browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)

    assert params["tenant"] == FABRIKAM
    assert emulator.client_credentials(params["tenant"]).status_code == 200
    # Consent in Fabrikam adds the app to Fabrikam only.
    assert error_of(emulator.client_credentials(CONTOSO)) == ("unauthorized_client", 700016)


def test_an_app_token_without_application_permissions_carries_no_roles(emulator, browser):
    # Delegated permissions only: as at Microsoft, the app-only token has no roles claim at all
    # (and no scp, which app-only tokens never have).
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)

    claims = claims_of(emulator.client_credentials(FABRIKAM).json()["access_token"])

    assert "roles" not in claims
    assert "scp" not in claims


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

    assert params["scope"] == "openid profile email"
    assert tenant_in_directory(emulator, FABRIKAM)["admin_consents"][CLIENT_ID] == ["openid", "profile", "email"]


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


@pytest.mark.parametrize("scope", [PORTAL_SCOPES, "openid profile", "email profile openid"])
def test_fiona_signs_in_without_any_page_when_the_admin_grant_covers_the_request(emulator, browser, scope):
    # Fabrikam allows no user consent; Frank consented for everyone with what the portal asks for.
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)
    browser.client.cookies.clear()

    response = browser.sign_in(browser.authorize("organizations", scope=scope), FIONA)

    assert "Need admin approval" not in response.text and "Permissions requested" not in response.text
    params = redirect_params(response)
    assert params["code"] and params["state"] == "state-1"
    body = emulator.redeem(params["code"]).json()
    assert claims_of(body["id_token"])["tid"] == FABRIKAM and claims_of(body["id_token"])["oid"] == FIONA.oid
    assert "refresh_token" not in body
    # No grant was added for Fiona herself: the tenant-wide one is what let her through.
    assert tenant_in_directory(emulator, FABRIKAM)["user_consents"] == {}


@pytest.mark.parametrize(
    "scope",
    [
        f"{PORTAL_SCOPES} offline_access",
        f"{PORTAL_SCOPES} User.Read",
        f"{PORTAL_SCOPES} {GRAPH_USER_READ}",
        "openid offline_access",
        "https://graph.microsoft.com/User.Read",
    ],
)
def test_fiona_still_needs_approval_for_permissions_beyond_the_admin_grant(emulator, browser, scope):
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)
    browser.client.cookies.clear()

    page = browser.sign_in(browser.authorize("organizations", scope=scope), FIONA)

    assert page.status_code == 200
    assert "Need admin approval" in page.text and "AADSTS90094" in page.text
    params = redirect_params(browser.leave_without_approval(page))
    assert params == {"error": "access_denied", "error_subcode": "cancel", "state": "state-1"}


def test_fiona_needs_approval_for_the_portals_scopes_before_any_admin_consent(emulator, browser):
    page = browser.sign_in(browser.authorize("organizations", scope=PORTAL_SCOPES), FIONA)

    assert "Need admin approval" in page.text


def test_fiona_gets_a_code_silently_once_signed_in_after_the_admin_grant(emulator, browser):
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)
    browser.client.cookies.clear()
    browser.sign_in_through(FIONA, scope=PORTAL_SCOPES)

    assert redirect_params(browser.authorize(scope=PORTAL_SCOPES, prompt="none"))["code"]
    wider = redirect_params(browser.authorize(scope=f"{PORTAL_SCOPES} offline_access", prompt="none"))
    assert wider["error"] == "consent_required"


# --- Application permissions (app roles) ---

USER_READ_ALL = {
    "resourceAppId": "00000003-0000-0000-c000-000000000000",
    "resourceAccess": [{"id": "df021288-bdef-4463-88db-98f22de89214", "type": "Role"}],
}


def app_roles_in_token(emulator, tenant: str) -> list[str] | None:
    return claims_of(emulator.client_credentials(tenant).json()["access_token"]).get("roles")


def make_admin(emulator, person, role: str) -> None:
    emulator.control("PATCH", f"tenants/{person.tid}/users/{person.oid}", {"admin": True, "admin_role": role})


def test_the_app_registration_declares_user_read_all(emulator):
    app = emulator.control("GET", "directory").json()["apps"][0]

    assert app["required_resource_access"] == [USER_READ_ALL]


def test_admin_consent_with_default_grants_the_application_permissions(emulator, browser):
    consent = browser.sign_in(browser.admin_consent(CONTOSO, scope=GRAPH_DEFAULT), ADA)
    assert "Read all users" in consent.text

    params = redirect_params(browser.accept(consent), to=CONSENT_REDIRECT_URI)

    assert params["tenant"] == CONTOSO
    assert tenant_in_directory(emulator, CONTOSO)["app_role_assignments"] == {CLIENT_ID: ["User.Read.All"]}
    assert app_roles_in_token(emulator, CONTOSO) == ["User.Read.All"]


def test_admin_consent_with_named_scopes_grants_no_application_permissions(emulator, browser):
    consent = browser.sign_in(browser.admin_consent(CONTOSO, scope=PORTAL_SCOPES), ADA)
    assert "Read all users" not in consent.text

    browser.accept(consent)

    assert tenant_in_directory(emulator, CONTOSO)["app_role_assignments"] == {}
    assert app_roles_in_token(emulator, CONTOSO) is None


def test_a_privileged_role_administrator_may_grant_application_permissions(emulator, browser):
    make_admin(emulator, BEN, "Privileged Role Administrator")

    browser.grant_admin_consent(BEN, scope=GRAPH_DEFAULT)

    assert app_roles_in_token(emulator, CONTOSO) == ["User.Read.All"]


@pytest.mark.parametrize("role", ["Cloud Application Administrator", "Application Administrator"])
def test_an_application_administrator_needs_a_higher_admin_for_application_permissions(emulator, browser, role):
    make_admin(emulator, BEN, role)

    page = browser.sign_in(browser.admin_consent(CONTOSO, scope=GRAPH_DEFAULT), BEN)

    assert "Need admin approval" in page.text and "Permissions requested" not in page.text
    params = redirect_params(browser.leave_without_approval(page), to=CONSENT_REDIRECT_URI)
    assert params == {"error": "access_denied", "error_subcode": "cancel", "state": "consent-state"}
    assert error_of(emulator.client_credentials(CONTOSO)) == ("unauthorized_client", 700016)


def test_an_application_administrator_may_still_grant_delegated_permissions(emulator, browser):
    make_admin(emulator, BEN, "Cloud Application Administrator")

    params = browser.grant_admin_consent(BEN, scope=PORTAL_SCOPES)

    assert params["tenant"] == CONTOSO
    assert app_roles_in_token(emulator, CONTOSO) is None


def test_a_plain_user_at_admin_consent_with_default_is_told_an_admin_must_approve(emulator, browser):
    page = browser.sign_in(browser.admin_consent(CONTOSO, scope=GRAPH_DEFAULT), BEN)

    assert "Need admin approval" in page.text
    assert tenant_in_directory(emulator, CONTOSO)["app_role_assignments"] == {}


def test_a_tenant_must_consent_again_after_a_permission_is_added(emulator, browser):
    emulator.control("PATCH", f"apps/{CLIENT_ID}", {"required_resource_access": []}).raise_for_status()
    browser.grant_admin_consent(ADA, scope=GRAPH_DEFAULT)
    emulator.control("PATCH", f"apps/{CLIENT_ID}", {"required_resource_access": [USER_READ_ALL]}).raise_for_status()
    assert app_roles_in_token(emulator, CONTOSO) is None

    browser.grant_admin_consent(ADA, scope=GRAPH_DEFAULT)

    assert app_roles_in_token(emulator, CONTOSO) == ["User.Read.All"]


def test_removing_the_app_from_the_tenant_takes_its_application_permissions_away(emulator, browser):
    browser.grant_admin_consent(ADA, scope=GRAPH_DEFAULT)
    emulator.control("DELETE", f"tenants/{CONTOSO}/service_principals/{CLIENT_ID}").raise_for_status()
    assert error_of(emulator.client_credentials(CONTOSO))[1] == 700016

    browser.grant_admin_consent(ADA, scope=PORTAL_SCOPES)

    assert tenant_in_directory(emulator, CONTOSO)["app_role_assignments"] == {}
    assert app_roles_in_token(emulator, CONTOSO) is None
