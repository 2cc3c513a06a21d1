"""Flow 2 in a real browser, clicked through like a person: a company administrator connects her
Microsoft Entra tenant. Chromium goes from the portal to Microsoft's sign-in and consent pages
(the Entra emulator) and back; every portal page on the way is photographed at desktop and phone
width and checked with axe-core."""

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_browser_signin import screenshot

pytestmark = pytest.mark.e2e

CONTOSO = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"


def test_an_administrator_connects_her_microsoft_tenant(
    page, portal, emulator, emulator_control, people_without_integrations, screenshots
):
    ada = people_without_integrations["ada"]
    page.goto(f"{portal.url}/signin/")
    page.get_by_label("Username").fill(ada.username)
    page.get_by_label("Password").fill(ada.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(pyotp.TOTP(ada.totp_seed).now())
    page.get_by_role("button", name="Sign in", exact=True).click()

    page.get_by_role("link", name="Single sign-on").click()
    expect(page.get_by_role("heading", name="Single sign-on", level=1)).to_be_visible()
    expect(page.get_by_text("Your single sign-on licence is valid until")).to_be_visible()
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    screenshot(page, screenshots, "sso-empty")
    assert_accessible(page, "/company/sso/ without integrations")

    page.get_by_role("link", name="Add integration").click()
    expect(page.get_by_role("heading", name="Add integration")).to_be_visible()
    page.get_by_role("button", name="Continue to Microsoft").click()  # nothing typed yet
    expect(page.locator(".field .errorlist").get_by_text("This field is required.")).to_be_visible()
    expect(
        page.get_by_role("alert").get_by_role("link", name="Tenant ID or domain: This field is required.")
    ).to_be_visible()
    assert_accessible(page, "/company/sso/add/ with an error")
    page.get_by_label("Tenant ID or domain").fill("contoso.onmicrosoft.com")
    page.get_by_label("Name (optional)").fill("Contoso")
    screenshot(page, screenshots, "sso-add")
    assert_accessible(page, "/company/sso/add/")
    page.get_by_role("button", name="Continue to Microsoft").click()

    # At Microsoft: her Microsoft administrator account, then the permissions for the organization.
    expect(page).to_have_url(re.compile(rf"^{re.escape(emulator)}/{CONTOSO}/v2\.0/adminconsent\?"))
    page.locator("#username").fill("ada@contoso.onmicrosoft.com")
    page.locator("#password").fill("Entra-demo-1")
    page.locator("#idSIButton9").click()
    expect(page.locator("#idBtn_Accept")).to_be_visible()
    page.locator("#idBtn_Accept").click()

    expect(page).to_have_url(f"{portal.url}/company/sso/")
    expect(page.get_by_role("status")).to_have_text("Contoso is active: Microsoft confirmed the approval.")
    contoso = page.locator("li.integration").filter(has=page.get_by_role("heading", name="Contoso"))
    expect(contoso.locator(".badge")).to_have_text("Active")
    expect(contoso).to_contain_text(CONTOSO)
    screenshot(page, screenshots, "sso-active")
    page.reload()  # the same page without the message, which is checked at the end
    assert_accessible(page, "/company/sso/ with an active integration")

    # The adoption picture: nobody connected yet, and Ada's own sign-in of today in the chart.
    expect(contoso.locator("dd .adoption-numbers")).to_have_text(re.compile(r"^0 of \d+ active users \(0%\)$"))
    chart = page.get_by_role("img", name="Sign-ins per day, last 30 days")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar.password").last).to_be_visible()
    page.get_by_text("Sign-ins of each day as a table").click()
    numbers = page.locator(".chart-numbers table")
    expect(numbers.locator("tbody tr")).to_have_count(30)
    expect(numbers.locator("tbody tr").last.locator("td").first).not_to_have_text("0")
    page.get_by_role("heading", name="Sign-ins").scroll_into_view_if_needed()
    screenshot(page, screenshots, "sso-adoption")
    assert_accessible(page, "/company/sso/ with the sign-ins table open")

    contoso.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete Contoso?")).to_be_visible()
    expect(page.get_by_text("Nobody has connected a Microsoft account through it.")).to_be_visible()
    screenshot(page, screenshots, "sso-delete")
    assert_accessible(page, "the delete confirmation")
    page.get_by_role("button", name="Delete integration").click()

    expect(page.get_by_role("status")).to_have_text("Contoso is deleted; 0 Microsoft connections were removed.")
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    # The confirmation is a list item; a screen reader must still hear it as one of a list.
    assert_accessible(page, "/company/sso/ with a message")
