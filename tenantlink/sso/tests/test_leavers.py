"""The leaver check: an administrator turns it on through admin consent for Graph's User.Read.All,
and `manage.py check_leavers` removes the access of people disabled or deleted at Microsoft
(answered here by FakeMicrosoft). The end-to-end tests do the same against the Entra emulator."""

import datetime
import io
import re
import sqlite3
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import mail
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.conftest import PASSWORD, code_for, make_user, sign_in
from tenantlink.sso import graph, leavers
from tenantlink.sso.models import Connection, Integration, Leaver, PendingAuthorization
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM
from tenantlink.sso.tests.test_microsoft_signin import page_text

BEN = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


@pytest.fixture
def integration(contoso, fake_microsoft):
    fake_microsoft.app_in.add(CONTOSO)
    return Integration.objects.create(
        company=contoso, tenant_id=CONTOSO, display_name="Contoso", status=Integration.Status.ACTIVE
    )


@pytest.fixture
def checked(integration, fake_microsoft, admin):
    """The leaver check on: Microsoft granted User.Read.All in Contoso."""
    fake_microsoft.roles_in.add(CONTOSO)
    Integration.objects.filter(pk=integration.pk).update(leaver_check=Integration.LeaverCheck.ON)
    integration.refresh_from_db()
    return integration


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Retry-After is obeyed without the test waiting: the waits are written down instead."""
    waits = []
    monkeypatch.setattr(graph, "_sleep", waits.append)
    return waits


def connect(user, integration, fake_microsoft, oid=None, enabled=True):
    oid = oid or str(uuid.uuid4())
    fake_microsoft.accounts[oid] = enabled
    return Connection.objects.create(
        user=user, integration=integration, tid=CONTOSO, oid=oid, username=f"{user.username}@contoso.onmicrosoft.com"
    )


def run():
    out = io.StringIO()
    call_command("check_leavers", stdout=out)
    return out.getvalue()


def graph_requests(fake_microsoft):
    return [r for r in fake_microsoft.requests if r.url.host == "graph.microsoft.com"]


# --- Turning it on -------------------------------------------------------------------------------


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
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    checked.refresh_from_db()
    assert (checked.leaver_check, checked.leaver_policy) == ("off", "disconnect")

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


# --- The check -------------------------------------------------------------------------------------


def test_two_tabs_turning_it_off_at_the_same_moment_record_it_once(admin_client, checked, monkeypatch):
    read_by_the_other_tab = Integration.objects.get(pk=checked.pk)
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    monkeypatch.setattr("tenantlink.sso.views.leavers._integration", lambda request, pk: read_by_the_other_tab)
    response = admin_client.post(f"/company/sso/{checked.pk}/leavers/off/", follow=True)
    assert f"The leaver check of {checked.display_name} was already off." in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_LEAVER_CHECK_OFF).count() == 1


def test_a_disabled_user_is_deactivated_signed_out_recorded_and_reported(
    checked, fake_microsoft, member, admin, client
):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    sign_in(client, member)
    generation = member.session_generation

    assert "1 user lost access" in run()

    member.refresh_from_db()
    assert not member.is_active and member.session_generation == generation + 1
    assert client.get("/portal/").url.startswith("/signin/")  # the session ended
    leaver = Leaver.objects.get()
    assert (leaver.user, leaver.reason, leaver.policy, str(leaver.oid)) == (member, "disabled", "deactivate", BEN)
    event = AuditEvent.objects.get(action=Action.SSO_LEAVER)
    assert (event.target_user, event.actor_label, event.details["reason"]) == (member, "leaver-check", "disabled")
    [notice] = mail.outbox
    assert notice.to == [admin.email]
    assert "Bob" in notice.body and "The Microsoft account was disabled" in notice.body
    assert "To let someone back in, reactivate them on their page" in notice.body
    assert Connection.objects.filter(user=member).exists()  # kept, to show which account it was
    # The next run finds nothing new to do: nobody is acted on or reported twice.
    run()
    assert Leaver.objects.count() == 1 and len(mail.outbox) == 1


def test_each_administrator_is_told_in_their_own_language(checked, fake_microsoft, member, admin, contoso):
    admin.language = "fi"
    admin.save(update_fields=["language"])
    other = make_user("carol", contoso, role=User.Role.ADMINISTRATOR, language="sv")
    connect(member, checked, fake_microsoft, BEN, enabled=False)

    run()

    notices = {notice.to[0]: notice for notice in mail.outbox}
    assert "lähteneiden pääsy poistettiin" in notices[admin.email].subject
    assert "Microsoft-tili on poistettu käytöstä" in notices[admin.email].body
    assert "har förlorat åtkomsten" in notices[other.email].subject
    assert "Microsoft-kontot har inaktiverats" in notices[other.email].body


def test_a_deleted_user_is_deactivated_and_the_user_page_shows_why(checked, fake_microsoft, member, admin_client):
    connect(member, checked, fake_microsoft, BEN)
    del fake_microsoft.accounts[BEN]
    run()
    page = admin_client.get(f"/company/users/{member.pk}/").content.decode()
    assert "Deactivated" in page and "The Microsoft account was deleted" in page
    # Reactivating them now would last only until the next check: the page says so, and how.
    assert "deactivated again by the next check" in page
    admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/")
    page = admin_client.get(f"/company/users/{member.pk}/").content.decode()
    assert "The Microsoft account was deleted" in page and "deactivated again" not in page


def test_remove_the_connection_only(checked, fake_microsoft, member, django_capture_on_commit_callbacks):
    Integration.objects.filter(pk=checked.pk).update(leaver_policy=Integration.LeaverPolicy.DISCONNECT)
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        run()
    member.refresh_from_db()
    assert member.is_active and not Connection.objects.exists()
    assert Leaver.objects.get().policy == "disconnect"
    # Nobody was deactivated: the email does not tell the administrators to reactivate anyone.
    [notice] = [message for message in mail.outbox if member.email not in message.to]
    assert "The Microsoft connection was removed; password sign-in still works." in notice.body
    assert "reactivate" not in notice.body and "they can connect it anew" in notice.body
    # The person, who still signs in with a password, is told too, and why.
    [told] = [message for message in mail.outbox if message.to == [member.email]]
    assert "This was done by the leaver check" in told.body


def test_a_check_turned_off_while_microsoft_answers_changes_nobody(checked, fake_microsoft, member, monkeypatch):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    real = graph.accounts_enabled

    def meanwhile_turned_off(*args):
        Integration.objects.update(leaver_check=Integration.LeaverCheck.OFF)
        return real(*args)

    monkeypatch.setattr(graph, "accounts_enabled", meanwhile_turned_off)
    run()
    member.refresh_from_db()
    assert member.is_active and not Leaver.objects.exists()


def test_a_surprise_in_one_integration_does_not_stop_the_others(checked, fake_microsoft, contoso, monkeypatch):
    fake_microsoft.app_in.add(FABRIKAM)
    fake_microsoft.roles_in.add(FABRIKAM)
    fabrikam = Integration.objects.create(
        company=contoso, tenant_id=FABRIKAM, display_name="Fabrikam", status="active", leaver_check="on"
    )
    carol, dave = make_user("carol", contoso), make_user("dave", contoso)
    connect(carol, checked, fake_microsoft, enabled=False)
    Connection.objects.create(user=dave, integration=fabrikam, tid=FABRIKAM, oid=uuid.uuid4())
    real, calls = graph.accounts_enabled, []

    def first_one_breaks(*args):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(*args)

    monkeypatch.setattr(graph, "accounts_enabled", first_one_breaks)
    assert "1 user lost access" in run()  # Fabrikam's Dave is not at Microsoft: deleted
    assert len(calls) == 2


def test_enabled_users_are_left_alone_and_asked_about_in_batches_of_twenty(checked, fake_microsoft, contoso):
    for number in range(45):
        connect(make_user(f"user{number}", contoso, enrolled=False), checked, fake_microsoft)
    assert "45 connections checked" in run()
    assert len(graph_requests(fake_microsoft)) == 3
    assert User.objects.filter(is_active=False).count() == 0 and not mail.outbox


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.Response(503, json={"error": {"code": "serviceNotAvailable"}}), "unavailable"),
        (httpx.Response(403, json={"error": {"code": "Authorization_RequestDenied"}}), "permission_missing"),
        (httpx.Response(200, content=b"\xff\xfe<html"), "bad_answer"),
        (httpx.Response(200, json={"responses": "no"}), "bad_answer"),
        (httpx.ReadTimeout("slow"), "unavailable"),
    ],
)
def test_anything_but_a_clear_answer_changes_nobody_and_shows_failing(
    checked, fake_microsoft, member, admin_client, failure, reason
):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    if isinstance(failure, Exception):
        fake_microsoft.fail_with(failure)  # the token endpoint too, as when Microsoft is down
    else:
        fake_microsoft.graph_answers = [failure, failure]
    run()
    run()
    member.refresh_from_db()
    checked.refresh_from_db()
    assert member.is_active and not Leaver.objects.exists()
    assert (checked.leaver_check, checked.leaver_failure_reason) == ("failing", reason)
    assert len(mail.outbox) == 1 and "failing" in mail.outbox[0].subject  # told once, not at every run
    assert AuditEvent.objects.filter(action=Action.SSO_LEAVER_CHECK_FAILED).count() == 1
    assert "Failing" in admin_client.get("/company/sso/").content.decode()

    # Microsoft answers again: the check is on again, and acts.
    fake_microsoft.fail_with(None)
    run()
    checked.refresh_from_db()
    member.refresh_from_db()
    assert checked.leaver_check == "on" and not member.is_active


def test_withdrawn_consent_changes_nobody(checked, fake_microsoft, member):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    fake_microsoft.app_in.clear()  # the enterprise application was deleted in the tenant
    run()
    checked.refresh_from_db()
    member.refresh_from_db()
    assert member.is_active and (checked.leaver_check, checked.leaver_failure_code) == ("failing", "AADSTS700016")


def test_a_single_user_that_is_neither_enabled_disabled_nor_deleted_changes_nobody(checked, fake_microsoft, contoso):
    carol = make_user("carol", contoso)
    connect(carol, checked, fake_microsoft, enabled=False)
    odd = connect(make_user("dave", contoso), checked, fake_microsoft)
    fake_microsoft.item_answers[odd.oid] = (500, {})
    run()
    carol.refresh_from_db()
    assert carol.is_active and Integration.objects.get().leaver_check == "failing"


def test_throttling_is_waited_out(checked, fake_microsoft, member, no_waiting):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    fake_microsoft.graph_answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": "TooManyRequests"}})
    ]
    fake_microsoft.item_answers[BEN] = (429, {"Retry-After": "3"})
    run()
    assert no_waiting == [7, 3]
    member.refresh_from_db()
    assert not member.is_active


def test_throttling_said_in_plain_text_is_waited_out_too(checked, fake_microsoft, member, no_waiting):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    fake_microsoft.graph_answers = [httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests")]
    assert "1 user lost access" in run()
    assert no_waiting == [7]


def test_endless_throttling_fails_after_a_few_waits(checked, fake_microsoft, member, no_waiting, admin_client, caplog):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    throttled = httpx.Response(429, headers={"Retry-After": "9999"}, json={"error": {"code": "TooManyRequests"}})
    fake_microsoft.graph_answers = [throttled] * 10
    run()
    assert no_waiting == [graph.MAX_RETRY_AFTER] * (graph.THROTTLE_RETRIES + 1)
    member.refresh_from_db()
    assert member.is_active and Integration.objects.get().leaver_check == "failing"
    # Said as what it is, and logged with Graph's code (not a piece of its JSON).
    assert "Microsoft asked the portal to wait (too many requests)" in page_text(admin_client.get("/company/sso/"))
    assert "answered HTTP 429 TooManyRequests" in caplog.text


@pytest.mark.parametrize(
    "item",
    [
        {"status": 200, "body": "not json"},
        {"status": 200, "body": {"id": "00000000-0000-0000-0000-000000000001", "accountEnabled": False}},
        {"status": 429, "headers": ["Retry-After", "1"], "body": {}},  # headers not an object
    ],
)
def test_a_batch_item_that_is_not_about_the_user_asked_changes_nobody(checked, fake_microsoft, member, item, caplog):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    odd = {"responses": [{"id": "0", **item}]}
    fake_microsoft.graph_answers = [httpx.Response(200, json=odd)] * (graph.THROTTLE_RETRIES + 1)
    assert "1 integration failing" in run()
    member.refresh_from_db()
    checked.refresh_from_db()
    assert member.is_active and checked.leaver_check == "failing"
    expected = "throttled" if item["status"] == 429 else "bad_answer"
    assert checked.leaver_failure_reason == expected
    assert "Traceback" not in caplog.text


def held_on_page(admin_client):
    """The held leavers the Single sign-on page shows, as its confirmation form names them."""
    page = admin_client.get("/company/sso/").content.decode()
    return re.search(r'name="held" value="([0-9a-f]*)"', page).group(1)


def confirm(admin_client, integration, held=None):
    """The administrator confirms the held leavers (by default those the page shows now)."""
    held = held_on_page(admin_client) if held is None else held
    return admin_client.post(f"/company/sso/{integration.pk}/leavers/confirm/", {"held": held}, follow=True)


def six_of_ten_left(checked, fake_microsoft, contoso):
    """Ten connected people of whom Microsoft says six left: more than the check acts on alone."""
    people = [make_user(f"user{number}", contoso, enrolled=False) for number in range(10)]
    return [connect(person, checked, fake_microsoft, enabled=number >= 6) for number, person in enumerate(people)]


def six_others_left(fake_microsoft, connections):
    """Microsoft now names six others: as many as before, not the same people."""
    for number, connection in enumerate(connections):
        fake_microsoft.accounts[connection.oid] = number < 4


def test_a_confirmation_of_leavers_the_administrator_did_not_see_counts_for_nothing(
    checked, fake_microsoft, contoso, admin_client
):
    connections = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    seen = held_on_page(admin_client)
    six_others_left(fake_microsoft, connections)  # and a run meanwhile holds them
    run()
    response = confirm(admin_client, checked, seen)
    assert "have changed since you looked" in response.content.decode()
    assert "6 held back" in run() and User.objects.filter(is_active=False).count() == 0


def test_the_safety_valve_holds_until_an_administrator_confirms(checked, fake_microsoft, contoso, admin_client):
    six_of_ten_left(checked, fake_microsoft, contoso)
    assert "6 held back" in run()
    assert User.objects.filter(is_active=False).count() == 0
    assert "many leavers at once" in mail.outbox[-1].subject
    run()
    assert len(mail.outbox) == 1 and AuditEvent.objects.filter(action=Action.SSO_LEAVERS_HELD).count() == 1

    page = admin_client.get("/company/sso/").content.decode()
    assert "6 connected people are disabled or deleted at Microsoft" in page
    # Who they are, on the page and in the email, before anyone confirms; the others are not named.
    for number in range(10):
        line = f"(user{number}) · user{number}@contoso.onmicrosoft.com: The Microsoft account was disabled"
        assert (line in page) == (number < 6)
        assert (f"(user{number}, user{number}@contoso.onmicrosoft.com)" in mail.outbox[-1].body) == (number < 6)
    confirm(admin_client, checked)
    assert "6 users lost access" in run()
    assert User.objects.filter(is_active=False).count() == 6
    checked.refresh_from_db()
    assert checked.leaver_held == 0 and checked.leaver_held_digest == checked.leaver_confirmed_digest == ""
    assert checked.leaver_held_list == "" and "The Microsoft account was disabled" not in held_section(admin_client)


def held_section(admin_client):
    page = admin_client.get("/company/sso/").content.decode()
    return page[page.find('class="notice warn"') :] if 'class="notice warn"' in page else ""


def test_a_held_list_this_version_did_not_write_does_not_break_the_page(checked, fake_microsoft, contoso, admin_client):
    """Written by another version (a newer one, rolled back), or naming a connection removed
    since: the page still shows, with the people it can name."""
    [first, *_others] = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    checked.refresh_from_db()
    Integration.objects.filter(pk=checked.pk).update(
        leaver_held_list=f"garbage,x:y,{checked.leaver_held_list},{first.pk}:suspended"
    )
    Connection.objects.filter(pk=first.pk + 1).delete()
    section = held_section(admin_client)
    assert "(user0) · user0@contoso.onmicrosoft.com: suspended" in section  # its own word, untranslated
    assert "(user1)" not in section and "(user2)" in section


def test_a_long_list_of_held_leavers_shows_the_first_fifty_and_how_many_more(
    checked, fake_microsoft, contoso, admin_client
):
    for number in range(60):
        connect(make_user(f"user{number:02}", contoso, enrolled=False), checked, fake_microsoft, enabled=False)
    assert "60 held back" in run()
    section = held_section(admin_client)
    assert section.count("The Microsoft account was disabled") == 50
    assert "(user49)" in section and "(user50)" not in section and "…and 10 more." in section
    assert "…and 10 more." in mail.outbox[-1].body and mail.outbox[-1].body.count(": The Microsoft account was") == 50

    # Two of them disconnected since (one named, one not): still fifty named, and eight more.
    Connection.objects.filter(user__username__in=["user00", "user59"]).delete()
    section = held_section(admin_client)
    assert section.count("The Microsoft account was disabled") == 50 and "(user50)" in section
    assert "…and 8 more." in section


def test_a_confirmation_covers_only_the_people_and_the_policy_it_was_given_for(
    checked, fake_microsoft, contoso, admin_client
):
    connections = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    confirm(admin_client, checked)

    # No more than were confirmed, but not the people confirmed.
    six_others_left(fake_microsoft, connections)
    assert "6 held back" in run()
    assert User.objects.filter(is_active=False).count() == 0

    # Confirmed again, then the policy changes: held once more, under the new policy.
    confirm(admin_client, checked)
    admin_client.post(f"/company/sso/{checked.pk}/leavers/policy/", {"policy": "disconnect"})
    assert "6 held back" in run()
    assert Connection.objects.count() == 10


def test_deactivating_the_last_administrators_tells_operator_staff(checked, fake_microsoft, admin, contoso):
    make_user("olle", None, is_staff=True)
    connect(admin, checked, fake_microsoft, enabled=False)
    run()
    admin.refresh_from_db()
    assert not admin.is_active
    assert [message.to for message in mail.outbox] == [["olle@example.com"]]
    assert "people who left Contoso Ltd lost access" in mail.outbox[0].subject


def test_five_leavers_are_never_too_many(checked, fake_microsoft, contoso):
    for number in range(5):
        connect(make_user(f"user{number}", contoso, enrolled=False), checked, fake_microsoft, enabled=False)
    assert "5 users lost access" in run()


def test_an_integration_without_the_check_is_never_asked_about(integration, fake_microsoft, member):
    connect(member, integration, fake_microsoft, BEN, enabled=False)
    fake_microsoft.roles_in.add(CONTOSO)
    run()
    assert fake_microsoft.requests == []
    member.refresh_from_db()
    assert member.is_active


def test_a_second_runner_finds_the_integration_claimed_and_a_second_action_is_a_no_op(checked, fake_microsoft, member):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    started = timezone.now()
    first = leavers._claim(checked.pk, started)
    assert first is not None
    assert leavers._claim(checked.pk, started) is None  # the second runner: held by the first
    connection = Connection.objects.get()
    assert leavers._act(first, connection.pk, "disabled") is not None
    assert leavers._act(first, connection.pk, "disabled") is None
    assert Leaver.objects.count() == 1 and AuditEvent.objects.filter(action=Action.SSO_LEAVER).count() == 1


def test_a_runner_stuck_past_its_lease_can_neither_renew_nor_end_the_next_runners_lease(checked):
    started = timezone.now()
    stuck = leavers._claim(checked.pk, started)
    # Ten minutes later the lease has run out, and another runner claims the integration.
    Integration.objects.update(leaver_lease_until=timezone.now() - datetime.timedelta(seconds=1))
    second = leavers._claim(checked.pk, started)
    assert second is not None and second.leaver_lease_owner != stuck.leaver_lease_owner

    with pytest.raises(leavers.LeaseLost):
        leavers._renew(stuck)
    leavers._release(stuck)
    checked.refresh_from_db()
    assert checked.leaver_lease_owner == second.leaver_lease_owner
    assert checked.leaver_lease_until > timezone.now() and checked.leaver_checked_at is None
    assert leavers._claim(checked.pk, started) is None  # still held

    leavers._renew(second)
    leavers._release(second)
    checked.refresh_from_db()
    assert (checked.leaver_lease_until, checked.leaver_lease_owner) == (None, "")
    assert checked.leaver_checked_at is not None


def test_a_runner_whose_lease_ran_out_while_microsoft_answered_acts_on_nobody(
    checked, fake_microsoft, member, monkeypatch
):
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    real, others = graph.accounts_enabled, []

    def slower_than_the_lease(*args):
        Integration.objects.update(leaver_lease_until=timezone.now() - datetime.timedelta(seconds=1))
        others.append(leavers._claim(checked.pk, timezone.now()))
        return real(*args)

    monkeypatch.setattr(graph, "accounts_enabled", slower_than_the_lease)
    assert "0 users lost access, 0 held back for confirmation, 0 integrations failing" in run()
    member.refresh_from_db()
    checked.refresh_from_db()
    assert member.is_active and not Leaver.objects.exists() and not mail.outbox
    # The other runner's lease stands: it checks the integration itself.
    assert checked.leaver_lease_owner == others[0].leaver_lease_owner and checked.leaver_checked_at is None


def test_no_token_reaches_the_database_a_log_line_or_a_page(checked, fake_microsoft, member, admin_client, caplog):
    caplog.set_level("DEBUG")
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    run()
    token, _roles = graph.app_only_token(CONTOSO)
    assert token not in caplog.text
    assert token not in str(list(AuditEvent.objects.values())) + str(list(Integration.objects.values()))
    assert token.encode() not in admin_client.get("/company/sso/").content
    assert AuditEvent.objects.filter(outcome=Outcome.SUCCESS, action=Action.SSO_LEAVER).exists()


def leaver_metrics(settings, status=200):
    """The leaver check's figures as a Prometheus scraper reads them from /metrics/leavers."""
    settings.METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
    page = Client(headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).get("/metrics/leavers")
    assert page.status_code == status
    if status != 200:
        return page
    return {
        (sample.name, sample.labels.get("state")): sample.value
        for family in text_string_to_metric_families(page.content.decode())
        for sample in family.samples
    }


