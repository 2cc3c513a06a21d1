"""A company administrator at work in a real browser: invites a new colleague, who accepts the
emailed link, chooses a password and sets up an authenticator; later the administrator
deactivates the account and the colleague is signed out at once; the audit log's export holds
that deactivation."""

import csv
import io
import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser_signin import enter_code, enter_password

pytestmark = pytest.mark.e2e

PASSWORD = "a long passphrase for dora"


def invitation_link(portal, address):
    """The link in the last message sent to `address` (the portal writes mail to files)."""
    messages = [path.read_text() for path in sorted(portal.mailbox.iterdir())]
    mine = [text for text in messages if f"To: {address}" in text]
    assert mine, f"no mail to {address}"
    return re.search(r"http://\S+/invitation/\S+/", mine[-1]).group(0)


def test_an_administrator_invites_a_colleague_and_later_deactivates_her(browser, portal, people):
    portal.shell("from tenantlink.accounts.models import User\nUser.objects.filter(username='dora').delete()\n")
    ada = people["ada"]
    admin = browser.new_context().new_page()
    enter_password(admin, portal, ada)
    enter_code(admin, pyotp.TOTP(ada.totp_seed).now())
    expect(admin).to_have_url(re.compile(r"/portal/$"))

    admin.get_by_role("link", name="Users", exact=True).click()
    admin.get_by_role("link", name="New user").click()
    admin.get_by_label("Username").fill("dora")
    admin.get_by_label("Display name").fill("Dora Diaz")
    admin.get_by_label("Email address").fill("dora@contoso.example")
    admin.get_by_label("Send an invitation link by email").check()
    admin.get_by_role("button", name="Create user").click()
    expect(admin.get_by_text("An invitation has been sent to dora@contoso.example.")).to_be_visible()
    expect(admin.get_by_text("Invitation not yet accepted")).to_be_visible()

    dora = browser.new_context().new_page()
    dora.goto(invitation_link(portal, "dora@contoso.example"))
    expect(dora).to_have_url(re.compile(r"/set-password/$"))  # the token left the address bar
    dora.get_by_label("New password", exact=True).fill(PASSWORD)
    dora.get_by_label("New password confirmation").fill(PASSWORD)
    dora.get_by_role("button", name="Set password").click()
    expect(dora.get_by_text("Your password is set.")).to_be_visible()

    dora.get_by_label("Username").fill("dora")
    dora.get_by_label("Password").fill(PASSWORD)
    dora.get_by_role("button", name="Continue").click()
    seed = dora.locator("#manual-key").inner_text().replace(" ", "")
    dora.get_by_label("Code from the app").fill(pyotp.TOTP(seed).now())
    dora.get_by_role("button", name="Confirm").click()
    expect(dora.locator("#recovery-codes li")).to_have_count(10)
    dora.get_by_role("link", name="I have saved them — continue").click()
    expect(dora.get_by_role("heading", name="Welcome, Dora Diaz")).to_be_visible()

    admin.reload()
    expect(admin.get_by_text("Authenticator app", exact=True)).to_be_visible()
    admin.get_by_role("link", name="Deactivate").click()
    expect(admin.get_by_role("heading", name="Deactivate Dora Diaz?")).to_be_visible()
    admin.get_by_role("button", name="Deactivate").click()
    expect(admin.get_by_text("Dora Diaz can no longer sign in.")).to_be_visible()

    dora.reload()
    expect(dora).to_have_url(re.compile(r"/signin/\?next=/portal/$"))

    # The audit log's export holds what the filter form says, applied or not.
    admin.get_by_role("link", name="Audit log", exact=True).click()
    admin.get_by_label("Action").select_option(label="Deactivated user")
    with admin.expect_download() as download:
        admin.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows and {row["action"] for row in rows} == {"user.deactivated"}
    assert "dora" in {row["target"] for row in rows}


def test_after_back_the_filters_show_what_the_list_shows(page, portal, people):
    """The browser puts a form's later choices back after Back; the list is the earlier one's."""
    ada = people["ada"]
    enter_password(page, portal, ada)
    enter_code(page, pyotp.TOTP(ada.totp_seed).now())
    expect(page).to_have_url(re.compile(r"/portal/$"))
    page.goto(f"{portal.url}/company/users/?role=administrator")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"role=member"))

    page.go_back()

    expect(page).to_have_url(re.compile(r"role=administrator$"))
    expect(page.get_by_label("Role")).to_have_value("administrator")
    page.goto(f"{portal.url}/company/audit/?action=user.deactivated")
    page.get_by_label("Action").select_option("user.reactivated")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=user.reactivated"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"action=user.deactivated$"))
    expect(page.get_by_label("Action")).to_have_value("user.deactivated")
