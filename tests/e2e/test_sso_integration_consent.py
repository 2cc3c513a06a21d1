"""Flow 2: a company administrator connects a Microsoft Entra tenant through admin consent —
approved, declined, not allowed or cancelled at Microsoft — and answers that are not Microsoft's
answer to this browser activate nothing.

Chromium goes back and forth between the portal (gunicorn on PostgreSQL) and the Entra emulator's
sign-in and consent pages, as an administrator's browser goes between the portal and Microsoft.
Each story checks what the administrator sees, what the company's audit log says and, where the
pages cannot show it, what is stored.
"""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tenantlink import demo
from tests.e2e import sso_integration_steps
from tests.e2e.sso_integration_steps import (
    ACTIVE,
    ANOTHER_ORGANIZATION,
    CANCELLED,
    CONTOSO,
    CONTOSO_DOMAIN,
    DECLINED,
    FABRIKAM,
    GRANT_ADMIN_CONSENT,
    NOT_FROM_THIS_BROWSER,
    add_integration,
    audit_log,
    callback_url,
    card,
    connect_contoso,
    expect_admin_consent_page,
    expect_sso_page,
    fact,
    message,
    new_browser_page,
    service_principals,
    sign_in,
    sign_in_at_microsoft,
    stored,
)

pytestmark = pytest.mark.e2e

# The stories' fixtures, from sso_integration_steps: each story starts with no integration, and
# the pages its browser is shown are kept for the client secret search (`stage`, autouse).
authenticator = sso_integration_steps.authenticator
people = sso_integration_steps.people
stage = sso_integration_steps.stage


# --- Approved, declined, not allowed, cancelled -------------------------------------------------


def test_an_administrator_adds_her_tenant_by_domain_approves_it_and_it_is_active(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    page.get_by_role("link", name="Single sign-on").click()
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    page.get_by_role("link", name="Add integration").click()
    page.get_by_label("Tenant ID or domain").fill(CONTOSO_DOMAIN)
    page.get_by_role("button", name="Continue to Microsoft").click()

    # At Microsoft's admin consent for the tenant the domain resolved to, asking exactly for sign-in.
    state = expect_admin_consent_page(page, emulator)
    query = parse_qs(urlsplit(page.url).query)
    assert "scope=openid%20profile%20email" in page.url
    assert query["client_id"] == [demo.DEMO_CLIENT_ID]
    assert query["redirect_uri"] == [f"{portal.url}/sso/consent/callback/"]
    assert len(state) >= 32
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_have_text(f"{CONTOSO_DOMAIN} {ACTIVE}")
    contoso = card(page, CONTOSO_DOMAIN)
    expect(fact(contoso, "Status")).to_have_text("Active")
    expect(fact(contoso, "Tenant ID")).to_have_text(CONTOSO)
    expect(fact(contoso, "Connected users")).to_have_text(re.compile(r"^\s*0 of \d+ active users \(0%\)\s*$"))
    expect(fact(contoso, "Admin consent reported by Microsoft")).not_to_have_text("—")
    expect(fact(contoso, "Last verified")).not_to_have_text("—")
    expect(contoso.get_by_role("link", name="Disable")).to_be_visible()
    expect(contoso.get_by_role("button", name="Retry consent")).to_have_count(0)
    assert service_principals(emulator_control, CONTOSO_DOMAIN) == [demo.DEMO_CLIENT_ID]

    [integration] = stored(portal)["integrations"]
    assert integration["company__name"] == "Contoso Ltd" and integration["tenant_id"] == CONTOSO
    assert integration["status"] == "active"
    assert integration["consent_completed_at"] and integration["last_verified_at"]
    assert integration["tenant_signed_in_at"]  # right after approving, without a question
    events = audit_log(page, portal)
    assert [e["action"] for e in events] == [
        "sso.integration.added",
        "sso.consent.started",
        "sso.consent.succeeded",
        "sso.integration.verified",
    ]
    for event in events:
        assert (event["actor"], event["outcome"], event["client_address"]) == ("ada", "success", "127.0.0.1")
        assert event["target"] == f"{CONTOSO_DOMAIN} ({CONTOSO})"
        assert event["details"]["tenant"] == CONTOSO
    assert events[2]["details"]["reported_tenant"] == CONTOSO

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("cell", name="Integration verified with Microsoft")).to_be_visible()
    expect(page.get_by_role("cell", name="Microsoft reported admin consent")).to_be_visible()


