"""The leaver check, turned on: an administrator asks for admin consent for Graph's User.Read.All
(answered here by FakeMicrosoft), and the check is on once Microsoft grants it; declined, abandoned
and late answers; turning it off and choosing its policy. The end-to-end tests do the same
against the Entra emulator."""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.conftest import PASSWORD, code_for, sign_in
from tenantlink.sso import graph
from tenantlink.sso.models import Integration, PendingAuthorization
from tenantlink.sso.tests.conftest import CONTOSO
from tenantlink.sso.tests.leaver_helpers import BEN, connect, run
from tenantlink.sso.tests.microsoft_signin_helpers import page_text

# Retry-After is obeyed without waiting in every test here (the `no_waiting` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("no_waiting")


def start(admin_client, integration, policy="deactivate"):
    page = admin_client.get(f"/company/sso/{integration.pk}/leavers/").content.decode()
    assert "Read all users' full profiles" in page and "Global Administrator or Privileged Role Administrator" in page
    response = admin_client.post(f"/company/sso/{integration.pk}/leavers/", {"policy": policy})
    location = urlsplit(response.url)
    assert location.path == f"/{CONTOSO}/v2.0/adminconsent"
    query = parse_qs(location.query)
    assert query["scope"] == ["https://graph.microsoft.com/.default"]
    return query["state"][0]


def come_back(client, state, **params):
    response = client.get("/sso/consent/callback/", {"state": state, **params})
    assert response.url == "/company/sso/"
    return client.get(response.url).content.decode()


APPROVED = {"admin_consent": "True", "tenant": CONTOSO}


def test_an_administrator_turns_the_check_on_and_it_is_on_once_microsoft_grants_the_permission(
    admin_client, integration, fake_microsoft
):
    assert "Turn on the leaver check" in admin_client.get("/company/sso/").content.decode()
    state = start(admin_client, integration, policy="disconnect")
    integration.refresh_from_db()
    assert integration.leaver_check == Integration.LeaverCheck.WAITING
    assert "Waiting for permission" in admin_client.get("/company/sso/").content.decode()

    fake_microsoft.roles_in.add(CONTOSO)
    page = come_back(admin_client, state, **APPROVED)
    assert "The leaver check of Contoso is on" in page
    integration.refresh_from_db()
    assert (integration.leaver_check, integration.leaver_policy) == ("on", "disconnect")
    assert list(AuditEvent.objects.filter(action__startswith="sso.leavers").values_list("action", flat=True)) == [
        Action.SSO_LEAVER_CHECK_ON,
        Action.SSO_LEAVER_CHECK_REQUESTED,
    ]
    # The state is single-use.
    assert "does not belong to a set-up started in this browser" in come_back(admin_client, state, **APPROVED)


def test_an_approval_without_the_permission_leaves_the_check_failing(admin_client, integration, fake_microsoft):
    # An Application Administrator approved: the app is in the tenant, but the token has no roles.
    state = start(admin_client, integration)
    page = come_back(admin_client, state, **APPROVED)
    integration.refresh_from_db()
    assert (integration.leaver_check, integration.leaver_failure_reason) == ("failing", "permission_missing")
    assert "Only a Global Administrator or Privileged Role Administrator" in page
    assert "Grant the permission again" in page


def test_a_cancelled_approval_says_who_may_grant_it_and_leaves_the_check_off(admin_client, integration, fake_microsoft):
    state = start(admin_client, integration)
    page = come_back(admin_client, state, error="access_denied", error_subcode="cancel")
    integration.refresh_from_db()
    assert integration.leaver_check == "off"
    assert "Privileged Role Administrator" in page
    assert "Turning it on did not work:" in page and "Turn on the leaver check" in page


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent."},
        {"error": "access_denied", "error_subcode": "cancel"},
    ],
)
def test_a_check_declined_at_microsoft_acts_on_nobody_even_where_the_permission_was_granted_before(
    admin_client, integration, fake_microsoft, member, answer
):
    """Turned off earlier, the permission still granted at Microsoft: declining when turning it on
    again means off, and the runner leaves everyone alone."""
    fake_microsoft.roles_in.add(CONTOSO)
    connect(member, integration, fake_microsoft, BEN, enabled=False)
    come_back(admin_client, start(admin_client, integration), **answer)
    integration.refresh_from_db()
    assert integration.leaver_check == "off"
    assert "0 integrations" in run()
    member.refresh_from_db()
    assert member.is_active
    assert not AuditEvent.objects.filter(action__in=[Action.SSO_LEAVER, Action.SSO_LEAVER_CHECK_ON]).exists()


