"""The leaver check at work: `manage.py check_leavers` removes the access of people disabled or
deleted at Microsoft (answered here by FakeMicrosoft), tells the administrators, and changes
nobody on anything but a clear answer (failures, throttling, withdrawn consent); runners that
overlap, and no token kept anywhere. The end-to-end tests do the same against the Entra emulator."""

import datetime
import uuid

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.conftest import make_user, sign_in
from tenantlink.sso import graph, leavers
from tenantlink.sso.models import Connection, Integration, Leaver
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM
from tenantlink.sso.tests.leaver_helpers import BEN, connect, run
from tenantlink.sso.tests.microsoft_signin_helpers import page_text

# Retry-After is obeyed without waiting in every test here (the `no_waiting` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("no_waiting")


def graph_requests(fake_microsoft):
    return [r for r in fake_microsoft.requests if r.url.host == "graph.microsoft.com"]


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


def test_a_leaver_deactivated_by_the_check_is_not_emailed_only_the_administrators_are(
    checked, fake_microsoft, member, admin, django_capture_on_commit_callbacks
):
    """The person has left: their mailbox usually went with them, and a deactivation notice
    (accounts.flows.notify, sent when an administrator deactivates someone) is not for them."""
    connect(member, checked, fake_microsoft, BEN, enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        run()

    member.refresh_from_db()
    assert not member.is_active
    assert [message.to for message in mail.outbox] == [[admin.email]]


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
    assert "the next leaver check deactivates them again" in page
    response = admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/", follow=True)
    page = response.content.decode()
    assert "The Microsoft account was deleted" in page and "leaver-reactivation" not in page
    # Deactivated, they sign in no way at all: not "with password and second factor".
    assert "Microsoft connection is removed." in page and "they sign in with" not in page


def test_reactivated_while_still_connected_the_page_says_the_next_check_undoes_it(
    checked, fake_microsoft, member, admin_client
):
    connect(member, checked, fake_microsoft, BEN)
    del fake_microsoft.accounts[BEN]
    run()
    page = admin_client.post(f"/company/users/{member.pk}/reactivate/", follow=True).content.decode()
    assert "The next leaver check deactivates this user again" in page
    run()
    member.refresh_from_db()
    assert not member.is_active  # as the page said


def test_with_the_leaver_check_turned_off_a_reactivation_carries_no_warning(
    checked, fake_microsoft, member, admin_client
):
    connect(member, checked, fake_microsoft, BEN)
    del fake_microsoft.accounts[BEN]
    run()
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")

    page = admin_client.post(f"/company/users/{member.pk}/reactivate/", follow=True).content.decode()

    assert "The Microsoft account was deleted" in page and "leaver-reactivation" not in page
    run()
    member.refresh_from_db()
    assert member.is_active  # nothing undid it


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


def test_deactivating_the_last_administrators_tells_operator_staff(checked, fake_microsoft, admin, contoso):
    make_user("olle", None, is_staff=True)
    # A superuser given the company and the role (in the database: the operator admin refuses it)
    # is no administrator of it: not the one told, nor one who keeps operator staff from being told.
    make_user("sune", contoso, User.Role.ADMINISTRATOR, is_superuser=True)
    connect(admin, checked, fake_microsoft, enabled=False)
    run()
    admin.refresh_from_db()
    assert not admin.is_active
    assert [message.to for message in mail.outbox] == [["olle@example.com"]]
    assert "people who left Contoso Ltd lost access" in mail.outbox[0].subject


def test_operator_staff_are_never_acted_on_by_a_customers_tenant(checked, fake_microsoft, member, contoso):
    # Made staff in the database, connection and company kept (the operator admin removes the
    # connection): a customer's tenant disabling the account must not end operator access.
    User.objects.filter(pk=member.pk).update(is_staff=True)
    connect(member, checked, fake_microsoft, BEN, enabled=False)
    run()
    member.refresh_from_db()
    assert member.is_active and not Leaver.objects.exists() and not mail.outbox


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
