"""Whatever arrives — wrong methods, missing or absurd fields, broken encodings — every page
answers with a page of its own, never a crash, for a visitor, a member and an administrator."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenantlink.conftest import sign_in

PAGES = [
    "/",
    "/portal/",
    "/health/",
    "/signin/",
    "/signin/verify/",
    "/signin/enrol/",
    "/signout/",
    "/invitation/MQ/abc-123/",
    "/invitation/MQ/set-password/",
    "/invitation/!!/set-password/",
    "/profile/",
    "/profile/settings/",
    "/profile/password/",
    "/profile/confirm-password/",
    "/profile/authenticator/",
    "/profile/recovery-codes/",
    "/profile/recovery-codes/new/",
    "/company/users/",
    "/company/users/new/",
    "/company/users/{user}/",
    "/company/users/{user}/deactivate/",
    "/company/users/{user}/reactivate/",
    "/company/users/{user}/reset-second-factor/",
    "/company/users/{user}/invite/",
    "/company/users/99999999999999999999/",
    "/company/audit/",
    "/company/audit/export.csv",
    "/company/audit/99999999999999999999/",
    "/staff/",
    "/sso/signin/",
    "/sso/callback/",
    "/sso/offer/",
    "/sso/offer/decline/",
    "/sso/connect/",
    "/sso/required/",
    "/sso/consent/callback/",
    "/profile/microsoft/disconnect/",
    "/company/sso/",
    "/company/sso/add/",
    "/company/sso/require/",
    "/company/sso/99999999999999999999/consent/",
]

ABSURD = {
    "username": "\x00" + "a" * 5000,
    "password": "é" * 5000,
    "code": "9" * 1000,
    "next": "javascript:alert(1)",
    "page": "-1",
    "q": "%" * 300,
    "time_zone": "../../etc/passwd",
    "how": "neither",
    "role": "owner",
    "email": "not-an-address",
    "since": "99999-01-01",
    "user": "1 OR 1=1",
    "old_password": "",
    "new_password1": "x",
    "new_password2": "y",
}


@pytest.fixture(params=["visitor", "member", "administrator", "half-signed-in"])
def browser(request, member, admin, outsider):
    browser = Client()
    if request.param == "member":
        sign_in(browser, member)
    elif request.param == "administrator":
        sign_in(browser, admin)
    elif request.param == "half-signed-in":
        browser.post("/signin/", {"username": "bob", "password": "correct horse battery staple"})
    return browser


@pytest.mark.parametrize("page", PAGES)
def test_no_page_crashes_on_bad_input(browser, page, member):
    url = page.format(user=member.pk)
    answers = [
        browser.get(url),
        browser.get(url, ABSURD),
        browser.post(url),
        browser.post(url, ABSURD),
        browser.generic("POST", url, b"\xff\xfe=\xff&code=\x80", content_type="application/x-www-form-urlencoded"),
        browser.generic("PUT", url, b"{}", content_type="application/json"),
    ]
    for response in answers:
        assert response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/portal/\x00/", {}),
        ("post", "/signin/", {"username": "bob\x00", "password": "correct horse battery staple"}),
        ("post", "/sso/signin/", {"next": "/portal/\x00"}),
        ("get", "/sso/callback/", {"state": "made-up", "error": "\x00"}),
        ("get", "/sso/consent/callback/", {"tenant": "\x00", "admin_consent": "True"}),
        ("post", "/sso/connect/", {"next": "/portal/\x00"}),
        ("get", "/company/users/", {"q": "\x00"}),
        ("post", "/company/sso/1/leavers/confirm/", {"held": "\x00"}),
        ("post", "/company/sso/add/", {"tenant\x00": "contoso.onmicrosoft.com"}),
    ],
)
def test_a_nul_character_gets_a_page_that_says_so(browser, method, path, data):
    # PostgreSQL cannot store a NUL: no page may get as far as trying.
    response = getattr(browser, method)(path, data)
    assert response.status_code == 400
    assert "a NUL character" in response.content.decode()


def test_a_session_cookie_that_no_session_could_have_is_not_looked_up(member):
    for key in ("\x00" * 32, "a" * 31 + "\x00", "A" * 32, "a" * 41, "é" * 32):
        browser = Client()
        browser.cookies["sessionid"] = key
        with CaptureQueriesContext(connection) as queries:
            response = browser.get("/portal/")
        assert response.status_code == 302 and response.url.startswith("/signin/"), key
        assert not [query for query in queries if "accounts_session" in query["sql"]], key
