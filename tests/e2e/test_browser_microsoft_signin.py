"""Flows 3–5 in a real browser, clicked through like a person: Ben connects his Microsoft work
account after signing in with his password and code, signs in with Microsoft alone, and turns it
off again; an administrator removes a colleague's connection. Chromium goes from the portal to
Microsoft's pages (the Entra emulator) and back; the portal's new pages are photographed at
desktop and phone width and checked with axe-core."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_people
from tests.e2e.microsoft_steps import (
    BEN_AT_MICROSOFT,
    CONNECT_BEN,
    CONNECTED,
    MICROSOFT_PASSWORD,
    NOT_CONNECTED,
    SESSION_ENDED,
    STAGE,
    Authenticator,
    connections,
)
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_browser_signin import enter_code, enter_password, screenshot

pytestmark = pytest.mark.e2e

STILL_AT_MICROSOFT = "You may still be signed in at Microsoft in this browser"


@pytest.fixture
def people(console, emulator_control):
    """The demo people, Contoso Ltd's integration of the Contoso tenant active (as if Ada had
    approved it earlier), nobody connected; Microsoft (the emulator) at its start."""
    console.run(STAGE)
    return demo_people()


def sign_in_with_password(page, portal, person, authenticator):
    enter_password(page, portal, person)
    enter_code(page, authenticator.code(person))


def sign_in_at_microsoft(page, emulator, account):
    expect(page).to_have_url(re.compile(f"^{re.escape(emulator)}/"))
    page.locator("#username").fill(account.upn)
    page.locator("#password").fill(MICROSOFT_PASSWORD)
    page.locator("#idSIButton9").click()


def accept_permissions_if_asked(page, portal):
    """Contoso lets its users consent for themselves: the first time, Microsoft asks."""
    page.wait_for_url(re.compile(rf"^{re.escape(portal.url)}/|/login$"))
    if page.locator("#idBtn_Accept").count():
        page.locator("#idBtn_Accept").click()


def status(page):
    return page.locator("ul.messages")


def test_a_user_connects_microsoft_signs_in_with_it_and_turns_it_off(
    page, portal, emulator, console, people, screenshots
):
    ben, authenticator = people["ben"], Authenticator()
    sign_in_with_password(page, portal, ben, authenticator)

    # Right after the password and the code: the offer.
    expect(page).to_have_url(f"{portal.url}/sso/offer/?next=%2Fportal%2F")
    expect(page.get_by_role("heading", name="Sign in with Microsoft?")).to_be_visible()
    expect(page.get_by_role("link", name="Not now")).to_be_visible()
    expect(page.get_by_role("button", name="Don't ask again")).to_be_visible()
    screenshot(page, screenshots, "microsoft-offer")
    assert_accessible(page, "the offer to sign in with Microsoft")
    page.get_by_role("button", name="Enable").click()

    sign_in_at_microsoft(page, emulator, BEN_AT_MICROSOFT)
    accept_permissions_if_asked(page, portal)

    expect(page).to_have_url(f"{portal.url}/portal/")
    expect(status(page)).to_have_text(f"{CONNECTED} Ben Berg ({BEN_AT_MICROSOFT.upn}).")
    screenshot(page, screenshots, "microsoft-connected")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{portal.url}/signin/")
    # This browser has turned Microsoft sign-in on: its button now comes before the password form.
    microsoft_button = page.get_by_role("button", name="Sign in with Microsoft")
    expect(microsoft_button).to_be_visible()
    assert microsoft_button.bounding_box()["y"] < page.get_by_label("Username").bounding_box()["y"]
    expect(page.locator("#still-at-microsoft")).to_contain_text(STILL_AT_MICROSOFT)
    screenshot(page, screenshots, "signin-after-connecting")
    page.reload()  # without "You have signed out.": a page with a message is checked at the end
    assert_accessible(page, "the sign-in page with the Microsoft button and Microsoft's sign-out")

    # Still signed in at Microsoft in this browser: one click, no password, no code.
    visited = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
    microsoft_button.click()
    expect(page).to_have_url(f"{portal.url}/portal/")
    expect(page.get_by_role("heading", name="Welcome, Ben Berg")).to_be_visible()
    # No page of Microsoft's was shown, nor the portal's code page: only the portal itself.
    assert visited == [f"{portal.url}/portal/"], visited

    page.get_by_role("link", name="My Profile").click()
    page.get_by_role("link", name="Settings").click()
    microsoft = page.locator("#microsoft")
    expect(microsoft).to_contain_text(f"Connected to the Microsoft account Ben Berg ({BEN_AT_MICROSOFT.upn})")
    expect(microsoft).not_to_contain_text("Not used to sign in yet.")
    screenshot(page, screenshots, "profile-settings-microsoft")
    assert_accessible(page, "My Profile → Settings with a Microsoft connection")

    microsoft.get_by_role("link", name="Deactivate single sign-on").click()
    expect(page.get_by_role("heading", name="Deactivate single sign-on?")).to_be_visible()
    screenshot(page, screenshots, "microsoft-disconnect")
    assert_accessible(page, "the confirmation to deactivate single sign-on")
    page.get_by_role("button", name="Deactivate single sign-on").click()

    # This session was opened with the Microsoft account just removed: it ends.
    expect(page).to_have_url(f"{portal.url}/signin/")
    expect(status(page)).to_have_text(
        "Microsoft sign-in is off. Sign in with your username, password and second factor."
    )
    assert connections(console) == []

    page.get_by_role("button", name="Sign in with Microsoft").click()
    expect(page).to_have_url(f"{portal.url}/signin/")
    expect(status(page)).to_have_text(
        NOT_CONNECTED + " Microsoft signed you in as ben@contoso.onmicrosoft.com; the next Sign in with Microsoft "
        "lets you choose another account."
    )
    screenshot(page, screenshots, "microsoft-not-connected")
    assert page.request.get(f"{portal.url}/portal/", max_redirects=0).status == 302  # not signed in
    # The explanation is a list item: a screen reader must still hear it as one of a list.
    assert_accessible(page, "the sign-in page with the explanation of a refusal")


def test_signing_out_at_microsoft_too_ends_the_sign_in_there(page, portal, emulator, console, people):
    """On a shared computer: after the portal's sign-out, the next person's Sign in with Microsoft
    would go straight through as Ben, until Ben signs out at Microsoft too."""
    console.run(CONNECT_BEN)
    page.goto(f"{portal.url}/signin/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    sign_in_at_microsoft(page, emulator, BEN_AT_MICROSOFT)
    accept_permissions_if_asked(page, portal)
    expect(page).to_have_url(f"{portal.url}/portal/")

    page.get_by_role("button", name="Sign out").click()
    notice = page.locator("#still-at-microsoft")
    expect(notice).to_contain_text(STILL_AT_MICROSOFT)
    notice.get_by_role("button", name="Sign out at Microsoft").click()
    # Microsoft signs the browser out and sends it back to the portal's sign-in page.
    expect(page).to_have_url(f"{portal.url}/signin/")
    expect(status(page)).to_have_text("You have signed out at Microsoft too.")
    expect(notice).to_have_count(0)
    page.get_by_role("button", name="Sign in with Microsoft").click()
    expect(page).to_have_url(re.compile(f"^{re.escape(emulator)}/"))  # Microsoft asks who it is again
    expect(page.locator("#password")).to_be_visible()


def test_an_administrator_removes_a_colleagues_microsoft_connection(
    browser, page, portal, emulator, console, people, screenshots
):
    console.run(CONNECT_BEN)
    ben = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    ben.set_default_timeout(10_000)
    ben.goto(f"{portal.url}/signin/")
    ben.get_by_role("button", name="Sign in with Microsoft").click()
    sign_in_at_microsoft(ben, emulator, BEN_AT_MICROSOFT)
    accept_permissions_if_asked(ben, portal)
    expect(ben.get_by_role("heading", name="Welcome, Ben Berg")).to_be_visible()

    sign_in_with_password(page, portal, people["ada"], Authenticator())
    page.get_by_role("link", name="Not now").click()  # Ada's own offer
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="Ben Berg").click()
    microsoft = page.locator("section").filter(has=page.get_by_role("heading", name="Microsoft sign-in"))
    expect(microsoft).to_contain_text(f"Ben Berg ({BEN_AT_MICROSOFT.upn})")
    expect(microsoft).to_contain_text("Contoso")
    screenshot(page, screenshots, "user-microsoft-connection")
    assert_accessible(page, "a user's page with a Microsoft connection")
    microsoft.get_by_role("link", name="Disconnect").click()
    expect(page.get_by_role("heading", name="Disconnect the Microsoft account of Ben Berg?")).to_be_visible()
    page.get_by_role("button", name="Disconnect").click()

    expect(status(page)).to_have_text(
        "Ben Berg's Microsoft connection is removed; they sign in with password and second factor."
    )
    expect(page.get_by_role("heading", name="Microsoft sign-in")).to_have_count(0)
    assert connections(console) == []

    # Ben's session was opened with that connection: it ends at his next click.
    ben.get_by_role("link", name="My Profile").click()
    expect(ben).to_have_url(re.compile(r"/signin/\?next=/profile/$"))
    expect(status(ben)).to_contain_text(SESSION_ENDED)
    ben.context.close()
