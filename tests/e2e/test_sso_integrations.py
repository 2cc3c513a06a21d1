"""Flow 2: a company administrator connects a Microsoft Entra tenant through admin consent.

Chromium goes back and forth between the portal (gunicorn on PostgreSQL) and the Entra emulator's
sign-in and consent pages, as an administrator's browser goes between the portal and Microsoft;
the emulator's control API breaks Microsoft on purpose. Each story checks what the administrator
sees, what the company's audit log says and, where the pages cannot show it, what is stored.
"""

import contextlib
import csv
import io
import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tenantlink import demo
from tests.e2e.conftest import Person
from tests.e2e.test_browser_microsoft_signin import sign_in_with_password

pytestmark = pytest.mark.e2e

CONTOSO = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"
CONTOSO_DOMAIN = "contoso.onmicrosoft.com"
FABRIKAM = "c2e8b5f1-6a3d-4f97-8b2e-5d1c9a7e4f30"
MICROSOFT_PASSWORD = "Entra-demo-1"  # every account in the emulator's demo directory
# What the administrator reads (the portal's words, not Microsoft's).
ACTIVE = "is active: Microsoft confirmed the approval."
DECLINED = "The Microsoft administrator declined the permissions, so nothing was changed."
CANCELLED = "The approval at Microsoft was cancelled or did not finish."
GRANT_ADMIN_CONSENT = "Grant admin consent for your organization"
ANOTHER_ORGANIZATION = "belongs to another organization (tenant)"
APP_NOT_FOUND = "Microsoft does not (or no longer) know the app in this tenant"
UNAVAILABLE = "Microsoft could not be reached or did not answer in time. Try again in a few minutes."
NOT_FROM_THIS_BROWSER = "does not belong to a set-up started in this browser"
LICENCE_ENDED = "licence ended while you were at Microsoft"
UNKNOWN_TENANT = "Microsoft does not know this tenant ID or domain. Check it and try again."

# Every portal page a browser or client in these stories was shown (HTML), for the last story,
# which looks for the client secret in all of them.
PAGES_SEEN = []

STORED = """
import json
from tenantlink.audit.models import AuditEvent
from tenantlink.sso.models import Integration
print(json.dumps({
    "integrations": list(Integration.objects.values(
        "company__name", "display_name", "tenant_id", "status", "failure_reason", "failure_code",
        "consent_completed_at", "last_verified_at", "tenant_signed_in_at",
    )),
    "sso_events": AuditEvent.objects.filter(action__startswith="sso.").count(),
}, default=str))
"""
# An integration made active earlier (stories that start from there, without the way there).
# Made after the people in the story signed in: a sign-in with an active integration at hand is
# interrupted by the offer to connect a Microsoft account (flow 3), which is not the story here.
ACTIVE_CONTOSO_INTEGRATION = """
from django.utils import timezone
from tenantlink.companies.models import Company
from tenantlink.sso.models import Integration
integration = Integration.objects.create(
    company=Company.objects.get(name="Contoso Ltd"), tenant_id="{tenant}", display_name="Contoso",
    status="active", consent_completed_at=timezone.now(), last_verified_at=timezone.now(),
)
print(integration.pk)
"""


class Authenticator:
    """The people's authenticator apps. The portal accepts a code once, so someone who signs in
    twice in one story (in two browsers) uses the next time-step's code the second time, which
    the portal accepts as clock drift."""

    def __init__(self):
        self.last_step = {}

    def code(self, person):
        now = int(time.time()) // 30
        step = max(self.last_step.get(person.username, 0) + 1, now)
        while step > now + 1:  # a third sign-in in the same half minute waits for the phone
            time.sleep(1)
            now = int(time.time()) // 30
        self.last_step[person.username] = step
        return pyotp.TOTP(person.totp_seed).generate_otp(step)


@pytest.fixture
def authenticator():
    return Authenticator()


@pytest.fixture
def people(people_without_integrations):
    """The demo people; every story here starts with no integration, no pending flow and no
    single sign-on event in the audit log."""
    return people_without_integrations


def remember_pages(page, portal):
    """Keep every portal page this browser is shown, for the secret search."""

    def keep(response):
        redirect = 300 <= response.status < 400  # has no body
        if response.url.startswith(portal.url) and response.request.resource_type == "document" and not redirect:
            with contextlib.suppress(PlaywrightError):  # a page left before its body was read
                PAGES_SEEN.append(response.text())

    page.on("response", keep)
    return page


@pytest.fixture(autouse=True)
def stage(page, portal, emulator_control, people):
    """The emulator at its start, the demo people reset; the browser's pages kept."""
    remember_pages(page, portal)


