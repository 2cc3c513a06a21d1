"""Errors of the authorization request: those shown on the emulator's own page, and those sent
back to the app as Microsoft sends them."""

import re

import pytest

from .support import (
    ADA,
    BEN,
    CLIENT_ID,
    CONTOSO,
    FABRIKAM,
    FIONA,
    FRANK,
    REDIRECT_URI,
    pkce_pair,
    redirect_params,
)


def test_an_unregistered_redirect_uri_is_shown_on_the_emulators_page_and_never_redirected(emulator, browser):
    response = browser.authorize(redirect_uri="https://evil.example/callback")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "AADSTS50011" in response.text
    assert "https://evil.example/callback" in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": ["none", "login"]},
        {"redirect_uri": ["https://evil.example/", REDIRECT_URI], "state": ["one", "two"]},
        {"client_id": ["someone-else", CLIENT_ID]},
    ],
)
def test_a_parameter_given_twice_is_shown_on_the_emulators_page_not_one_of_them_used(emulator, browser, params):
    response = browser.authorize(**params)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "AADSTS9000411" in response.text and "is duplicated" in response.text


def test_admin_consent_with_a_parameter_given_twice_is_refused_too(emulator, browser):
    response = browser.admin_consent(CONTOSO, state=["a", "b"])

    assert response.status_code == 400
    assert "AADSTS9000411" in response.text


def test_redirect_uris_must_match_exactly(emulator, browser):
    # Registered: http://127.0.0.1:8000/sso/callback/ — near misses are refused, not redirected to.
    for near_miss in (
        "http://127.0.0.1:8000/sso/callback",
        "http://127.0.0.1:8000/sso/callback/more",
        "http://127.0.0.1:8000/sso/callback/?next=/admin",
        "http://127.0.0.1:8000/SSO/callback/",
        "http://127.0.0.1:8000/sso/callback/#x",
    ):
        response = browser.authorize(redirect_uri=near_miss)

        assert response.status_code == 400, near_miss
        assert "location" not in response.headers
        assert "AADSTS50011" in response.text


def test_an_unknown_app_is_shown_on_the_emulators_page(emulator, browser):
    response = browser.authorize(client_id="11111111-1111-1111-1111-111111111111")

    assert response.status_code == 400
    assert "AADSTS700016" in response.text
    assert "location" not in response.headers


def test_an_unknown_tenant_is_shown_on_the_emulators_page(emulator, browser):
    response = browser.authorize(tenant="nosuch.onmicrosoft.com")

    assert response.status_code == 400
    assert "AADSTS90002" in response.text


def test_a_missing_client_id_is_shown_on_the_emulators_page(emulator, browser):
    response = browser.authorize(client_id=None)

    assert response.status_code == 400
    assert "AADSTS900144" in response.text


def test_error_redirects_are_form_encoded_like_microsofts(emulator, browser):
    response = browser.authorize(prompt="none")

    query = response.headers["location"].split("?", 1)[1]
    encoded_description = re.search(r"error_description=([^&]*)", query)[1]
    assert encoded_description.startswith("AADSTS50058%3a+A+silent+sign-in+request")
    assert "%0d%0aTrace+ID%3a+" in encoded_description
    assert "%0d%0aCorrelation+ID%3a+" in encoded_description
    assert "%0d%0aTimestamp%3a+" in encoded_description
    assert "%3A" not in query and "%0D" not in query
    assert re.search(r"error_uri=http%3a%2f%2f127\.0\.0\.1%3a\d+%2ferror%3fcode%3d50058", query)
    assert query.endswith("&state=state-1")


def test_only_the_code_response_type_is_supported(emulator, browser):
    params = redirect_params(browser.authorize(response_type="token"), to=REDIRECT_URI)

    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "state-1"


def test_a_missing_scope_is_an_invalid_request(emulator, browser):
    params = redirect_params(browser.authorize(scope=None))

    assert params["error"] == "invalid_request"
    assert params["error_description"].startswith("AADSTS900144: ")


def test_an_unknown_prompt_is_an_invalid_request(emulator, browser):
    params = redirect_params(browser.authorize(prompt="always"))

    assert params["error"] == "invalid_request"


def test_an_unknown_resource_scope_is_invalid_resource(emulator, browser):
    params = redirect_params(browser.authorize(scope="openid api://someone-else/Read"))

    assert params["error"] == "invalid_resource"
    assert params["error_description"].startswith("AADSTS500011: ")


def test_graphs_default_scope_beside_a_named_graph_scope_is_an_invalid_scope(emulator, browser):
    scope = "openid https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read"

    params = redirect_params(browser.authorize(scope=scope))

    assert params["error"] == "invalid_scope"
    assert params["error_description"].startswith("AADSTS70011: ")


