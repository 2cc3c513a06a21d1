"""Every page passes axe-core's automated WCAG 2.2 A/AA checks in a real browser.

Automated checks find only part of what matters (labels, names, contrast, landmarks, language),
but they catch regressions in it on every run."""

import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}


def assert_accessible(page, name):
    results = Axe().run(page, options=WCAG_AA)
    problems = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
    ]
    assert not problems, f"{name}: " + "\n".join(problems)


def sign_in(page, portal, person):
    page.goto(f"{portal.url}/signin/")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Continue").click()


def test_the_sign_in_pages_are_accessible(page, portal, people):
    page.goto(f"{portal.url}/signin/")
    assert_accessible(page, "sign-in")

    page.get_by_role("button", name="Continue").click()  # empty form: errors shown
    assert_accessible(page, "sign-in with errors")

    sign_in(page, portal, people["cleo"])
    expect(page).to_have_url(re.compile(r"/signin/enrol/$"))
    assert_accessible(page, "authenticator set-up")

    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    assert_accessible(page, "authenticator set-up with an error")


def test_the_administrators_pages_are_accessible(page, portal, people):
    ada = people["ada"]
    sign_in(page, portal, ada)
    page.get_by_label("Code").fill(pyotp.TOTP(ada.totp_seed).now())
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/portal/$"))

    for path in (
        "/portal/",
        "/profile/",
        "/profile/settings/",
        "/profile/password/",
        "/company/users/",
        "/company/users/new/",
        "/company/audit/",
    ):
        page.goto(f"{portal.url}{path}")
        assert_accessible(page, path)

    page.goto(f"{portal.url}/company/users/")
    page.get_by_role("link", name="Ben Berg").click()
    assert_accessible(page, "a user's page")
