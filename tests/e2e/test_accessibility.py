"""Every page passes axe-core's automated WCAG 2.2 A/AA checks in a real browser, in English,
Swedish and Finnish (longer words, other names for the same buttons and landmarks).

Automated checks find only part of what matters (labels, names, contrast, landmarks, language),
but they catch regressions in it on every run."""

import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}
LANGUAGES = ["en", "sv", "fi"]


@pytest.fixture(params=LANGUAGES)
def language(request, page):
    """The browser asks for this language, as a person whose browser is set to it."""
    page.set_extra_http_headers({"Accept-Language": request.param})
    return request.param


def assert_accessible(page, name):
    results = Axe().run(page, options=WCAG_AA)
    problems = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
    ]
    assert not problems, f"{name}: " + "\n".join(problems)


def submit(page):
    """The form's own button, whatever it is called in the page's language."""
    page.locator("main form[action='/signin/'] button, main form:not([action]) button[type=submit]").first.click()


def sign_in(page, portal, person):
    page.goto(f"{portal.url}/signin/")
    page.locator("#id_username").fill(person.username)
    page.locator("#id_password").fill(person.password)
    submit(page)


def test_the_sign_in_pages_are_accessible(page, portal, people, language):
    page.goto(f"{portal.url}/signin/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    assert_accessible(page, f"sign-in ({language})")

    submit(page)  # empty form: errors shown
    assert_accessible(page, f"sign-in with errors ({language})")

    sign_in(page, portal, people["cleo"])
    expect(page).to_have_url(re.compile(r"/signin/enrol/$"))
    assert_accessible(page, f"authenticator set-up ({language})")

    page.locator("#id_code").fill("000000")
    submit(page)
    assert_accessible(page, f"authenticator set-up with an error ({language})")


def test_the_administrators_pages_are_accessible(page, portal, people, language):
    ada = people["ada"]
    sign_in(page, portal, ada)
    page.locator("#id_code").fill(pyotp.TOTP(ada.totp_seed).now())
    submit(page)
    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.locator("html")).to_have_attribute("lang", language)

    for path in (
        "/portal/",
        "/profile/",
        "/profile/settings/",
        "/profile/password/",
        "/company/users/",
        "/company/users/new/",
        "/company/audit/",
        "/company/sso/",
        "/company/sso/add/",
        "/no-such-page/",
    ):
        page.goto(f"{portal.url}{path}")
        assert_accessible(page, f"{path} ({language})")

    page.goto(f"{portal.url}/company/users/")
    page.get_by_role("link", name="Ben Berg").click()
    assert_accessible(page, f"a user's page ({language})")
