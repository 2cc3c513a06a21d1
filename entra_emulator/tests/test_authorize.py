"""The authorization endpoint and its pages: sign-in, SSO, prompts, hints and response modes."""

import jwt
import pytest

from .support import (
    BEN,
    CLEO,
    CLIENT_ID,
    CONTOSO,
    FABRIKAM,
    FIONA,
    FRANK,
    REDIRECT_URI,
    claims_of,
    form_post_params,
    redirect_params,
)


def test_a_person_signs_in_consents_and_the_app_gets_a_code(emulator, browser):
    page = browser.authorize()
    assert page.status_code == 200
    assert "Entra emulator — for development" in page.text
    assert "Tenantlink" in page.text

    consent = browser.sign_in(page, BEN)
    assert "Permissions requested" in consent.text
    assert "View your email address" in consent.text

    params = redirect_params(browser.accept(consent), to=REDIRECT_URI)
    assert params["code"]
    assert params["state"] == "state-1"
    assert params["session_state"]


def test_the_code_redeems_for_an_id_token_about_that_person(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    body = emulator.redeem(code).json()

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    assert "refresh_token" not in body  # no offline_access asked for
    claims = claims_of(body["id_token"])
    assert claims["ver"] == "2.0"
    assert claims["iss"] == f"{emulator.url}/{CONTOSO}/v2.0"
    assert claims["aud"] == CLIENT_ID
    assert claims["tid"] == CONTOSO
    assert claims["oid"] == BEN.oid
    assert claims["name"] == BEN.name
    assert claims["preferred_username"] == BEN.upn
    assert claims["email"] == BEN.mail
    assert claims["nonce"] == "nonce-1"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    for name in ("sub", "aio", "sid", "uti", "rh"):
        assert claims[name]
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and header["kid"]
    assert "x5t" not in header


def test_email_is_only_in_the_token_when_asked_for_and_known(emulator, browser):
    without_scope = claims_of(emulator.id_token_for(browser, BEN, scope="openid profile"))
    browser.client.cookies.clear()
    without_mail = claims_of(emulator.id_token_for(browser, CLEO, scope="openid profile email"))

    assert "email" not in without_scope
    assert "email" not in without_mail


def test_sub_is_pairwise_and_stable(emulator, browser):
    first = claims_of(emulator.id_token_for(browser, BEN))
    again = claims_of(emulator.id_token_for(browser, BEN))

    assert first["sub"] == again["sub"]
    assert first["sub"] != BEN.oid
    assert first["uti"] != again["uti"]


def test_a_signed_in_browser_gets_a_code_without_seeing_a_page(emulator, browser):
    browser.sign_in_through(BEN)

    params = redirect_params(browser.authorize(), to=REDIRECT_URI)

    assert params["code"] and params["state"] == "state-1"


def test_prompt_none_works_after_sign_in(emulator, browser):
    browser.sign_in_through(BEN)

    params = redirect_params(browser.authorize(prompt="none"))

    assert params["code"]


def test_prompt_none_without_a_session_is_login_required(emulator, browser):
    params = redirect_params(browser.authorize(prompt="none"), to=REDIRECT_URI)

    assert params["error"] == "login_required"
    assert params["error_description"].startswith("AADSTS50058: ")
    assert params["state"] == "state-1"
    assert "code" not in params


def test_prompt_none_without_consent_is_consent_required(emulator, browser):
    browser.sign_in_through(BEN, scope="openid")

    params = redirect_params(browser.authorize(prompt="none", scope="openid profile offline_access"))

    assert params["error"] == "consent_required"
    assert params["error_description"].startswith("AADSTS65001: ")


def test_prompt_login_asks_for_the_password_again(emulator, browser):
    browser.sign_in_through(BEN)

    page = browser.authorize(prompt="login")
    assert page.status_code == 200 and 'name="password"' in page.text
    still_asking = browser.pick(page, BEN)
    assert still_asking.status_code == 200 and BEN.upn in still_asking.text

    params = redirect_params(browser.sign_in(page, BEN))
    assert params["code"]


def test_prompt_select_account_offers_the_signed_in_accounts(emulator, browser):
    browser.sign_in_through(BEN)

    page = browser.authorize(prompt="select_account")
    assert "Pick an account" in page.text and BEN.upn in page.text

    params = redirect_params(browser.pick(page, BEN))
    assert params["code"]


def test_prompt_consent_always_shows_the_consent_page(emulator, browser):
    browser.sign_in_through(BEN)

    page = browser.authorize(prompt="consent")

    assert "Permissions requested" in page.text
    assert redirect_params(browser.accept(page))["code"]


def test_login_hint_prefills_the_username_and_picks_the_session_account(emulator, browser):
    page = browser.authorize(login_hint=CLEO.upn)
    assert f'value="{CLEO.upn}"' in page.text

    browser.sign_in_through(BEN)
    browser.sign_in_through(CLEO, prompt="login")
    params = redirect_params(browser.authorize(prompt="none", login_hint=BEN.upn))
    code_claims = claims_of(emulator.redeem(params["code"]).json()["id_token"])
    assert code_claims["oid"] == BEN.oid


def test_prompt_none_with_two_accounts_and_no_hint_needs_interaction(emulator, browser):
    browser.sign_in_through(BEN)
    browser.sign_in_through(CLEO, prompt="login")

    params = redirect_params(browser.authorize(prompt="none"))

    assert params["error"] == "interaction_required"


def test_domain_hint_narrows_the_accounts_offered(emulator, browser):
    page = browser.authorize(domain_hint="fabrikam.onmicrosoft.com")

    assert FIONA.upn in page.text
    assert BEN.upn not in page.text


def test_form_post_sends_an_auto_submitting_form(emulator, browser):
    page = browser.authorize(response_mode="form_post")
    consent = browser.sign_in(page, BEN)
    response = browser.accept(consent)

    action, fields = form_post_params(response)
    assert action == REDIRECT_URI
    assert fields["code"] and fields["state"] == "state-1"
    assert "document.forms[0].submit()" in response.text
    assert "<noscript>" in response.text and 'type="submit"' in response.text


def test_form_post_also_carries_errors(emulator, browser):
    action, fields = form_post_params(browser.authorize(response_mode="form_post", prompt="none"))

    assert action == REDIRECT_URI
    assert fields["error"] == "login_required"
    assert fields["error_description"].startswith("AADSTS50058: ")
    assert "\r\nTrace ID: " in fields["error_description"]


def test_client_info_comes_back_when_asked_for(emulator, browser):
    params = browser.sign_in_through(BEN, client_info="1")

    assert claims_of("x." + params["client_info"] + ".x") == {"uid": BEN.oid, "utid": CONTOSO}


def test_a_tenant_specific_authority_accepts_the_domain(emulator, browser):
    params = browser.sign_in_through(BEN, tenant="Contoso.onmicrosoft.com")

    claims = claims_of(emulator.redeem(params["code"], tenant=CONTOSO).json()["id_token"])
    assert claims["tid"] == CONTOSO
    assert claims["iss"] == f"{emulator.url}/{CONTOSO}/v2.0"


def test_wrong_password_keeps_the_person_on_the_sign_in_page(emulator, browser):
    page = browser.authorize()

    response = browser.sign_in(page, BEN, password="not-it")

    assert response.status_code == 200
    assert "Your account or password is incorrect" in response.text
    assert "set-cookie" not in response.headers


def test_an_unknown_username_keeps_the_person_on_the_sign_in_page(emulator, browser):
    response = browser.sign_in(browser.authorize(), "nobody@contoso.onmicrosoft.com")

    assert "This username may be incorrect" in response.text


def test_an_expired_sign_in_page_says_so(emulator, browser):
    page = browser.authorize()
    emulator.reset()

    response = browser.sign_in(page, BEN)

    assert response.status_code == 400
    assert "has expired or was already completed" in response.text


def test_logout_ends_the_session_and_returns_to_the_app(emulator, browser):
    browser.sign_in_through(BEN)

    response = browser.get(
        f"/{CONTOSO}/oauth2/v2.0/logout", post_logout_redirect_uri="http://127.0.0.1:8000/", state="bye"
    )

    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8000/?state=bye"
    assert 'ESTSAUTH=""' in response.headers["set-cookie"]
    assert redirect_params(browser.authorize(prompt="none"))["error"] == "login_required"


def test_logout_adds_the_state_to_the_query_not_to_the_fragment(emulator, browser):
    response = browser.get(
        f"/{CONTOSO}/oauth2/v2.0/logout", post_logout_redirect_uri="http://127.0.0.1:8000/bye?x=1#top", state="s"
    )

    assert response.headers["location"] == "http://127.0.0.1:8000/bye?x=1&state=s#top"


def test_logout_to_a_foreign_site_shows_the_signed_out_page(emulator, browser):
    response = browser.get("/common/oauth2/v2.0/logout", post_logout_redirect_uri="https://evil.example/")

    assert response.status_code == 200
    assert "You signed out of your account" in response.text


@pytest.mark.parametrize("address", ["http://[::1", "//[x", "http://[bad/x"])
def test_logout_to_an_unreadable_address_signs_out_and_shows_the_signed_out_page(emulator, browser, address):
    browser.sign_in_through(BEN)

    response = browser.get("/organizations/oauth2/v2.0/logout", post_logout_redirect_uri=address, client_id=CLIENT_ID)

    assert response.status_code == 200
    assert "You signed out of your account" in response.text
    assert redirect_params(browser.authorize(prompt="none"))["error"] == "login_required"


def test_a_head_request_to_logout_does_not_sign_out(emulator, browser):
    browser.sign_in_through(BEN)

    assert browser.client.head("/organizations/oauth2/v2.0/logout").status_code == 200

    assert "code" in redirect_params(browser.authorize(prompt="none"))


def test_the_authorize_endpoint_also_accepts_post(emulator, browser):
    response = browser.client.post(
        "/organizations/oauth2/v2.0/authorize",
        data={
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid",
            "prompt": "none",
        },
    )

    assert redirect_params(response)["error"] == "login_required"


def test_fabrikam_people_can_sign_in_after_admin_consent(emulator, browser):

    browser.grant_admin_consent(FRANK)
    browser.client.cookies.clear()

    params = browser.sign_in_through(FIONA)

    claims = claims_of(emulator.redeem(params["code"]).json()["id_token"])
    assert claims["tid"] == FABRIKAM and claims["oid"] == FIONA.oid


def test_fragment_mode_puts_the_answer_in_the_fragment(emulator, browser):
    browser.sign_in_through(BEN)

    response = browser.authorize(response_mode="fragment")

    assert response.headers["location"].startswith(REDIRECT_URI + "#code=")
    assert redirect_params(response)["state"] == "state-1"


def test_state_survives_any_characters_in_every_response_mode(emulator, browser):
    browser.sign_in_through(BEN)
    state = '"><script>alert(1)</script> & ünïcode %3a+'

    assert redirect_params(browser.authorize(state=state))["state"] == state
    assert form_post_params(browser.authorize(state=state, response_mode="form_post"))[1]["state"] == state
    assert "<script>alert(1)" not in browser.authorize(state=state, response_mode="form_post").text


# --- max_age (OpenID Connect): how long ago the password was typed ------------------------------


def test_within_max_age_single_sign_on_goes_through_and_the_token_says_when_the_password_was_typed(emulator, browser):
    first = claims_of(emulator.id_token_for(browser, BEN, max_age="3600"))
    assert abs(first["auth_time"] - first["iat"]) <= 1
    emulator.control("POST", "clock", {"advance_seconds": 600}).raise_for_status()

    params = redirect_params(browser.authorize(max_age="3600"))  # no page: the session is recent enough
    second = claims_of(emulator.redeem(params["code"]).json()["id_token"])
    assert second["auth_time"] == first["auth_time"] and second["iat"] >= first["iat"] + 600


def test_past_max_age_the_password_is_asked_for_again(emulator, browser):
    browser.sign_in_through(BEN)
    emulator.control("POST", "clock", {"advance_seconds": 120}).raise_for_status()

    assert redirect_params(browser.authorize(prompt="none", max_age="60"))["error"] == "login_required"
    page = browser.authorize(max_age="60")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert 'name="password"' in browser.pick(page, BEN).text  # picking the signed-in account is not enough
    params = redirect_params(browser.sign_in(page, BEN))
    claims = claims_of(emulator.redeem(params["code"]).json()["id_token"])
    assert abs(claims["auth_time"] - claims["iat"]) <= 1


def test_max_age_zero_always_asks_and_without_max_age_there_is_no_auth_time(emulator, browser):
    assert "auth_time" not in claims_of(emulator.id_token_for(browser, BEN))
    assert "auth_time" not in claims_of(emulator.id_token_for(browser, BEN, max_age="9" * 5000))  # not a number
    page = browser.authorize(max_age="0")
    assert 'name="password"' in page.text
    assert "code" in redirect_params(browser.sign_in(page, BEN))


def test_a_guests_id_token_names_their_home_as_idp(emulator, browser):
    home = f"https://sts.windows.net/{FABRIKAM}/"
    guest = {
        "oid": "5b3f0e2a-9c1d-4e7f-8a6b-2d4c6e8f0a1b",
        "upn": "olga_fabrikam.example#EXT#@contoso.onmicrosoft.com",
        "display_name": "Olga Olsen (guest)",
        "password": "Guest-pass-1",
        "guest_idp": home,
    }
    emulator.control("POST", f"tenants/{CONTOSO}/users", guest).raise_for_status()

    response = browser.sign_in(browser.authorize(CONTOSO), guest["upn"], password=guest["password"])
    if "Permissions requested" in response.text:
        response = browser.accept(response)
    claims = claims_of(emulator.redeem(redirect_params(response)["code"]).json()["id_token"])
    assert (claims["tid"], claims["oid"], claims["idp"]) == (CONTOSO, guest["oid"], home)
    assert emulator.control("GET", "directory").json()["tenants"][0]["users"][-1]["guest_idp"] == home
    assert "idp" not in claims_of(emulator.id_token_for(emulator.browser(), BEN))  # a member's has none
