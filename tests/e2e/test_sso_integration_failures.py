"""Flow 2 when things go wrong: Microsoft's own check fails, or Microsoft does not answer (the
emulator's control API breaks it on purpose), while adding a tenant or verifying it again; and
the company's licence ends while the administrator is at Microsoft.

Chromium goes between the portal (gunicorn on PostgreSQL) and the Entra emulator, as an
administrator's browser goes between the portal and Microsoft. Each story checks what the
administrator sees and what the company's audit log says.
"""

import re
import time
import uuid
from urllib.parse import urljoin

import pytest
from playwright.sync_api import expect

from tenantlink import demo
from tests.e2e import sso_integration_steps
from tests.e2e.sso_integration_steps import (
    ACTIVE_CONTOSO_INTEGRATION,
    APP_NOT_FOUND,
    CONTOSO,
    CONTOSO_DOMAIN,
    DECLINED,
    GRANT_ADMIN_CONSENT,
    LICENCE_ENDED,
    UNAVAILABLE,
    UNKNOWN_TENANT,
    add_integration,
    audit_log,
    card,
    connect_contoso,
    expect_admin_consent_page,
    expect_sso_page,
    fact,
    message,
    new_browser_page,
    sign_in,
    sign_in_at_microsoft,
)

pytestmark = pytest.mark.e2e

# The stories' fixtures, from sso_integration_steps: each story starts with no integration, and
# the pages its browser is shown are kept for the client secret search (`stage`, autouse).
authenticator = sso_integration_steps.authenticator
people = sso_integration_steps.people
stage = sso_integration_steps.stage


# --- Microsoft's own check fails, or Microsoft does not answer ----------------------------------


