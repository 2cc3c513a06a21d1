"""Graph /v1.0/me (and the OIDC userinfo endpoint) served by the emulator.

The demo app is registered without any Graph permission, as the portal needs none, so tests
that read a profile from Graph register an app of their own (``reader``) that has ``User.Read``.
"""

import pytest

from .support import (
    ADA,
    BEN,
    CLEO,
    CLIENT_ID,
    CONTOSO,
    FABRIKAM,
    FIONA,
    FRANK,
    GRAPH_READER,
    PORTAL_SCOPES,
    claims_of,
)

READER_ID = GRAPH_READER["client_id"]
READER_SECRET = GRAPH_READER["secrets"][0]["value"]


@pytest.fixture(autouse=True)
def reader(emulator):
    emulator.control("POST", "apps", GRAPH_READER).raise_for_status()
    return GRAPH_READER


def reader_tokens(emulator, browser, person, scope="openid profile email User.Read") -> dict:
    code = browser.sign_in_through(person, scope=scope, client_id=READER_ID)["code"]
    response = emulator.redeem(code, client_id=READER_ID, client_secret=READER_SECRET)
    assert response.status_code == 200, response.text
    return response.json()


def access_token_for(emulator, browser, person, scope="openid profile email User.Read"):
    """A delegated Graph token of the reader app."""
    return reader_tokens(emulator, browser, person, scope)["access_token"]


def me(emulator, token):
    return emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})


def test_me_returns_the_signed_in_user_in_graphs_shape(emulator, browser):
    token = access_token_for(emulator, browser, BEN)

    response = me(emulator, token)

    assert response.status_code == 200
    profile = response.json()
    assert profile["@odata.context"] == f"{emulator.url}/v1.0/$metadata#users/$entity"
    assert profile["id"] == BEN.oid
    assert profile["displayName"] == "Ben Berg"
    assert profile["givenName"] == "Ben" and profile["surname"] == "Berg"
    assert profile["userPrincipalName"] == BEN.upn
    assert profile["mail"] == BEN.mail
    assert profile["businessPhones"] == [] and profile["jobTitle"] is None


def test_me_gives_a_null_mail_where_the_user_has_none(emulator, browser):
    token = access_token_for(emulator, browser, CLEO)

    profile = me(emulator, token).json()

    assert profile["mail"] is None and profile["id"] == CLEO.oid


def test_the_access_token_is_for_graph_with_user_read(emulator, browser):
    claims = claims_of(access_token_for(emulator, browser, BEN))

    assert claims["aud"] == "https://graph.microsoft.com"
    assert "User.Read" in claims["scp"].split()
    assert claims["tid"] == CONTOSO and claims["oid"] == BEN.oid


def test_the_apps_user_read_is_included_even_when_only_openid_scopes_were_asked(emulator, browser):
    token = access_token_for(emulator, browser, ADA, scope="openid profile")
    assert "User.Read" not in claims_of(token)["scp"]  # not consented yet: Ada only consented to openid profile

    browser.grant_admin_consent(ADA, client_id=READER_ID, scope="https://graph.microsoft.com/.default")
    token = access_token_for(emulator, browser, ADA, scope="openid profile")

    assert "User.Read" in claims_of(token)["scp"].split()
    assert me(emulator, token).status_code == 200


def test_me_without_a_token_is_401_invalid_authentication_token(emulator):
    response = emulator.http.get("/v1.0/me")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == "Access token is empty."
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])


def test_me_with_a_forged_token_is_401(emulator, browser):
    token = access_token_for(emulator, browser, BEN)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[::-1]}"

    response = me(emulator, forged)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_me_with_an_id_token_is_401(emulator, browser):
    id_token = emulator.id_token_for(browser, BEN)

    response = me(emulator, id_token)

    assert response.status_code == 401


def test_me_with_an_expired_token_is_401(emulator, browser):
    token = access_token_for(emulator, browser, BEN)
    emulator.control("POST", "clock", {"advance_seconds": 3700})

    response = me(emulator, token)

    assert response.status_code == 401


def test_me_with_an_app_token_is_a_bad_request(emulator, browser):
    browser.grant_admin_consent(ADA)
    token = emulator.client_credentials(CONTOSO).json()["access_token"]

    response = me(emulator, token)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."


def test_me_without_user_read_is_403(emulator, browser):
    token = access_token_for(emulator, browser, BEN, scope="openid profile")

    response = me(emulator, token)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_the_portals_token_is_refused_by_me_because_its_consent_has_no_user_read(emulator, browser):
    # As the portal runs it: Fabrikam's administrator consents to openid profile email, then a
    # member signs in asking for the same.
    browser.grant_admin_consent(FRANK, scope=PORTAL_SCOPES)
    browser.client.cookies.clear()
    code = browser.sign_in_through(FIONA, scope=PORTAL_SCOPES)["code"]
    body = emulator.redeem(code).json()
    claims = claims_of(body["access_token"])
    assert claims["appid"] == CLIENT_ID and claims["tid"] == FABRIKAM
    assert claims["scp"].split() == ["openid", "profile", "email"]
    assert body["scope"].split() == ["openid", "profile", "email"]

    response = me(emulator, body["access_token"])

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_userinfo_answers_with_the_pairwise_subject(emulator, browser):
    tokens = reader_tokens(emulator, browser, BEN)

    info = emulator.http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()

    assert info["sub"] == claims_of(tokens["id_token"])["sub"]
    assert info["name"] == "Ben Berg" and info["email"] == BEN.mail
