"""The leaver check end to end: the portal (gunicorn on PostgreSQL), `manage.py check_leavers` as
its own process, and the Entra emulator as Microsoft, whose control API disables and deletes
people, withdraws consent and breaks Graph on purpose. Each story checks what the people can
still do, what the audit log and the administrators' mailbox say, and what is stored."""

import re
import subprocess
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PYTHON, ROOT, demo_people
from tests.e2e.microsoft_steps import (
    BEN_AT_MICROSOFT,
    CONNECT_BEN,
    CONTOSO,
    MICROSOFT_PASSWORD,
    STAGE,
    Authenticator,
    Mailbox,
    MicrosoftAccount,
    admin_consent_at_microsoft,
    connections,
    last_event,
)
from tests.e2e.sso_integration_steps import sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_browser_signin import screenshot

pytestmark = pytest.mark.e2e

ADA_AT_MICROSOFT = MicrosoftAccount(
    "ada@contoso.onmicrosoft.com", "2a594cc8-efe5-4524-a2e7-24cf8f56e958", CONTOSO, "Ada Admin"
)
ALL_PERMISSIONS = "https://graph.microsoft.com/.default"
ADA_MAIL = "ada@contoso.example"

# Ada will not be offered Microsoft sign-in after her password sign-in (not this story); the
# people an earlier story added are gone.
QUIET_ADA = """
from tenantlink.accounts.models import User
from tenantlink.sso.models import DeclinedOffer, Leaver
DeclinedOffer.objects.get_or_create(user=User.objects.get(username="ada"))
User.objects.filter(username__startswith="person").delete()
Leaver.objects.all().delete()
"""
CHECK_ON = """
from tenantlink.sso.models import Integration
Integration.objects.update(leaver_check="on", leaver_policy="{policy}")
"""
STORED = """
import json
from django.db.models import Q
from tenantlink.accounts.models import User
from tenantlink.audit.models import AuditEvent
from tenantlink.sso.models import Integration, Leaver
integration = Integration.objects.get()
print(json.dumps({
    # Of this story's people (the demo people and the people it added), not of other stories'.
    "inactive": sorted(User.objects.filter(
        Q(username__in=["ada", "ben", "cleo", "nils"]) | Q(username__startswith="person"), is_active=False
    ).values_list("username", flat=True)),
    "leavers": list(Leaver.objects.order_by("id").values_list("user__username", "reason", "policy")),
    "leaver_events": AuditEvent.objects.filter(action="sso.leaver").count(),
    "check": integration.leaver_check, "reason": integration.leaver_failure_reason,
    "code": integration.leaver_failure_code, "held": integration.leaver_held,
}))
"""


@pytest.fixture
def integration_id(console, emulator_control):
    """Contoso Ltd's integration of the Contoso tenant active, Ben connected to his Microsoft
    account, Microsoft (the emulator) at its start."""
    integration_id = int(console.run(STAGE))
    console.run(CONNECT_BEN + QUIET_ADA)
    return integration_id


@pytest.fixture
def people(integration_id):
    return demo_people()


@pytest.fixture
def leaver_check(portal, emulator, console, integration_id):
    """The leaver check on: Contoso's Global Administrator granted User.Read.All at Microsoft."""
    admin_consent_at_microsoft(emulator, portal, CONTOSO, ADA_AT_MICROSOFT, scope=ALL_PERMISSIONS)
    console.run(CHECK_ON.format(policy="deactivate"))
    return integration_id


def check_leavers(portal):
    return portal.manage("check_leavers")


def stored(console):
    return console.json(STORED)


def users_at_microsoft(emulator_control, user, **change):
    emulator_control.patch(f"/tenants/{CONTOSO}/users/{user}", json=change).raise_for_status()


def password_refused(visitor, person):
    """The password step does not lead on to the code any more."""
    page = visitor.post("/signin/", username=person.username, password=person.password)
    return page.url.path == "/signin/"


