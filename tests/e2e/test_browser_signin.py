"""Flow 1 in a real browser: username + password, then the authenticator app (or its set-up).

Chromium talks to the portal under gunicorn on PostgreSQL; codes come from pyotp, as from a phone.
"""

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import fresh_page

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 812}
MICROSOFT_OR_SSO = re.compile(r"microsoft|\bsso\b|single sign-on|\bentra\b", re.IGNORECASE)


def enter_password(page, portal, person, password=None):
    page.goto(f"{portal.url}/signin/")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password if password is None else password)
    page.get_by_role("button", name="Continue").click()


def enter_code(page, code):
    expect(page).to_have_url(re.compile(r"/signin/verify/$"))
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()


def expect_portal_of(page, person):
    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_role("heading", name=f"Welcome, {person.name}")).to_be_visible()


def screenshot(page, folder, name):
    """Save the page at desktop and at phone width, and check that it fits the phone's width
    (a page wider than the screen makes people scroll sideways to read or to press a button)."""
    page.screenshot(path=folder / f"{name}-desktop.png", full_page=True)
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.screenshot(path=folder / f"{name}-phone.png", full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} is {width} px wide on a {PHONE['width']} px phone"
    finally:
        page.set_viewport_size(desktop)


def test_a_new_user_is_walked_through_enrolment_and_signs_in_again_with_the_app(page, portal, people, screenshots):
    cleo = people["cleo"]

    enter_password(page, portal, cleo)

    # No authenticator yet: the password alone leads to its set-up, never into the portal.
    expect(page).to_have_url(re.compile(r"/signin/enrol/$"))
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    screenshot(page, screenshots, "enrolment")
    # The key is shown in groups of four for typing; an app ignores the spaces, and so do we.
    seed = page.locator("#manual-key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", seed), seed
    page.get_by_label("Code from the app").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.get_by_text("Your authenticator app is set up.")).to_be_visible()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code) for code in codes), codes
    screenshot(page, screenshots, "recovery-codes")
    page.get_by_role("link", name="I have saved them — continue").click()

    expect_portal_of(page, cleo)
    expect(page.get_by_text("Contoso Ltd").first).to_be_visible()
    screenshot(page, screenshots, "portal")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin/$"))
    expect(page.get_by_text("You have signed out.")).to_be_visible()

    enter_password(page, portal, cleo)
    # The code that confirmed the app was spent; the portal refuses any code of the same 30-second
    # step as a replay. The next step's code is accepted (one step of clock drift is allowed),
    # so the test need not wait for the phone's next code.
    enter_code(page, pyotp.TOTP(seed).at(time.time() + 30))
    expect_portal_of(page, cleo)


def test_an_enrolled_user_signs_in_with_password_and_authenticator_code(page, portal, people):
    ben = people["ben"]

    enter_password(page, portal, ben)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    enter_code(page, pyotp.TOTP(ben.totp_seed).now())

    expect_portal_of(page, ben)


def test_pressing_sign_in_twice_on_a_slow_connection_signs_in_once(page, portal, people):
    """Both presses before the first answer arrives: the browser keeps only the second answer, and
    that request, still under the session the first one replaced, found the sign-in gone ("took
    too long", the code used up). The page sends the form once."""
    ben = people["ben"]
    enter_password(page, portal, ben)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    sent = []
    page.on("request", lambda request: sent.append(request.method) if request.url.endswith("/signin/verify/") else None)
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    page.get_by_label("Code").fill(pyotp.TOTP(ben.totp_seed).now())
    button = page.get_by_role("button", name="Sign in", exact=True).bounding_box()
    middle = (button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    page.mouse.click(*middle)
    time.sleep(0.15)  # a second press before the first answer is back
    page.mouse.click(*middle)

    expect_portal_of(page, ben)
    assert sent == ["POST"]
    page.reload()  # still signed in: the session the browser kept is the one that signed in
    expect_portal_of(page, ben)


def test_a_user_of_a_company_without_sso_licence_is_never_offered_microsoft_sign_in(page, portal, people):
    nils = people["nils"]

    enter_password(page, portal, nils)
    assert not MICROSOFT_OR_SSO.search(page.locator("body").inner_text())
    enter_code(page, pyotp.TOTP(nils.totp_seed).now())

    expect_portal_of(page, nils)
    expect(page.get_by_text("Northwind Traders").first).to_be_visible()
    # Neither the portal nor My Profile, where a Microsoft connection would be managed, mentions it.
    for path in ("/portal/", "/profile/", "/profile/settings/"):
        page.goto(f"{portal.url}{path}")
        expect(page).to_have_url(re.compile(f"{re.escape(path)}$"))
        text = page.locator("body").inner_text()
        assert not MICROSOFT_OR_SSO.search(text), f"{path} mentions {MICROSOFT_OR_SSO.search(text).group()!r}"


def test_a_wrong_password_shows_the_generic_message_and_stays_on_the_sign_in_page(page, portal, people):
    ben = people["ben"]

    enter_password(page, portal, ben, password="not-bens-password")

    expect(page).to_have_url(re.compile(r"/signin/$"))
    # The same words as for an unknown user or a paused account, so nothing is given away.
    expect(page.get_by_role("alert")).to_contain_text("We could not sign you in with these details.")
    expect(page.get_by_label("Password")).to_be_empty()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_on_a_phone_the_header_leaves_the_screen_to_the_page(browser, portal, people):
    """An administrator's navigation in Finnish, the longest words, on a 375 px phone: two rows,
    every link still there (the row scrolls sideways), and the page no wider than the screen."""
    ada = people["ada"]
    with fresh_page(browser, locale="fi-FI") as page:
        page.set_viewport_size(PHONE)
        page.goto(f"{portal.url}/signin/")
        page.get_by_label("Käyttäjätunnus").fill(ada.username)
        page.get_by_label("Salasana").fill(ada.password)
        page.get_by_role("button", name="Jatka").click()
        page.get_by_label("Koodi").fill(pyotp.TOTP(ada.totp_seed).now())
        page.get_by_role("button", name="Kirjaudu sisään", exact=True).click()
        expect(page).to_have_url(re.compile(r"/portal/$"))

        header = page.locator("header.topbar").bounding_box()
        assert header["height"] <= 110, f"the header takes {header['height']} px of {PHONE['height']}"
        navigation = page.get_by_role("navigation", name="Päävalikko")
        navigation.get_by_role("link", name="Valvontaloki").click()  # the last link, scrolled to
        expect(page).to_have_url(re.compile(r"/company/audit/$"))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # The row starts at the current page's link, which is in sight.
        current = navigation.get_by_role("link", name="Valvontaloki").bounding_box()
        assert current["x"] >= 0 and current["x"] + current["width"] <= PHONE["width"], current