def test_verify_again_finds_that_the_app_was_removed_from_the_tenant(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    connect_contoso(page, portal, emulator)
    # Someone deletes the enterprise application in the Entra admin center.
    emulator_control.delete(f"/tenants/{CONTOSO_DOMAIN}/service_principals/{demo.DEMO_CLIENT_ID}").raise_for_status()

    card(page, "Contoso").get_by_role("button", name="Verify again").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(APP_NOT_FOUND)
    expect(message(page)).to_contain_text(GRANT_ADMIN_CONSENT)
    expect(message(page)).to_contain_text("(Error code: AADSTS700016)")
    contoso = card(page, "Contoso")
    expect(fact(contoso, "Status")).to_have_text("Consent failed")
    expect(fact(contoso, "Why")).to_contain_text(APP_NOT_FOUND)
    expect(fact(contoso, "Why")).to_contain_text("AADSTS700016")
    expect(contoso.get_by_role("button", name="Retry consent")).to_be_visible()

    failed = audit_log(page, portal)[-1]
    assert (failed["action"], failed["outcome"]) == ("sso.integration.verification_failed", "failure")
    assert failed["details"] == {"tenant": CONTOSO, "code": "AADSTS700016", "reason": "app_not_found"}


def test_an_approval_gone_before_the_sign_in_at_the_tenant_leaves_the_integration_waiting(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")

    def approved_and_signed_in_there_then_the_app_removed(route):
        # Microsoft records the approval, the portal sends Ada on to the sign-in at the tenant, and
        # Microsoft signs her in at once. Before the browser brings that answer to the portal, the
        # app is gone from the tenant again.
        location = route.fetch(max_redirects=0).headers["location"]
        while not location.startswith(f"{portal.url}/sso/callback/"):
            location = urljoin(location, page.request.get(location, max_redirects=0).headers["location"])
        emulator_control.delete(f"/tenants/{CONTOSO_DOMAIN}/service_principals/{demo.DEMO_CLIENT_ID}")
        route.fulfill(status=302, headers={"Location": location})

    page.route(re.compile(r"/consent/accept$"), approved_and_signed_in_there_then_the_app_removed)
    page.locator("#idBtn_Accept").click()

    # Microsoft no longer redeems the sign-in for an app the tenant does not have: the integration
    # waits, and does not work on the approval's word. Microsoft's code for it is not shown: for an
    # answer anyone may have made up, it would tell whether the app is approved in the tenant.
    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text("Microsoft did not sign you in at the tenant")
    expect(message(page)).not_to_contain_text("AADSTS")
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Waiting for verification")
    events = audit_log(page, portal)
    assert [e["action"] for e in events][-2:] == ["sso.consent.succeeded", "sso.integration.verification_failed"]
    assert (events[-1]["details"]["code"], events[-1]["details"]["step"]) == ("", "tenant_sign_in")

    # Verify again goes to the sign-in at the tenant, where Microsoft, not knowing the app there,
    # asks for the approval again.
    page.unroute(re.compile(r"/consent/accept$"))
    card(page, "Contoso").get_by_role("button", name="Verify again").click()
    expect(page.get_by_role("button", name="Accept")).to_be_visible()
    assert page.url.startswith(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize")


def test_microsoft_failing_or_hanging_during_verify_again_keeps_an_active_integration(
    page, portal, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    portal.shell(ACTIVE_CONTOSO_INTEGRATION.format(tenant=CONTOSO))
    page.goto(f"{portal.url}/company/sso/")

    emulator_control.post("/faults", json={"endpoint": "token", "status": 500}).raise_for_status()
    card(page, "Contoso").get_by_role("button", name="Verify again").click()
    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(UNAVAILABLE)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")

    # Longer than the portal waits (ENTRA_HTTP_TIMEOUT is 3 s for the tests).
    emulator_control.post("/faults", json={"endpoint": "token", "hang_seconds": 20}).raise_for_status()
    started = time.monotonic()
    card(page, "Contoso").get_by_role("button", name="Verify again").click()
    expect(message(page)).to_contain_text(UNAVAILABLE, timeout=15_000)
    assert time.monotonic() - started < 12, "the portal waited for Microsoft past its timeout"
    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text("(Error code: timeout)")
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")

    failures = audit_log(page, portal)
    assert [(e["action"], e["outcome"], e["details"]["reason"]) for e in failures] == [
        ("sso.integration.verification_failed", "failure", "unavailable")
    ] * 2
    assert failures[1]["details"]["code"] == "timeout"


def test_microsoft_failing_or_hanging_while_adding_explains_itself_and_password_sign_in_goes_on(
    browser, page, portal, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)

    emulator_control.post("/faults", json={"endpoint": "discovery", "status": 500}).raise_for_status()
    add_integration(page, portal, CONTOSO_DOMAIN)
    expect(page).to_have_url(f"{portal.url}/company/sso/add/")
    expect(page.get_by_role("heading", name="Add integration")).to_be_visible()
    expect(page.locator("#content")).to_contain_text(UNAVAILABLE)
    expect(page.get_by_label("Tenant ID or domain")).to_have_value(CONTOSO_DOMAIN)

    emulator_control.post("/faults", json={"endpoint": "discovery", "hang_seconds": 20}).raise_for_status()
    started = time.monotonic()
    page.get_by_role("button", name="Continue to Microsoft").click()
    expect(page.locator("#content")).to_contain_text(UNAVAILABLE, timeout=15_000)
    assert time.monotonic() - started < 12, "the portal waited for Microsoft past its timeout"
    expect(page.get_by_role("heading", name="Add integration")).to_be_visible()

    page.goto(f"{portal.url}/company/sso/")
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    assert audit_log(page, portal) == []

    # Microsoft entirely down: signing in with a password and a code does not need it.
    emulator_control.post("/faults", json={"endpoint": "*", "status": 503, "times": "always"}).raise_for_status()
    colleague = new_browser_page(browser, portal)
    try:
        sign_in(colleague, portal, people["ben"], authenticator)
        expect(colleague.get_by_role("heading", name="Welcome, Ben Berg")).to_be_visible()
    finally:
        colleague.context.close()


def test_a_tenant_microsoft_does_not_know_is_refused_on_the_form(page, portal, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)

    for tenant in (str(uuid.uuid4()), "nosuch.onmicrosoft.com"):
        add_integration(page, portal, tenant)

        expect(page).to_have_url(f"{portal.url}/company/sso/add/")
        expect(page.get_by_label("Tenant ID or domain")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#content")).to_contain_text(UNKNOWN_TENANT)

    page.goto(f"{portal.url}/company/sso/")
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    assert audit_log(page, portal) == []


# --- The licence ends meanwhile -------------------------------------------------------------------


def test_an_approval_after_the_licence_ended_changes_nothing(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)

    portal.manage("licence", "revoke", "Contoso Ltd")  # the operator, while she is at Microsoft
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(f"single sign-on {LICENCE_ENDED}, so Contoso was not activated.")
    expect(page.locator("#content")).to_contain_text("Your company's single sign-on licence is not valid")
    expect(page.locator("#content")).to_contain_text("Integrations are suspended")
    contoso = card(page, "Contoso")
    expect(fact(contoso, "Status")).to_contain_text("Pending consent")
    expect(fact(contoso, "Status")).to_contain_text("Suspended: no valid licence")
    expect(page.get_by_role("link", name="Add integration")).to_have_count(0)
    expect(contoso.get_by_role("button", name="Retry consent")).to_have_count(0)

    events = audit_log(page, portal)
    assert "sso.consent.succeeded" not in [e["action"] for e in events]
    assert (events[-1]["action"], events[-1]["outcome"]) == ("sso.consent.failed", "denied")
    assert events[-1]["details"] == {"tenant": CONTOSO, "reason": "licence"}


def test_a_refusal_at_microsoft_after_the_licence_ended_is_still_recorded_as_microsofts_answer(
    page, portal, emulator, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)

    portal.manage("licence", "revoke", "Contoso Ltd")
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Back").click()  # she declines as well

    # Microsoft's error is handled (and its code audited) before the licence is looked at.
    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(DECLINED)
    failed = audit_log(page, portal)[-1]
    assert (failed["action"], failed["outcome"]) == ("sso.consent.failed", "failure")
    assert failed["details"]["code"] == "AADSTS65004"