# --- People who left ------------------------------------------------------------------------------


def test_a_user_disabled_at_microsoft_is_deactivated_after_one_pass(
    portal, console, emulator_control, leaver_check, people, new_visitor
):
    ben, authenticator = people["ben"], Authenticator()
    with_password, with_microsoft = new_visitor(), new_visitor()
    with_password.sign_in_with_password(ben, authenticator)
    with_microsoft.microsoft_signin(BEN_AT_MICROSOFT)
    assert with_password.is_signed_in() and with_microsoft.is_signed_in()
    mailbox = Mailbox(portal)

    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    assert "1 user lost access" in check_leavers(portal)

    assert not with_password.is_signed_in() and not with_microsoft.is_signed_in()
    assert password_refused(new_visitor(), ben)
    assert stored(console)["leavers"] == [["ben", "disabled", "deactivate"]]
    event = last_event(console, "sso.leaver")
    assert (event["target"], event["details"]["reason"], event["details"]["oid"]) == (
        "ben",
        "disabled",
        BEN_AT_MICROSOFT.oid,
    )
    [notice] = mailbox.new_messages(to=ADA_MAIL)
    assert "Ben Berg (ben, ben@contoso.onmicrosoft.com): The Microsoft account was disabled." in notice

    # The next pass finds nobody new: no second action, no second email.
    check_leavers(portal)
    assert stored(console)["leaver_events"] == 1 and len(mailbox.new_messages(to=ADA_MAIL)) == 1


def test_a_user_deleted_at_microsoft_is_deactivated_after_one_pass(
    portal, console, emulator_control, leaver_check, people, new_visitor
):
    ben = people["ben"]
    signed_in = new_visitor()
    signed_in.microsoft_signin(BEN_AT_MICROSOFT)
    mailbox = Mailbox(portal)
    emulator_control.delete(f"/tenants/{CONTOSO}/users/{BEN_AT_MICROSOFT.upn}").raise_for_status()

    check_leavers(portal)

    assert not signed_in.is_signed_in() and password_refused(new_visitor(), ben)
    assert stored(console)["leavers"] == [["ben", "deleted", "deactivate"]]
    assert last_event(console, "sso.leaver")["details"]["reason"] == "deleted"
    assert "The Microsoft account was deleted." in mailbox.new_messages(to=ADA_MAIL)[0]


def test_remove_the_connection_only_keeps_the_password(
    portal, console, emulator_control, leaver_check, people, new_visitor
):
    console.run(CHECK_ON.format(policy="disconnect"))
    ben, authenticator = people["ben"], Authenticator()
    with_password, with_microsoft = new_visitor(), new_visitor()
    with_password.sign_in_with_password(ben, authenticator)
    with_microsoft.microsoft_signin(BEN_AT_MICROSOFT)
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)

    check_leavers(portal)

    assert connections(console) == []
    assert with_password.is_signed_in() and not with_microsoft.is_signed_in()
    assert stored(console)["inactive"] == [] and stored(console)["leavers"] == [["ben", "disabled", "disconnect"]]


# --- Microsoft failing: nobody is changed ---------------------------------------------------------


