"""One whole story in Swedish, in a real browser: a member whose browser asks for Swedish signs in
with password and code, reads his profile, makes Swedish his language and Helsinki his time zone,
and signs out; the sign-in page stays Swedish. And the sign-in page's language switch, which works
with JavaScript turned off, and with it keeps the username typed so far."""

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import fresh_page

pytestmark = pytest.mark.e2e

SWEDISH_DATE_TIME = re.compile(
    r"\d{1,2} (januari|februari|mars|april|maj|juni|juli|augusti|september|oktober|november|december) \d{4} \d\d:\d\d"
)


@pytest.fixture
def swedish_page(browser):
    """A browser set to Swedish (its Accept-Language is sv-SE)."""
    with fresh_page(browser, locale="sv-SE") as page:
        yield page


def sign_in(page, portal, person):
    page.get_by_label("Användarnamn").fill(person.username)
    page.get_by_label("Lösenord").fill(person.password)
    page.get_by_role("button", name="Fortsätt").click()
    expect(page).to_have_url(re.compile(r"/signin/verify/$"))
    expect(page.get_by_role("heading", name="Ange din kod")).to_be_visible()
    page.get_by_label("Kod").fill(pyotp.TOTP(person.totp_seed).now())
    page.get_by_role("button", name="Logga in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_role("heading", name=f"Välkommen, {person.name}")).to_be_visible()


def test_a_member_signs_in_changes_his_settings_and_signs_out_in_swedish(swedish_page, portal, people):
    page, ben = swedish_page, people["ben"]

    page.goto(f"{portal.url}/signin/")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page).to_have_title("Logga in · Tenantlink")
    # A mistake first: the error is Swedish too.
    page.get_by_label("Användarnamn").fill(ben.username)
    page.get_by_label("Lösenord").fill("fel lösenord")
    page.get_by_role("button", name="Fortsätt").click()
    expect(page.get_by_text("Vi kunde inte logga in dig med de här uppgifterna.")).to_be_visible()
    sign_in(page, portal, ben)

    page.get_by_role("navigation", name="Huvudmeny").get_by_role("link", name="Min profil").click()
    expect(page.get_by_role("heading", name="Min profil")).to_be_visible()
    last_sign_in = page.locator("dt", has_text="Senaste inloggning").locator("xpath=following-sibling::dd[1]")
    expect(last_sign_in).to_have_text(SWEDISH_DATE_TIME)

    page.get_by_role("link", name="Inställningar").click()
    expect(page.get_by_role("heading", name="Språk och tidszon")).to_be_visible()
    expect(page.get_by_text("10 oanvända återställningskoder.", exact=False)).to_be_visible()
    page.get_by_label("Språk", exact=True).select_option("sv")
    page.get_by_label("Tidszon", exact=True).select_option("Europe/Helsinki")
    page.get_by_role("button", name="Spara", exact=True).click()
    expect(page.get_by_text("Ditt språk och din tidszon har sparats.")).to_be_visible()
    expect(page.get_by_label("Tidszon", exact=True)).to_have_value("Europe/Helsinki")

    page.get_by_role("button", name="Logga ut").click()
    expect(page).to_have_url(re.compile(r"/signin/$"))
    expect(page.get_by_text("Du har loggat ut.")).to_be_visible()
    expect(page.get_by_role("heading", name="Logga in")).to_be_visible()
    assert portal.shell(
        "from tenantlink.accounts.models import User; u = User.objects.get(username='ben'); print(u.language, u.time_zone)"
    ).split() == ["sv", "Europe/Helsinki"]


def test_the_language_switch_works_without_javascript(browser, portal, people):
    with fresh_page(browser, locale="en-US", java_script_enabled=False) as page:
        page.goto(f"{portal.url}/signin/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        page.get_by_role("button", name="Svenska").click()

        expect(page).to_have_url(re.compile(r"/signin/$"))
        expect(page.locator("html")).to_have_attribute("lang", "sv")
        expect(page.get_by_role("button", name="English")).to_be_visible()
        sign_in(page, portal, people["nils"])  # the choice lasts, into the portal
        expect(page.get_by_role("link", name="Min profil")).to_be_visible()

        page.get_by_role("button", name="Logga ut").click()
        page.get_by_role("button", name="Suomi").click()
        expect(page.get_by_role("heading", name="Kirjaudu sisään")).to_be_visible()


def test_switching_language_keeps_the_username_typed_but_not_the_password(browser, portal):
    with fresh_page(browser, locale="en-US") as page:
        page.goto(f"{portal.url}/signin/")
        page.get_by_label("Username").fill("ben")
        page.get_by_label("Password").fill("ben-s-password")

        page.get_by_role("button", name="Svenska").click()

        expect(page.locator("html")).to_have_attribute("lang", "sv")
        expect(page.get_by_label("Användarnamn")).to_have_value("ben")
        expect(page.get_by_label("Lösenord")).to_have_value("")
        expect(page.get_by_label("Lösenord")).to_be_focused()
        page.reload()  # kept for the one load only
        expect(page.get_by_label("Användarnamn")).to_have_value("")

        # Over a username the address fills in (where accepting an invitation leads), too.
        page.goto(f"{portal.url}/signin/?username=ivy")
        page.get_by_label("Användarnamn").fill("ben")
        page.get_by_role("button", name="English").click()
        expect(page.get_by_label("Username")).to_have_value("ben")