def stored(portal):
    """The integrations in the database, and how many single sign-on audit events there are."""
    return json.loads(portal.shell(STORED))


def audit_log(page, portal):
    """The single sign-on events of the company's audit log, oldest first, as its administrator
    (signed in on `page`) exports them."""
    export = page.request.get(f"{portal.url}/company/audit/export.csv")
    assert export.ok, export.status
    PAGES_SEEN.append(export.text())
    rows = [row for row in csv.DictReader(io.StringIO(export.text())) if row["action"].startswith("sso.")]
    return [{**row, "details": json.loads(row["details"])} for row in reversed(rows)]


def new_browser_page(browser, portal):
    """A second browser (a profile of its own, no cookies shared with the first)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return remember_pages(page, portal)


def sign_in(page, portal, person, authenticator):
    sign_in_with_password(page, portal, person, authenticator)
    expect(page).to_have_url(re.compile(r"/portal/$"))


def add_integration(page, portal, tenant, name=""):
    page.goto(f"{portal.url}/company/sso/add/")
    page.get_by_label("Tenant ID or domain").fill(tenant)
    page.get_by_label("Name (optional)").fill(name)
    page.get_by_role("button", name="Continue to Microsoft").click()


def expect_admin_consent_page(page, emulator, tenant_id=CONTOSO):
    """The browser is at Microsoft's admin consent for `tenant_id`; the `state` it carries."""
    expect(page).to_have_url(re.compile(rf"^{re.escape(emulator)}/{tenant_id}/v2\.0/adminconsent\?"))
    return parse_qs(urlsplit(page.url).query)["state"][0]


def sign_in_at_microsoft(page, account):
    page.locator("#username").fill(account)
    page.locator("#password").fill(MICROSOFT_PASSWORD)
    page.locator("#idSIButton9").click()


def card(page, name):
    """The integration called `name` on the Single sign-on page."""
    return page.locator("li.integration").filter(has=page.get_by_role("heading", name=name, exact=True))


def fact(card, label):
    return card.locator(f"xpath=.//dt[normalize-space()='{label}']/following-sibling::dd[1]")


def expect_sso_page(page, portal):
    expect(page).to_have_url(f"{portal.url}/company/sso/")
    expect(page.get_by_role("heading", name="Single sign-on", level=1)).to_be_visible()


def message(page):
    """The message at the top of the page about what just happened."""
    return page.get_by_role("status")


def service_principals(emulator_control, tenant):
    directory = emulator_control.get("/directory").json()
    return next(t for t in directory["tenants"] if t["domain"] == tenant)["service_principals"]


def callback_url(portal, **params):
    return f"{portal.url}/sso/consent/callback/?{urlencode(params)}"


def connect_contoso(page, portal, emulator, name="Contoso"):
    """Ada (signed in) adds Contoso and approves it at Microsoft as its administrator."""
    add_integration(page, portal, CONTOSO_DOMAIN, name)
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")
    page.locator("#idBtn_Accept").click()
    expect_sso_page(page, portal)
    expect(fact(card(page, name), "Status")).to_have_text("Active")


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
    expect(fact(contoso, "Connected users")).to_have_text(re.compile(r"^\s*0 of \d+ active users \(0 %\)\s*$"))
    expect(fact(contoso, "Consent completed")).not_to_have_text("—")
    expect(fact(contoso, "Last verified")).not_to_have_text("—")
    expect(contoso.get_by_role("button", name="Disable")).to_be_visible()
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
    expect(page.get_by_role("cell", name="Admin consent given at Microsoft")).to_be_visible()


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
    expect(fact(contoso, "Consent completed")).to_have_text("—")
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


def test_an_approval_microsoft_does_not_confirm_leaves_the_integration_failed(
    page, portal, emulator, emulator_control, people, authenticator
):
    sign_in(page, portal, people["ada"], authenticator)
    add_integration(page, portal, CONTOSO, "Contoso")
    expect_admin_consent_page(page, emulator)
    sign_in_at_microsoft(page, "ada@contoso.onmicrosoft.com")

    def accept_then_remove_the_app(route):
        # Microsoft records the approval and answers with the redirect to the portal; before the
        # browser follows it, the app is gone from the tenant again.
        answer = route.fetch(max_redirects=0)
        assert answer.status == 302 and "admin_consent=True" in answer.headers["location"]
        emulator_control.delete(f"/tenants/{CONTOSO_DOMAIN}/service_principals/{demo.DEMO_CLIENT_ID}")
        route.fulfill(response=answer)

    page.route(re.compile(r"/consent/accept$"), accept_then_remove_the_app)
    page.locator("#idBtn_Accept").click()

    expect_sso_page(page, portal)
    expect(message(page)).to_contain_text(APP_NOT_FOUND)
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Consent failed")
    expect(fact(card(page, "Contoso"), "Why")).to_contain_text("AADSTS700016")
    # The answer said "approved" for Contoso; only Microsoft's own answer to the portal counts.
    events = audit_log(page, portal)
    assert [e["action"] for e in events][-2:] == ["sso.consent.succeeded", "sso.integration.verification_failed"]
    assert events[-1]["details"]["code"] == "AADSTS700016"


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