def test_metrics_say_whether_a_runner_runs_and_how_many_leavers_wait_for_confirmation(
    checked, fake_microsoft, contoso, settings, admin_client
):
    asked = timezone.now() - datetime.timedelta(hours=2)
    Integration.objects.filter(pk=checked.pk).update(leaver_requested_at=asked)
    figures = leaver_metrics(settings)
    assert figures[("tenantlink_leaver_check_integrations", "on")] == 1
    assert figures[("tenantlink_leaver_check_integrations", "off")] == 0
    # Never checked: behind since the check was asked for (an alert on the age sees no runner).
    assert figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] == asked.timestamp()
    assert figures[("tenantlink_leaver_held_users", None)] == 0

    six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    figures = leaver_metrics(settings)
    assert abs(figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] - time.time()) < 60
    assert figures[("tenantlink_leaver_held_users", None)] == 6

    # Confirmed: nobody waits for an administrator any more, only for the next run.
    confirm(admin_client, checked)
    assert leaver_metrics(settings)[("tenantlink_leaver_held_users", None)] == 0

    # Turned off, and on again a month later: behind since then, not since the last check before.
    Integration.objects.filter(pk=checked.pk).update(leaver_checked_at=timezone.now() - datetime.timedelta(days=30))
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    admin_client.post(f"/company/sso/{checked.pk}/leavers/", {"policy": "deactivate"})
    checked.refresh_from_db()
    assert checked.leaver_check == "waiting" and checked.leaver_checked_at is None
    Integration.objects.filter(pk=checked.pk).update(leaver_check="on")
    figures = leaver_metrics(settings)
    assert abs(figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] - time.time()) < 60

    # A company whose licence has ended has no check to run.
    Licence.objects.filter(company=contoso).update(valid_until=timezone.now() - datetime.timedelta(days=1))
    figures = leaver_metrics(settings)
    assert figures[("tenantlink_leaver_check_integrations", "on")] == 0
    assert ("tenantlink_leaver_check_last_checked_timestamp_seconds", None) not in figures


def test_the_database_not_answering_makes_the_leaver_metrics_unavailable_not_the_others(checked, settings, monkeypatch):
    def not_answering(*args, **kwargs):
        raise OperationalError("the database is not answering")

    monkeypatch.setattr(leavers, "licensed_integrations", not_answering)
    assert "try again" in leaver_metrics(settings, status=503).content.decode().lower()
    page = Client(headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).get("/metrics")
    assert page.status_code == 200 and b"tenantlink_signins_total" in page.content


@pytest.mark.django_db(transaction=True)
def test_reading_the_leaver_metrics_waits_for_no_writer(checked, settings):
    """On SQLite a transaction takes the write lock: a scrape while a runner writes must not wait."""
    from django.db import connection

    if connection.vendor != "sqlite":
        assert leaver_metrics(settings)[("tenantlink_leaver_check_integrations", "on")] == 1
        return
    writer = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert leaver_metrics(settings)[("tenantlink_leaver_check_integrations", "on")] == 1
        assert time.monotonic() - started < 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()