@pytest.mark.parametrize("state", ["on", "failing"])
def test_granting_again_and_not_coming_back_does_not_stop_a_running_check(
    admin_client, integration, fake_microsoft, member, state
):
    """ "Grant the permission again" on a check that runs, then the administrator gives up at
    Microsoft: the check goes on, and acts on leavers."""
    fake_microsoft.roles_in.add(CONTOSO)
    Integration.objects.filter(pk=integration.pk).update(leaver_check=state)
    page = admin_client.get("/company/sso/").content.decode()
    assert ("Grant the permission again" in page) == (state == "failing")
    admin_client.post(f"/company/sso/{integration.pk}/leavers/", {"policy": "deactivate"})  # off to Microsoft
    integration.refresh_from_db()
    assert integration.leaver_check == state
    assert not AuditEvent.objects.filter(action=Action.SSO_LEAVER_POLICY_CHANGED).exists()  # the same policy
    connect(member, integration, fake_microsoft, BEN, enabled=False)
    run()
    member.refresh_from_db()
    assert not member.is_active
    if state == "failing":  # it works again: recorded
        [on] = AuditEvent.objects.filter(action=Action.SSO_LEAVER_CHECK_ON)
        assert (on.actor_label, on.details["recovered"]) == ("leaver-check", True)


def test_a_policy_chosen_when_granting_again_applies_at_once_and_is_recorded(admin_client, checked, fake_microsoft):
    admin_client.post(f"/company/sso/{checked.pk}/leavers/", {"policy": "disconnect"})
    checked.refresh_from_db()
    assert (checked.leaver_check, checked.leaver_policy) == ("on", "disconnect")
    event = AuditEvent.objects.get(action=Action.SSO_LEAVER_POLICY_CHANGED)
    assert event.details["policy"] == "disconnect"


def test_declining_a_new_grant_leaves_a_running_check_as_it_was(admin_client, checked, fake_microsoft):
    page = come_back(admin_client, start(admin_client, checked), error="access_denied", error_subcode="cancel")
    checked.refresh_from_db()
    assert checked.leaver_check == "on"
    assert "Privileged Role Administrator" in page  # what happened at Microsoft is still said


def test_a_request_abandoned_at_microsoft_is_off_after_its_time(admin_client, integration, fake_microsoft, settings):
    start(admin_client, integration)
    run()  # the trip to Microsoft may still come back
    integration.refresh_from_db()
    assert integration.leaver_check == "waiting"
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    PendingAuthorization.objects.update(expires_at=long_ago)
    Integration.objects.update(leaver_requested_at=long_ago)
    run()
    integration.refresh_from_db()
    assert (integration.leaver_check, integration.leaver_failure_reason) == ("off", "permission_missing")
    page = admin_client.get("/company/sso/").content.decode()
    assert "Turning it on did not work:" in page and "Turn on the leaver check" in page
    event = AuditEvent.objects.get(action=Action.SSO_LEAVER_CHECK_FAILED)
    assert (event.actor_label, event.details["reason"]) == ("leaver-check", "abandoned")


def test_a_pass_while_microsofts_answer_is_being_checked_does_not_give_up_on_it(
    admin_client, integration, fake_microsoft, monkeypatch
):
    """The callback takes its trip (single use) and then asks Microsoft for a token, which takes
    a while: a pass of the runner in between does not take the check for abandoned."""
    state = start(admin_client, integration)
    fake_microsoft.roles_in.add(CONTOSO)
    asking = graph.app_only_token

    def slow_microsoft(*args, **kwargs):
        assert not PendingAuthorization.objects.exists()  # the trip is taken already
        run()
        return asking(*args, **kwargs)

    monkeypatch.setattr(graph, "app_only_token", slow_microsoft)
    page = come_back(admin_client, state, **APPROVED)
    integration.refresh_from_db()
    assert integration.leaver_check == "on" and "The leaver check of Contoso is on" in page


def test_turned_off_in_another_tab_while_at_microsoft_stays_off_and_says_so(admin_client, integration, fake_microsoft):
    state = start(admin_client, integration)
    fake_microsoft.roles_in.add(CONTOSO)
    admin_client.post(f"/company/sso/{integration.pk}/leavers/off/")  # another tab
    page = come_back(admin_client, state, **APPROVED)
    integration.refresh_from_db()
    assert integration.leaver_check == "off"
    assert "was turned off while you were at Microsoft, so it stays off" in page
    assert "The leaver check of Contoso is on" not in page


def test_a_runner_whose_token_predates_the_grant_asks_for_a_new_one(checked, fake_microsoft, member):
    """A runner that keeps running (--every) holds an app-only token from before the permission
    was granted: it asks once more before calling the check failing."""
    fake_microsoft.roles_in.discard(CONTOSO)
    graph.app_only_token(CONTOSO)  # remembered without User.Read.All
    fake_microsoft.roles_in.add(CONTOSO)  # granted now
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    assert "1 user lost access" in run()