# --- Who may touch an integration -----------------------------------------------------------------

NORTHWIND_ADMIN = Person("nora", "Nora Nyberg", "Northwind Traders", "nora-e2e-password", pyotp.random_base32())
MAKE_NORTHWIND_ADMIN = """
from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.companies.models import Company
user = User.objects.filter(username="{p.username}").first() or User(username="{p.username}")
user.display_name, user.role = "{p.name}", "administrator"
user.company = Company.objects.get(name="{p.company}")
user.is_active, user.must_change_password = True, False
user.set_password("{p.password}")
user.save()
user.reset_second_factor()
TOTPDevice.enrol(user, "{p.totp_seed}", step=0)
"""


def signed_in_client(portal, person, authenticator):
    """An HTTP client signed in as `person`, and a CSRF token valid for its session."""
    client = httpx.Client(base_url=portal.url, timeout=20)

    def token(path):
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).text)
        return found.group(1)

    answer = client.post(
        "/signin/",
        data={"csrfmiddlewaretoken": token("/signin/"), "username": person.username, "password": person.password},
    )
    assert answer.headers.get("location") == "/signin/verify/", answer.text
    answer = client.post(
        "/signin/verify/", data={"csrfmiddlewaretoken": token("/signin/verify/"), "code": authenticator.code(person)}
    )
    assert answer.headers.get("location") == "/portal/", answer.text
    return client, token("/portal/")


def integration_requests(pk):
    return [
        ("GET", "/company/sso/"),
        ("GET", "/company/sso/add/"),
        ("POST", "/company/sso/add/"),
        ("POST", f"/company/sso/{pk}/consent/"),
        ("POST", f"/company/sso/{pk}/verify/"),
        ("POST", f"/company/sso/{pk}/disable/"),
        ("POST", f"/company/sso/{pk}/enable/"),
        ("GET", f"/company/sso/{pk}/delete/"),
        ("POST", f"/company/sso/{pk}/delete/"),
    ]


GRANT_NORTHWIND_LICENCE = """
import datetime
from django.utils import timezone
from tenantlink.companies.models import Company, Licence
Company.objects.get(name="Northwind Traders").grant_licence(
    Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30)
)
"""


