"""Bad input to the protocol endpoints: wrong methods, bodies that do not parse, files where text
is expected. Each gets a Microsoft-shaped error, never a bare 500 or Starlette's plain text."""

import pytest

from .support import BEN, CLIENT_ID, CONTOSO, REDIRECT_URI, SECRET
from .test_token import error_of


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", "/common/oauth2/v2.0/token", "POST"),
        ("PUT", f"/{CONTOSO}/oauth2/v2.0/token", "POST"),
        ("POST", "/common/v2.0/.well-known/openid-configuration", "GET"),
        ("DELETE", "/common/discovery/v2.0/keys", "GET"),
    ],
)
def test_a_wrong_method_on_a_json_endpoint_is_aadsts900561(emulator, method, path, allowed):
    response = emulator.http.request(method, path)

    assert error_of(response, status=405) == ("invalid_request", 900561)
    assert f"only accepts {allowed} requests. Received a {method} request." in response.json()["error_description"]
    assert allowed in response.headers["allow"]


@pytest.mark.parametrize(
    "method, path", [("PUT", "/common/oauth2/v2.0/authorize"), ("POST", f"/{CONTOSO}/v2.0/adminconsent")]
)
def test_a_wrong_method_on_a_page_is_shown_on_the_error_page(emulator, method, path):
    response = emulator.http.request(method, path)

    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert "AADSTS900561" in response.text


def test_a_wrong_method_on_graph_is_a_graph_error(emulator):
    response = emulator.http.post("/v1.0/me")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "BadRequest"


def test_a_broken_multipart_body_at_the_token_endpoint_is_a_json_error(emulator):
    response = emulator.http.post(
        "/common/oauth2/v2.0/token",
        content=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )

    assert error_of(response) == ("invalid_request", 9002313)


def test_files_in_place_of_sign_in_fields_are_ignored(emulator, browser):
    page = browser.authorize()
    ctx = browser._ctx(page)

    for field in ("username", "account", "password"):
        data = {"ctx": ctx, "username": BEN.upn, "password": "x"}
        data.pop(field if field != "account" else "password")
        response = browser.client.post("/organizations/login", data=data, files={field: ("f.txt", b"x")})

        assert response.status_code == 200, (field, response.text[:300])
        assert 'name="password"' in response.text


def test_huge_and_odd_values_do_not_break_the_token_endpoint(emulator):
    response = emulator.token(
        grant_type="authorization_code",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        code="\x00" + "A" * 200_000,
        redirect_uri=REDIRECT_URI + "\u202e",
    )

    assert error_of(response) == ("invalid_grant", 9002313)