@pytest.mark.parametrize("meanwhile", ["licence ended", "integration disabled"])
def test_the_permission_coming_back_too_late_turns_nothing_on(admin_client, integration, fake_microsoft, meanwhile):
    state = start(admin_client, integration)
    fake_microsoft.roles_in.add(CONTOSO)
    if meanwhile == "licence ended":
        integration.company.revoke_licences(Licence.Product.SSO)
    else:
        integration.disable()
    page = come_back(admin_client, state, **APPROVED)
    integration.refresh_from_db()
    assert integration.leaver_check == Integration.LeaverCheck.OFF
    assert (
        "no valid single sign-on licence" in page
        if meanwhile == "licence ended"
        else "needs an active integration" in page
    )
    assert "The leaver check of Contoso is on" not in page
    event = AuditEvent.objects.get(action=Action.SSO_LEAVER_CHECK_FAILED)
    assert (event.outcome, event.details["reason"]) == (
        Outcome.DENIED,
        "licence" if meanwhile == "licence ended" else "integration",
    )


def test_a_state_for_the_leaver_check_only_works_in_its_own_browser(admin_client, integration, fake_microsoft, admin):
    state = start(admin_client, integration)
    fake_microsoft.roles_in.add(CONTOSO)
    other = Client()  # the same administrator in another browser (with the phone's next code)
    other.post("/signin/", {"username": admin.username, "password": PASSWORD})
    assert other.post("/signin/verify/", {"code": code_for(admin, 1)}).url == "/portal/"
    response = other.get("/sso/consent/callback/", {"state": state, **APPROVED}, follow=True)
    assert "does not belong" in response.content.decode()
    integration.refresh_from_db()
    assert integration.leaver_check == "waiting"
    assert PendingAuthorization.objects.filter(purpose="leaver_consent").count() == 1


def test_members_and_other_companies_cannot_touch_the_check(member_client, integration, outsider):
    for path in ("", "off/", "policy/", "confirm/"):
        assert member_client.post(f"/company/sso/{integration.pk}/leavers/{path}").status_code == 403
    outsider_client = Client()
    sign_in(outsider_client, outsider)
    assert outsider_client.post(f"/company/sso/{integration.pk}/leavers/off/").status_code == 404


def test_turning_it_off_and_changing_the_policy(admin_client, checked):
    page = admin_client.get("/company/sso/").content.decode()
    assert "Deactivate the portal user" in page and "Turn off the leaver check" in page
    admin_client.post(f"/company/sso/{checked.pk}/leavers/policy/", {"policy": "disconnect"})
    # The button asks first: leavers keep their access, and on again needs a Microsoft administrator.
    confirmation = page_text(admin_client.get(f"/company/sso/{checked.pk}/leavers/off/"))
    assert "keep their access to the portal" in confirmation and "Global Administrator" in confirmation
    checked.refresh_from_db()
    assert checked.leaver_check == "on"
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    checked.refresh_from_db()
    assert (checked.leaver_check, checked.leaver_policy) == ("off", "disconnect")
    assert "was already off" in page_text(admin_client.get(f"/company/sso/{checked.pk}/leavers/off/", follow=True))

    # A second tab: turning it off again says so and records nothing more.
    response = admin_client.post(f"/company/sso/{checked.pk}/leavers/off/", follow=True)
    assert f"The leaver check of {checked.display_name} was already off." in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_LEAVER_CHECK_OFF).count() == 1


@pytest.mark.parametrize("policy", ["", "delete-everyone", "Disconnect"])
def test_a_policy_that_is_not_one_of_the_answers_is_refused_and_says_so(admin_client, checked, policy):
    response = admin_client.post(f"/company/sso/{checked.pk}/leavers/policy/", {"policy": policy}, follow=True)
    assert "Nothing was saved: choose one of the answers for what the leaver check does." in page_text(response)
    checked.refresh_from_db()
    assert checked.leaver_policy == "deactivate"
    assert not AuditEvent.objects.filter(action=Action.SSO_LEAVER_POLICY_CHANGED).exists()


def test_two_tabs_turning_it_off_at_the_same_moment_record_it_once(admin_client, checked, monkeypatch):
    read_by_the_other_tab = Integration.objects.get(pk=checked.pk)
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    monkeypatch.setattr("tenantlink.sso.views.leavers._integration", lambda request, pk: read_by_the_other_tab)
    response = admin_client.post(f"/company/sso/{checked.pk}/leavers/off/", follow=True)
    assert f"The leaver check of {checked.display_name} was already off." in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_LEAVER_CHECK_OFF).count() == 1