FAULTS = {
    "5xx": {"endpoint": "graph", "status": 503, "times": "always"},
    "garbage": {"endpoint": "graph", "garbage_body": True, "times": "always"},
    "timeout": {"endpoint": "graph", "hang_seconds": 5, "times": "always"},
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_graph_changes_nobody_and_shows_failing(
    portal, console, emulator_control, leaver_check, people, new_visitor, fault
):
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    emulator_control.post("/faults", json=FAULTS[fault]).raise_for_status()
    mailbox = Mailbox(portal)

    check_leavers(portal)
    check_leavers(portal)

    state = stored(console)
    assert state["inactive"] == [] and state["leavers"] == [] and state["check"] == "failing"
    assert state["reason"] == ("bad_answer" if fault == "garbage" else "unavailable")
    [notice] = mailbox.new_messages(to=ADA_MAIL)  # told once, not at every pass
    assert "is failing, so nobody is changed" in notice
    ada = new_visitor()
    ada.sign_in_with_password(people["ada"], Authenticator())
    assert "Failing" in ada.get("/company/sso/").text


def test_withdrawn_consent_changes_nobody_and_shows_failing(portal, console, emulator_control, leaver_check, people):
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    client_id = portal.env["ENTRA_CLIENT_ID"]
    emulator_control.delete(f"/tenants/{CONTOSO}/service_principals/{client_id}").raise_for_status()

    check_leavers(portal)

    state = stored(console)
    assert state["inactive"] == [] and (state["check"], state["code"]) == ("failing", "AADSTS700016")


@pytest.mark.parametrize("batch_item", [False, True])
def test_throttling_is_waited_out(portal, console, emulator_control, leaver_check, people, batch_item):
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    fault = {"endpoint": "graph", "status": 429, "retry_after": 1, "times": 2, "batch_item": batch_item}
    emulator_control.post("/faults", json=fault).raise_for_status()

    check_leavers(portal)

    assert emulator_control.get("/faults").json()["faults"] == []  # both throttled answers were met
    assert stored(console)["inactive"] == ["ben"]


# --- The safety valve, several runners, integrations without the check ------------------------------

MORE_PEOPLE = """
from tenantlink.accounts.models import User
from tenantlink.companies.models import Company
from tenantlink.sso.models import Connection, Integration
integration = Integration.objects.get()
for oid, username in {people!r}:
    user = User.objects.create_user(username, company=Company.objects.get(name="Contoso Ltd"), display_name=username)
    Connection.objects.create(user=user, integration=integration, tid=integration.tenant_id, oid=oid)
"""


def more_people(console, emulator_control, count):
    """`count` more people of Contoso, at Microsoft and connected in the portal."""
    people = [(str(uuid.uuid4()), f"person{number}") for number in range(count)]
    for oid, username in people:
        emulator_control.post(
            f"/tenants/{CONTOSO}/users",
            json={"oid": oid, "upn": f"{username}@contoso.onmicrosoft.com", "display_name": username,
                  "password": MICROSOFT_PASSWORD},
        ).raise_for_status()  # fmt: skip
    console.run(MORE_PEOPLE.format(people=people))
    return people


def test_the_safety_valve_holds_until_an_administrator_confirms(
    portal, console, emulator_control, leaver_check, people, new_visitor
):
    leaving = more_people(console, emulator_control, 6)
    for oid, _username in leaving:
        users_at_microsoft(emulator_control, oid, enabled=False)

    assert "6 held back" in check_leavers(portal)
    assert stored(console)["inactive"] == [] and stored(console)["held"] == 6

    ada = new_visitor()
    ada.sign_in_with_password(people["ada"], Authenticator())
    page = ada.get("/company/sso/").text
    assert "6 connected people are disabled or deleted at Microsoft" in page
    ada.post(
        f"/company/sso/{leaver_check}/leavers/confirm/", held=re.search(r'name="held" value="(\w+)"', page).group(1)
    )
    check_leavers(portal)
    assert stored(console)["inactive"] == sorted(username for _oid, username in leaving)


CONNECT_CLEO = f"""
from tenantlink.accounts.models import User
from tenantlink.sso.models import Connection, Integration
Connection.objects.create(
    user=User.objects.get(username="cleo"), integration=Integration.objects.get(), tid="{CONTOSO}",
    oid="38d28601-c6aa-424e-b88a-441c835164d1", username="cleo@contoso.onmicrosoft.com",
)
"""


def test_two_runners_at_once_act_once(portal, console, emulator_control, leaver_check, people):
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    users_at_microsoft(emulator_control, "cleo@contoso.onmicrosoft.com", enabled=False)
    console.run(CONNECT_CLEO)
    mailbox = Mailbox(portal)
    runners = [
        subprocess.Popen([PYTHON, "manage.py", "check_leavers"], cwd=ROOT, env=portal.env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    for runner in runners:
        assert runner.wait(timeout=60) == 0

    state = stored(console)
    assert state["inactive"] == ["ben", "cleo"] and state["leaver_events"] == 2 and len(state["leavers"]) == 2
    assert len(mailbox.new_messages(to=ADA_MAIL)) == 1


def test_an_integration_without_the_check_or_the_permission_is_never_asked_about(
    portal, console, emulator, emulator_control, integration_id, people
):
    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    # Any request to Graph would use this fault up.
    emulator_control.post("/faults", json={"endpoint": "graph", "status": 500}).raise_for_status()

    check_leavers(portal)  # the check is off
    assert len(emulator_control.get("/faults").json()["faults"]) == 1

    console.run(CHECK_ON.format(policy="deactivate"))  # on, but User.Read.All was never granted
    admin_consent_at_microsoft(emulator, portal, CONTOSO, ADA_AT_MICROSOFT)
    check_leavers(portal)
    assert len(emulator_control.get("/faults").json()["faults"]) == 1
    state = stored(console)
    assert state["inactive"] == [] and (state["check"], state["reason"]) == ("failing", "permission_missing")


# --- In the browser -------------------------------------------------------------------------------


def test_an_administrator_turns_the_check_on_and_sees_a_leaver_deactivated(
    page, portal, emulator, emulator_control, console, people, screenshots
):
    sign_in(page, portal, people["ada"], Authenticator())

    page.get_by_role("link", name="Single sign-on").click()
    page.get_by_role("link", name="Turn on the leaver check").click()
    expect(page.get_by_role("heading", name="Turn on the leaver check", level=1)).to_be_visible()
    expect(page.get_by_text("Read all users' full profiles")).to_be_visible()
    assert_accessible(page, "leaver check")
    screenshot(page, screenshots, "leaver-check")
    page.get_by_label("Deactivate the portal user").check()
    page.get_by_role("button", name="Continue to Microsoft").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(emulator)}/{CONTOSO}/v2\.0/adminconsent\?"))
    page.locator("#username").fill(ADA_AT_MICROSOFT.upn)
    page.locator("#password").fill(MICROSOFT_PASSWORD)
    page.locator("#idSIButton9").click()
    page.locator("#idBtn_Accept").click()

    expect(page).to_have_url(f"{portal.url}/company/sso/")
    expect(page.get_by_role("status")).to_contain_text("The leaver check of Contoso is on")
    check = page.locator("xpath=//dt[normalize-space()='State']/following-sibling::dd[1]")
    expect(check).to_have_text("On")
    assert_accessible(page, "single sign-on with the leaver check on")
    screenshot(page, screenshots, "leaver-check-on")

    users_at_microsoft(emulator_control, BEN_AT_MICROSOFT.upn, enabled=False)
    check_leavers(portal)

    page.get_by_role("link", name="Users").first.click()
    page.get_by_role("link", name="Ben Berg").click()
    expect(page.get_by_text("Deactivated", exact=True)).to_be_visible()
    expect(page.locator("#leaver-reason")).to_contain_text("The Microsoft account was disabled")
    expect(page.locator("#leaver-reactivation")).to_contain_text("the next leaver check deactivates them again")
    assert_accessible(page, "a leaver's user page")
    screenshot(page, screenshots, "leaver-user-page")

    # Ada lets Ben in again with his password, as his page says: disconnect, then reactivate.
    # The next pass leaves him alone, though he is still disabled at Microsoft.
    page.get_by_role("link", name="Disconnect").click()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("#leaver-reactivation")).to_have_count(0)
    page.get_by_role("button", name="Reactivate").click()
    check_leavers(portal)
    page.reload()
    expect(page.get_by_text("Active", exact=True)).to_be_visible()
    expect(page.locator("#leaver-reason")).to_contain_text("The Microsoft account was disabled")