def test_an_unsupported_pkce_method_is_an_invalid_request(emulator, browser):
    params = redirect_params(browser.authorize(code_challenge="abc", code_challenge_method="S512"))

    assert params["error"] == "invalid_request"
    assert params["error_description"].startswith("AADSTS50149: ")


def test_a_pkce_challenge_of_the_wrong_size_is_an_invalid_request(emulator, browser):
    _, challenge = pkce_pair()
    for method, value in [
        ("S256", challenge + "="),
        ("S256", challenge[:-1]),
        ("plain", "x" * 42),
        ("plain", "x" * 129),
    ]:
        params = redirect_params(browser.authorize(code_challenge=value, code_challenge_method=method))

        assert params["error"] == "invalid_request", (method, value)
        assert params["error_description"].startswith("AADSTS501491: "), (method, value)


def test_an_account_of_another_tenant_is_refused_with_50020(emulator, browser):
    page = browser.authorize(tenant=CONTOSO)

    params = redirect_params(browser.sign_in(page, FIONA), to=REDIRECT_URI)

    assert params["error"] == "access_denied"
    assert params["error_description"].startswith(
        f"AADSTS50020: User account '{{EmailHidden}}' from identity provider 'https://sts.windows.net/{FABRIKAM}/'"
    )
    assert "code" not in params


def test_a_disabled_account_cannot_sign_in(emulator, browser):
    emulator.control("PATCH", f"tenants/{CONTOSO}/users/{BEN.upn}", {"enabled": False}).raise_for_status()

    response = browser.sign_in(browser.authorize(), BEN)

    assert response.status_code == 200
    assert "Your account has been locked" in response.text
    assert "AADSTS50057" in response.text


def test_a_disabled_account_with_a_session_gets_an_error_on_silent_sign_in(emulator, browser):
    browser.sign_in_through(BEN)
    emulator.control("PATCH", f"tenants/{CONTOSO}/users/{BEN.oid}", {"enabled": False}).raise_for_status()

    params = redirect_params(browser.authorize(prompt="none"))

    assert params["error"] == "interaction_required"
    assert params["error_description"].startswith("AADSTS50057: ")


def test_an_unassigned_user_is_refused_where_assignment_is_required(emulator, browser):
    emulator.control(
        "PATCH", f"tenants/{CONTOSO}", {"assignment_required": True, "assignments": {CLIENT_ID: [ADA.oid]}}
    ).raise_for_status()

    params = redirect_params(browser.sign_in(browser.authorize(), BEN))

    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS50105: ")


def test_an_assigned_user_signs_in_where_assignment_is_required(emulator, browser):
    emulator.control(
        "PATCH", f"tenants/{CONTOSO}", {"assignment_required": True, "assignments": {CLIENT_ID: [BEN.oid]}}
    ).raise_for_status()

    assert browser.sign_in_through(BEN)["code"]


def test_declining_consent_is_access_denied_65004(emulator, browser):
    consent = browser.sign_in(browser.authorize(), BEN)

    params = redirect_params(browser.decline(consent), to=REDIRECT_URI)

    assert params["error"] == "access_denied"
    assert params["error_subcode"] == "cancel"
    assert params["error_description"].startswith("AADSTS65004: User declined to consent to access the app.")
    assert params["state"] == "state-1"


def test_where_user_consent_is_off_a_member_needs_admin_approval(emulator, browser):
    page = browser.sign_in(browser.authorize(), FIONA)
    assert page.status_code == 200
    assert "Need admin approval" in page.text
    assert "AADSTS90094" in page.text

    params = redirect_params(browser.leave_without_approval(page), to=REDIRECT_URI)
    assert params == {"error": "access_denied", "error_subcode": "cancel", "state": "state-1"}


def test_an_admin_can_sign_in_from_the_approval_page_and_consent_for_everyone(emulator, browser):
    approval = browser.sign_in(browser.authorize(), FIONA)
    other_account = browser.get(re.search(r'href="([^"]*/login\?ctx=[^"]*)"', approval.text)[1].replace("&amp;", "&"))

    consent = browser.sign_in(other_account, FRANK)
    assert "Consent on behalf of your organization" in consent.text
    assert redirect_params(browser.accept(consent, on_behalf_of_organization=True))["code"]

    directory = emulator.control("GET", "directory").json()
    fabrikam = next(t for t in directory["tenants"] if t["id"] == FABRIKAM)
    assert CLIENT_ID in fabrikam["service_principals"]
    assert "openid" in fabrikam["admin_consents"][CLIENT_ID]


def test_a_users_own_consent_creates_the_service_principal_and_a_personal_grant(emulator, browser):
    browser.sign_in_through(BEN)

    contoso = next(t for t in emulator.control("GET", "directory").json()["tenants"] if t["id"] == CONTOSO)
    assert contoso["service_principals"] == [CLIENT_ID]
    assert set(contoso["user_consents"][CLIENT_ID][BEN.oid]) == {"openid", "profile", "email"}
    assert contoso["admin_consents"] == {}
