"""The token endpoint: code redemption rules, client authentication, refresh tokens and errors."""

import pytest

from .support import (
    BEN,
    CLIENT_ID,
    CONSENT_REDIRECT_URI,
    CONTOSO,
    FABRIKAM,
    SECRET,
    aad_json_error,
    claims_of,
    pkce_pair,
)


def error_of(response, status=400):
    body = aad_json_error(response, status)
    return body["error"], body["error_codes"][0]


def test_a_code_is_single_use(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]
    assert emulator.redeem(code).status_code == 200

    assert error_of(emulator.redeem(code)) == ("invalid_grant", 54005)


def test_a_code_expires_after_ten_minutes(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]
    emulator.control("POST", "clock", {"advance_seconds": 601}).raise_for_status()

    assert error_of(emulator.redeem(code)) == ("invalid_grant", 70008)


def test_a_code_is_good_within_its_lifetime(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]
    emulator.control("POST", "clock", {"advance_seconds": 540}).raise_for_status()

    assert emulator.redeem(code).status_code == 200


def test_an_unknown_code_is_invalid_grant(emulator):
    assert error_of(emulator.redeem("1.Anot-a-code")) == ("invalid_grant", 9002313)


def test_a_code_is_bound_to_its_redirect_uri(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    assert error_of(emulator.redeem(code, redirect_uri=CONSENT_REDIRECT_URI)) == ("invalid_grant", 500112)


def test_a_code_is_bound_to_its_client(emulator, browser):
    other = "22222222-2222-2222-2222-222222222222"
    emulator.control(
        "POST",
        "apps",
        {
            "client_id": other,
            "display_name": "Other",
            "secrets": [{"value": "other-secret", "expires": "2099-01-01T00:00:00Z"}],
        },
    )
    code = browser.sign_in_through(BEN)["code"]

    response = emulator.redeem(code, client_id=other, client_secret="other-secret")

    assert error_of(response) == ("invalid_grant", 70000)


def test_a_code_is_bound_to_its_tenant(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    assert error_of(emulator.redeem(code, tenant=FABRIKAM)) == ("invalid_grant", 70000)


def test_pkce_s256_is_checked(emulator, browser):
    verifier, challenge = pkce_pair()
    code = browser.sign_in_through(BEN, code_challenge=challenge, code_challenge_method="S256")["code"]

    assert emulator.redeem(code, code_verifier=verifier).status_code == 200


def test_a_wrong_pkce_verifier_is_refused_with_501481(emulator, browser):
    _, challenge = pkce_pair()
    code = browser.sign_in_through(BEN, code_challenge=challenge, code_challenge_method="S256")["code"]

    assert error_of(emulator.redeem(code, code_verifier="x" * 43)) == ("invalid_grant", 501481)


def test_a_missing_pkce_verifier_is_refused(emulator, browser):
    _, challenge = pkce_pair()
    code = browser.sign_in_through(BEN, code_challenge=challenge, code_challenge_method="S256")["code"]

    assert error_of(emulator.redeem(code)) == ("invalid_grant", 501481)


def test_a_missing_pkce_method_means_plain(emulator, browser):
    verifier, challenge = pkce_pair()
    code = browser.sign_in_through(BEN, code_challenge=verifier)["code"]
    assert emulator.redeem(code, code_verifier=verifier).status_code == 200

    code = browser.sign_in_through(BEN, code_challenge=verifier)["code"]
    assert error_of(emulator.redeem(code, code_verifier=challenge)) == ("invalid_grant", 501481)


def test_the_client_secret_may_come_by_http_basic(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    response = emulator.redeem(code, client_id=None, client_secret=None, auth=(CLIENT_ID, SECRET))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body", [{"client_id": None, "client_secret": "WRONG"}, {"client_id": "another-app", "client_secret": None}]
)
def test_http_basic_beside_other_credentials_in_the_body_is_refused(emulator, browser, body):
    code = browser.sign_in_through(BEN)["code"]

    response = emulator.redeem(code, auth=(CLIENT_ID, SECRET), **body)

    assert error_of(response) == ("invalid_request", 9002313)


def test_a_wrong_secret_is_invalid_client_7000215(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    assert error_of(emulator.redeem(code, client_secret="guess"), status=401) == ("invalid_client", 7000215)


def test_an_expired_secret_is_invalid_client_7000222(emulator, browser):
    emulator.control(
        "PATCH", f"apps/{CLIENT_ID}", {"secrets": [{"value": SECRET, "expires": "2020-01-01T00:00:00Z"}]}
    ).raise_for_status()
    code = browser.sign_in_through(BEN)["code"]

    assert error_of(emulator.redeem(code), status=401) == ("invalid_client", 7000222)


def test_a_new_secret_works_beside_the_expired_one(emulator, browser):
    emulator.control(
        "PATCH", f"apps/{CLIENT_ID}", {"secrets": [{"value": SECRET, "expires": "2020-01-01T00:00:00Z"}]}
    ).raise_for_status()
    emulator.control(
        "POST", f"apps/{CLIENT_ID}/secrets", {"value": "rolled-secret", "expires": "2099-01-01T00:00:00Z"}
    ).raise_for_status()
    code = browser.sign_in_through(BEN)["code"]

    assert emulator.redeem(code, client_secret="rolled-secret").status_code == 200


def test_a_missing_secret_is_invalid_client(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    assert error_of(emulator.redeem(code, client_secret=None), status=401) == ("invalid_client", 7000218)


def test_an_unknown_client_is_unauthorized_client_700016(emulator):
    response = emulator.redeem("x", client_id="33333333-3333-3333-3333-333333333333")

    assert error_of(response) == ("unauthorized_client", 700016)


def test_an_unknown_tenant_at_the_token_endpoint_is_90002(emulator):
    assert error_of(emulator.redeem("x", tenant="nosuch.example")) == ("invalid_request", 90002)


def test_an_unsupported_grant_type_is_refused(emulator):
    response = emulator.token(grant_type="password", client_id=CLIENT_ID, client_secret=SECRET)

    assert error_of(response) == ("unsupported_grant_type", 70003)


def test_the_correlation_id_echoes_the_clients_request_id(emulator):
    response = emulator.http.post(
        "/organizations/oauth2/v2.0/token",
        data={"grant_type": "password"},
        headers={"client-request-id": "0f0f0f0f-1111-2222-3333-444444444444"},
    )

    assert response.json()["correlation_id"] == "0f0f0f0f-1111-2222-3333-444444444444"


def test_offline_access_brings_a_refresh_token_that_works(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid profile offline_access", client_info="1")["code"]
    first = emulator.redeem(code, client_info="1").json()
    assert first["refresh_token"]
    assert first["client_info"]

    response = emulator.token(
        grant_type="refresh_token",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        refresh_token=first["refresh_token"],
        scope="openid profile offline_access",
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] and body["refresh_token"] != first["refresh_token"]
    claims = claims_of(body["id_token"])
    assert claims["oid"] == BEN.oid and claims["tid"] == CONTOSO and "nonce" not in claims


def test_a_refresh_token_stops_working_when_the_user_is_disabled(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid offline_access")["code"]
    refresh = emulator.redeem(code).json()["refresh_token"]
    emulator.control("PATCH", f"tenants/{CONTOSO}/users/{BEN.oid}", {"enabled": False})

    response = emulator.token(
        grant_type="refresh_token", client_id=CLIENT_ID, client_secret=SECRET, refresh_token=refresh
    )

    assert error_of(response) == ("invalid_grant", 50057)


def test_a_refresh_token_stops_working_when_the_app_is_removed_from_the_tenant(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid offline_access")["code"]
    refresh = emulator.redeem(code).json()["refresh_token"]
    emulator.control("DELETE", f"tenants/{CONTOSO}/service_principals/{CLIENT_ID}").raise_for_status()

    response = emulator.token(
        grant_type="refresh_token", client_id=CLIENT_ID, client_secret=SECRET, refresh_token=refresh
    )

    assert error_of(response) == ("invalid_grant", 65001)


def test_a_refresh_token_cannot_widen_the_scopes(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid offline_access")["code"]
    refresh = emulator.redeem(code).json()["refresh_token"]

    response = emulator.token(
        grant_type="refresh_token",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        refresh_token=refresh,
        scope="openid email offline_access",
    )

    assert error_of(response) == ("invalid_grant", 65001)


def test_an_unknown_refresh_token_is_invalid_grant(emulator):
    response = emulator.token(
        grant_type="refresh_token", client_id=CLIENT_ID, client_secret=SECRET, refresh_token="nope"
    )

    assert error_of(response)[0] == "invalid_grant"


def test_the_token_response_names_the_granted_scopes(emulator, browser):
    code = browser.sign_in_through(BEN, scope="openid profile User.Read")["code"]

    body = emulator.redeem(code).json()

    assert body["scope"].split() == ["openid", "profile", "https://graph.microsoft.com/User.Read"]
    assert claims_of(body["access_token"])["aud"] == "https://graph.microsoft.com"