def test_a_tenant_another_company_deleted_cannot_be_claimed_without_an_account_there(
    browser, page, portal, emulator, emulator_control, people, authenticator
):
    # Contoso connected its tenant, then deleted the integration: the app stays approved there.
    sign_in(page, portal, people["ada"], authenticator)
    connect_contoso(page, portal, emulator)
    card(page, "Contoso").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete integration").click()
    expect(page.get_by_text("No tenant is connected yet.")).to_be_visible()
    assert service_principals(emulator_control, CONTOSO_DOMAIN) == [demo.DEMO_CLIENT_ID]

    # Northwind, with a licence of its own: its administrator adds Contoso's tenant and, instead
    # of approving at Microsoft, comes back with an answer she wrote for her own state.
    portal.shell(MAKE_NORTHWIND_ADMIN.format(p=NORTHWIND_ADMIN) + GRANT_NORTHWIND_LICENCE)
    nora = new_browser_page(browser, portal)
    sign_in(nora, portal, NORTHWIND_ADMIN, authenticator)
    add_integration(nora, portal, CONTOSO, "Not ours")
    state = expect_admin_consent_page(nora, emulator)
    nora.goto(callback_url(portal, admin_consent="True", tenant=CONTOSO, state=state))
    # Microsoft confirms the app in that tenant, so the portal has someone of the tenant sign in.
    expect(nora).to_have_url(re.compile(re.escape(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize?")))
    sign_in_at_microsoft(nora, "frank@fabrikam.onmicrosoft.com")  # her Microsoft account is elsewhere

    expect_sso_page(nora, portal)
    expect(message(nora)).to_contain_text(ANOTHER_ORGANIZATION)
    claimed = card(nora, "Not ours")
    expect(fact(claimed, "Status")).to_have_text("Consent failed")
    claimed.get_by_role("button", name="Verify again").click()  # only back to Microsoft's sign-in
    expect(nora).to_have_url(re.compile(re.escape(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize?")))
    # It waits for a sign-in nobody of Northwind can give.
    assert [(i["status"], i["failure_reason"]) for i in stored(portal)["integrations"]] == [
        ("pending", "sign_in_pending")
    ]
    # Contoso once invited her as a guest: a guest's sign-in there does not count either.
    guest = {
        "oid": str(uuid.uuid4()),
        "upn": "nora_northwind.example#EXT#@contoso.onmicrosoft.com",
        "display_name": "Nora Nyberg (guest)",
        "password": MICROSOFT_PASSWORD,
        "guest_idp": "live.com",
    }
    emulator_control.post(f"/tenants/{CONTOSO}/users", json=guest).raise_for_status()
    sign_in_at_microsoft(nora, guest["upn"])
    expect_sso_page(nora, portal)
    expect(message(nora)).to_contain_text("is a guest in this tenant")
    expect(fact(card(nora, "Not ours"), "Status")).to_have_text("Consent failed")
    nora.context.close()

    # Contoso's administrator connects the tenant again.
    connect_contoso(page, portal, emulator)


def test_a_member_is_refused_and_another_companys_administrator_finds_nothing(portal, people, authenticator):
    portal.shell(MAKE_NORTHWIND_ADMIN.format(p=NORTHWIND_ADMIN))
    member, member_token = signed_in_client(portal, people["ben"], authenticator)
    outsider, outsider_token = signed_in_client(portal, NORTHWIND_ADMIN, authenticator)
    pk = int(portal.shell(ACTIVE_CONTOSO_INTEGRATION.format(tenant=CONTOSO)))
    form = {"tenant": CONTOSO, "display_name": "Taken over"}

    for method, path in integration_requests(pk):
        answer = member.request(method, path, data={"csrfmiddlewaretoken": member_token, **form})
        PAGES_SEEN.append(answer.text)
        assert answer.status_code == 403, f"{method} {path} by a member: HTTP {answer.status_code}"
    member.close()

    overview = outsider.get("/company/sso/")
    assert overview.status_code == 200 and CONTOSO not in overview.text
    for method, path in integration_requests(pk)[3:]:
        answer = outsider.request(method, path, data={"csrfmiddlewaretoken": outsider_token, **form})
        PAGES_SEEN.append(answer.text)
        assert answer.status_code == 404, f"{method} {path} by another company: HTTP {answer.status_code}"
        assert CONTOSO not in answer.text
    # Northwind has no licence: adding is refused before Microsoft is asked.
    added = outsider.post("/company/sso/add/", data={"csrfmiddlewaretoken": outsider_token, **form})
    assert (added.status_code, added.headers.get("location")) == (302, "/company/sso/")
    outsider.close()

    after = stored(portal)
    [integration] = after["integrations"]
    assert (integration["company__name"], integration["status"]) == ("Contoso Ltd", "active")
    assert after["sso_events"] == 0


# --- Secrets ---------------------------------------------------------------------------------------


def test_the_client_secret_is_on_no_page_in_no_log_and_in_no_audit_event(
    page, portal, emulator, emulator_control, people, authenticator
):
    secret = demo.DEMO_CLIENT_SECRET
    sign_in(page, portal, people["ada"], authenticator)
    connect_contoso(page, portal, emulator)  # one token request with the secret
    # Microsoft refuses the secret (expired): the answer that is most tempting to log in full.
    emulator_control.patch(
        f"/apps/{demo.DEMO_CLIENT_ID}", json={"secrets": [{"value": secret, "expires": "2020-01-01T00:00:00Z"}]}
    ).raise_for_status()
    card(page, "Contoso").get_by_role("button", name="Verify again").click()
    expect(message(page)).to_contain_text("The operator of this portal has to fix it")
    expect(fact(card(page, "Contoso"), "Status")).to_have_text("Active")  # nothing wrong with the tenant
    page.goto(f"{portal.url}/company/audit/")
    assert audit_log(page, portal)[-1]["details"]["reason"] == "configuration"

    # Every story's pages and audit log exports are in PAGES_SEEN (when the module runs whole).
    assert len(PAGES_SEEN) > 5
    assert not [text[:200] for text in PAGES_SEEN if secret in text]
    log = portal.log_path.read_text(errors="replace")
    assert "Microsoft POST" in log  # the token requests are logged, without their body
    assert secret not in log
    audited = portal.shell(
        "from tenantlink.audit.models import AuditEvent\n"
        "rows = AuditEvent.objects.values_list('actor_label', 'target_label', 'user_agent', 'details')\n"
        f"print(sum({secret!r} in repr(row) for row in rows), len(rows))\n"
    ).split()
    assert audited[0] == "0" and int(audited[1]) > 0
