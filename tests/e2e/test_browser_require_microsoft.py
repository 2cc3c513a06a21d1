"""Require Microsoft sign-in, clicked through in Chromium: Ada reads the dry run and turns it on;
Ben, not connected yet, is made to connect right after his password and code and reaches the
portal only through Microsoft; signing in again with his password, he is sent to Microsoft. The
new pages are photographed at desktop and phone width and checked with axe-core."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_people
from tests.e2e.microsoft_steps import BEN_AT_MICROSOFT, CONNECTED, STAGE, Authenticator, connections
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_browser_microsoft_signin import (
    accept_permissions_if_asked,
    sign_in_at_microsoft,
    sign_in_with_password,
    status,
)
from tests.e2e.test_browser_signin import screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def people(console, emulator_control):
    """The demo people, Contoso Ltd's integration of the Contoso tenant active, nobody connected."""
    console.run(STAGE)
    return demo_people()


def test_an_administrator_requires_microsoft_sign_in_and_a_member_is_made_to_connect(
    browser, page, portal, emulator, console, people, screenshots
):
    authenticator = Authenticator()
    sign_in_with_password(page, portal, people["ada"], authenticator)
    page.get_by_role("link", name="Not now").click()  # Ada's own offer
    page.get_by_role("link", name="Single sign-on").click()
    requirement = page.locator("#require")
    expect(requirement).to_contain_text("Off")
    requirement.get_by_role("link", name="Review and require Microsoft sign-in").click()

    # The dry run: nothing is changed by reading it.
    expect(page.get_by_role("heading", name="2 members are not connected yet")).to_be_visible()
    expect(page.locator("#not-connected")).to_contain_text("Ben Berg (ben)")
    expect(page.locator("#not-connected")).to_contain_text("Cleo Carter (cleo)")
    expect(page.locator("#exempt")).to_contain_text("Ada")
    screenshot(page, screenshots, "require-microsoft-dry-run")
    assert_accessible(page, "the dry run of requiring Microsoft sign-in")
    page.get_by_role("button", name="Require Microsoft sign-in").click()

    expect(status(page)).to_have_text("Members must now sign in with Microsoft. Administrators are exempt.")
    expect(requirement).to_contain_text("Administrators are exempt")
    screenshot(page, screenshots, "require-microsoft-on")
    assert_accessible(page, "the Single sign-on page with Microsoft sign-in required")

    # Ben, in a browser of his own, signs in with his password and code.
    ben = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    ben.set_default_timeout(10_000)
    sign_in_with_password(ben, portal, people["ben"], authenticator)
    expect(ben.get_by_role("heading", name="Connect your Microsoft account")).to_be_visible()
    expect(ben.get_by_role("link", name="Not now")).to_have_count(0)
    expect(ben.get_by_role("button", name="Don't ask again")).to_have_count(0)
    expect(ben.get_by_role("link", name="My Profile")).to_have_count(0)
    screenshot(ben, screenshots, "require-microsoft-connect")
    assert_accessible(ben, "the mandatory offer to connect")

    ben.goto(f"{portal.url}/profile/")  # typed into the address bar
    expect(ben).to_have_url(re.compile(r"/sso/offer/\?next=%2Fprofile%2F$"))
    ben.get_by_role("button", name="Connect", exact=True).click()
    sign_in_at_microsoft(ben, emulator, BEN_AT_MICROSOFT)
    accept_permissions_if_asked(ben, portal)

    expect(ben).to_have_url(f"{portal.url}/profile/")
    expect(status(ben)).to_have_text(f"{CONNECTED} Ben Berg ({BEN_AT_MICROSOFT.upn}).")
    assert [row[0] for row in connections(console)] == ["ben"]

    # Next time his password and code do not sign him in: the page sends him to Microsoft.
    ben.get_by_role("button", name="Sign out").click()
    ben.get_by_role("button", name="Sign in with Microsoft").wait_for()
    ben.get_by_label("Username").fill("ben")
    ben.get_by_label("Password").fill(people["ben"].password)
    ben.get_by_role("button", name="Continue").click()
    ben.get_by_label("Code").fill(authenticator.code(people["ben"]))
    ben.get_by_role("button", name="Sign in", exact=True).click()
    expect(ben).to_have_url(f"{portal.url}/sso/required/")
    expect(ben.get_by_role("main")).to_contain_text("Contoso Ltd requires its members to sign in with their Microsoft")
    screenshot(ben, screenshots, "require-microsoft-refused")
    assert_accessible(ben, "the page of a password sign-in refused for Microsoft")
    ben.get_by_role("button", name="Sign in with Microsoft").click()
    expect(ben.get_by_role("heading", name="Welcome, Ben Berg")).to_be_visible()
    ben.context.close()
