"""Graph /v1.0/me (and the OIDC userinfo endpoint) served by the emulator."""

from .support import ADA, BEN, CLEO, CONTOSO, claims_of


def access_token_for(emulator, browser, person, scope="openid profile email User.Read"):
    code = browser.sign_in_through(person, scope=scope)["code"]
    return emulator.redeem(code).json()["access_token"]


def test_me_returns_the_signed_in_user_in_graphs_shape(emulator, browser):
    token = access_token_for(emulator, browser, BEN)

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    me = response.json()
    assert me["@odata.context"] == f"{emulator.url}/v1.0/$metadata#users/$entity"
    assert me["id"] == BEN.oid
    assert me["displayName"] == "Ben Berg"
    assert me["givenName"] == "Ben" and me["surname"] == "Berg"
    assert me["userPrincipalName"] == BEN.upn
    assert me["mail"] == BEN.mail
    assert me["businessPhones"] == [] and me["jobTitle"] is None


def test_me_gives_a_null_mail_where_the_user_has_none(emulator, browser):
    token = access_token_for(emulator, browser, CLEO)

    me = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"}).json()

    assert me["mail"] is None and me["id"] == CLEO.oid


def test_the_access_token_is_for_graph_with_user_read(emulator, browser):
    claims = claims_of(access_token_for(emulator, browser, BEN))

    assert claims["aud"] == "https://graph.microsoft.com"
    assert "User.Read" in claims["scp"].split()
    assert claims["tid"] == CONTOSO and claims["oid"] == BEN.oid


def test_the_apps_user_read_is_included_even_when_only_openid_scopes_were_asked(emulator, browser):
    token = access_token_for(emulator, browser, ADA, scope="openid profile")
    assert "User.Read" not in claims_of(token)["scp"]  # not consented yet: Ada only consented to openid profile

    browser.grant_admin_consent(ADA)
    token = access_token_for(emulator, browser, ADA, scope="openid profile")

    assert "User.Read" in claims_of(token)["scp"].split()
    assert emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


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

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_me_with_an_id_token_is_401(emulator, browser):
    id_token = emulator.id_token_for(browser, BEN)

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {id_token}"})

    assert response.status_code == 401


def test_me_with_an_expired_token_is_401(emulator, browser):
    token = access_token_for(emulator, browser, BEN)
    emulator.control("POST", "clock", {"advance_seconds": 3700})

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


def test_me_with_an_app_token_is_a_bad_request(emulator, browser):
    browser.grant_admin_consent(ADA)
    token = emulator.client_credentials(CONTOSO).json()["access_token"]

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."


def test_me_without_user_read_is_403(emulator, browser):
    token = access_token_for(emulator, browser, BEN, scope="openid profile")

    response = emulator.http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_userinfo_answers_with_the_pairwise_subject(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid profile email User.Read")["code"]
    tokens = emulator.redeem(code).json()

    info = emulator.http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()

    assert info["sub"] == claims_of(tokens["id_token"])["sub"]
    assert info["name"] == "Ben Berg" and info["email"] == BEN.mail