def test_a_declined_approval_leaves_the_integration_failed_with_the_reason(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Back").click()  # "Cancel" on the permissions page: declined

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(DECLINED)
    expect(message(page)).to_contain_text("(Error code: AADSTS65004)")
    contoso = card(page, "Contoso")
    expect(fact(contoso, "Status")).to_have_text("Consent failed")
    expect(fact(contoso, "Why")).to_contain_text(DECLINED)
    expect(contoso.get_by_role("button", name="Retry consent")).to_be_visible()
    assert service_principals(emulator_control, CONTOSO_DOMAIN) == []

    events = audit_log(page, portal)
    assert [e["action"] for e in events] == ["sso.integration.added", "sso.consent.started", "sso.consent.failed"]
    assert events[-1]["outcome"] == "failure"
    assert events[-1]["details"]["code"] == "AADSTS65004"
    assert events[-1]["details"]["error"] == "access_denied"
    assert events[-1]["details"]["tenant"] == CONTOSO


def test_the_wrong_microsoft_accounts_are_explained_and_retry_consent_with_the_right_one_succeeds(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    first_state = expect_admin_consent_page(page, emulator)

    # First a member of Contoso at Microsoft, who may not approve for the organization.
    sign_in_at_microsoft(page, "ben@contoso.onmicrosoft.com")
    expect(page.get_by_role("heading", name="Need admin approval")).to_be_visible()
    page.locator("#return-to-app").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(CANCELLED)
    expect(message(page)).to_contain_text("Global Administrator")
    expect(message(page)).to_contain_text(GRANT_ADMIN_CONSENT)
    contoso = card(page, "Contoso")
    expect(fact(contoso, "Status")).to_have_text("Consent failed")
    expect(fact(contoso, "Why")).to_contain_text(CANCELLED)
    expect(fact(contoso, "Why")).to_contain_text(GRANT_ADMIN_CONSENT)
    failed = audit_log(page, portal)[-1]
    assert (failed["action"], failed["outcome"]) == ("sso.consent.failed", "failure")
    assert failed["details"]["error"] == "access_denied" and failed["details"]["subcode"] == "cancel"

    # Then the administrator of another organization (Fabrikam).
    contoso.get_by_role("button", name="Retry consent").click()
    assert expect_admin_consent_page(page, emulator) != first_state
    sign_in_at_microsoft(page, "frank@fabrikam.onmicrosoft.com")

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(ANOTHER_ORGANIZATION)
    expect(message(page)).to_contain_text("AADSTS50020")
    expect(fact(contoso, "Status")).to_have_text("Consent failed")
    expect(fact(contoso, "Why")).to_contain_text(ANOTHER_ORGANIZATION)
    assert audit_log(page, portal)[-1]["details"]["code"] == "AADSTS50020"
    assert service_principals(emulator_control, CONTOSO_DOMAIN) == []
    assert service_principals(emulator_control, "fabrikam.onmicrosoft.com") == []

    # Then Contoso's administrator.
    contoso.get_by_role("button", name="Retry consent").click()
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()
    # The first time, the portal has Microsoft sign someone of Contoso in; with two of its accounts
    # signed in at Microsoft in this browser, Microsoft asks which.
    expect(page).to_have_url(re.compile(re.escape(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize?")))
    page.get_by_role("button", name="Ada Admin ada@contoso.onmicrosoft.com").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_have_text(f"Contoso {ACTIVE}")
    expect(fact(contoso, "Status")).to_have_text("Active")
    expect(fact(contoso, "Why")).to_have_count(0)
    events = audit_log(page, portal)
    assert [e["action"] for e in events][-3:] == [
        "sso.consent.started",
        "sso.consent.succeeded",
        "sso.integration.verified",
    ]
    assert events[-1]["details"]["microsoft_username"] == "ada@contoso.onmicrosoft.com"


def test_an_administrator_who_turns_back_finds_the_integration_pending(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    # Cancel on the form: nothing is added.
    page.goto(f"{portal.url}/company/sso/add/")
    page.get_by_label("Tenant ID or domain").fill(CONTOSO)
    page.get_by_role("link", name="Cancel").click()
    expect_sso_page(page, portal)
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()

    # At Microsoft she changes her mind and goes back to the portal without answering.
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    page.go_back()
    page.goto(f"{portal.url}/company/sso/")

    contoso = card(page, "Contoso")
    expect(fact(contoso, "Status")).to_have_text("Pending consent")
    expect(fact(contoso, "Why")).to_have_count(0)
    expect(fact(contoso, "Admin consent reported by Microsoft")).to_have_text("—")
    expect(contoso.get_by_role("button", name="Retry consent")).to_be_visible()
    assert [e["action"] for e in audit_log(page, portal)] == ["sso.integration.added", "sso.consent.started"]


# --- Answers that are not Microsoft's answer to this browser ------------------------------------


def expect_refused_as_not_from_this_browser(page, portal, reported_tenant=CONTOSO):
    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(NOT_FROM_THIS_BROWSER)
    refused = audit_log(page, portal)[-1]
    assert (refused["action"], refused["outcome"], refused["actor"]) == ("sso.consent.failed", "denied", "ada")
    assert refused["details"] == {"reason": "state", "reported_tenant": reported_tenant}


def test_a_forged_answer_activates_nothing(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)

    # Anyone can write Microsoft's answer, with any tenant, and lure the administrator to it:
    # without a state, and with a state the portal never gave out.
    forged = {"admin_consent": "True", "tenant": CONTOSO, "scope": "openid profile email"}
    for state in ({}, {"state": "a-state-nobody-was-given"}):
        page.goto(callback_url(portal, **forged, **state))

        expect_refused_as_not_from_this_browser(page, portal)
        expect(fact(card(page, "Contoso"), "Status")).to_have_text("Pending consent")
    assert [e["action"] for e in audit_log(page, portal)].count("sso.consent.failed") == 2


def test_a_state_carried_to_another_browser_is_worthless_there(browser, page, portal, emulator, people, authenticator):
    ada = people["ada"]
    sign_in(page, portal, ada, authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    state = expect_admin_consent_page(page, emulator)

    # The same administrator, signed in in another browser, where this set-up was not started.
    other = new_browser_page(browser, portal)
    try:
        sign_in(other, portal, ada, authenticator)
        other.goto(callback_url(portal, admin_consent="True", tenant=CONTOSO, state=state))
        expect_refused_as_not_from_this_browser(other, portal)
        expect(fact(card(other, "Contoso"), "Status")).to_have_text("Pending consent")
    finally:
        other.context.close()

    # In the browser that started it, the approval still completes.
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()
    expect_sso_page(page, portal)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")


def test_an_answer_that_comes_too_late_activates_nothing(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    # She takes longer at Microsoft than the set-up waits (SSO_PENDING_LIFETIME, ten minutes).
    portal.shell(
        "import datetime\nfrom django.utils import timezone\n"
        "from tenantlink.sso.models import PendingAuthorization\n"
        "PendingAuthorization.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))\n"
    )
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()

    expect_refused_as_not_from_this_browser(page, portal)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Pending consent")
    expect(card(page, "Contoso").get_by_role("button", name="Retry consent")).to_be_visible()


def test_microsofts_answer_replayed_changes_nothing(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    answers = []
    page.on("request", lambda request: answers.append(request.url) if "/sso/consent/callback/" in request.url else None)
    connect_contoso(page, portal, emulator)
    [answer] = answers

    page.goto(answer)

    expect_refused_as_not_from_this_browser(page, portal)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")
    # Nothing was done a second time: it would have been audited.
    assert [e["action"] for e in audit_log(page, portal)] == [
        "sso.integration.added",
        "sso.consent.started",
        "sso.consent.succeeded",
        "sso.integration.verified",
        "sso.consent.failed",
    ]


def test_the_tenant_named_in_microsofts_answer_is_only_written_down(page, portal, emulator, people, authenticator):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")

    def name_another_tenant(route):
        answer = route.fetch(max_redirects=0)
        location = answer.headers["location"].replace(f"tenant={CONTOSO}", f"tenant={FABRIKAM}")
        route.fulfill(status=302, headers={"location": location, "cache-control": "no-store"})

    page.route(re.compile(r"/consent/accept$"), name_another_tenant)
    page.locator("#idBtn_Accept").click()

    # Microsoft confirms the app in the tenant that was added, whatever the answer says.
    expect_sso_page(page, portal)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")
    expect(fact(card(page, "Contoso"), "Tenant ID")).to_have_text(CONTOSO)
    succeeded = next(e for e in audit_log(page, portal) if e["action"] == "sso.consent.succeeded")
    assert succeeded["details"] == {"tenant": CONTOSO, "reported_tenant": FABRIKAM}
