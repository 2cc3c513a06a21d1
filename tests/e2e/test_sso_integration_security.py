"""Flow 2, who may touch an integration: a tenant another company deleted cannot be claimed
without an account there, members are refused and other companies find nothing; and the client
secret is on no page, in no log and in no audit event.

Chromium and plain HTTP clients against the portal (gunicorn on PostgreSQL) and the Entra emulator.
This module runs after the other flow 2 stories (test_sso_integration_*.py), whose pages the
secret search reads too.
"""

import re
import uuid

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from tenantlink import demo
from tests.e2e import sso_integration_steps
from tests.e2e.conftest import Person
from tests.e2e.sso_integration_steps import (
    ACTIVE_CONTOSO_INTEGRATION,
    ANOTHER_ORGANIZATION,
    CONTOSO,
    CONTOSO_DOMAIN,
    MICROSOFT_PASSWORD,
    PAGES_SEEN,
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
    # Before asking Microsoft anything about the tenant, the portal has someone of it sign in.
    expect(nora).to_have_url(re.compile(re.escape(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize?")))
    sign_in_at_microsoft(nora, "frank@fabrikam.onmicrosoft.com")  # her Microsoft account is elsewhere

    expect_sso_page(nora, portal)
    expect(message(nora)).to_contain_text(ANOTHER_ORGANIZATION)
    claimed = card(nora, "Not ours")
    expect(fact(claimed, "Status")).to_have_text("Waiting for verification")
    claimed.get_by_role("button", name="Verify again").click()  # only back to Microsoft's sign-in
    expect(nora).to_have_url(re.compile(re.escape(f"{emulator}/{CONTOSO}/oauth2/v2.0/authorize?")))
    # It waits for a sign-in nobody of Northwind can give.
    assert [(i["status"], i["failure_reason"]) for i in stored(portal)["integrations"]] == [("pending", "wrong_tenant")]
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
    expect(fact(card(nora, "Not ours"), "Status")).to_have_text("Waiting for verification")
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
