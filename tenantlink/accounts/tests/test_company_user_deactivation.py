"""Company administrators deactivate and reactivate their company's users and reset their second
factor: each asks first and says what happens to whom, signs the user out everywhere, and is
recorded; nobody can do it to themselves."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from tenantlink.accounts.forms import SIGNIN_FAILED
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.accounts.tests.company_user_helpers import (
    audited,
    confirmation,
    enrol_through_the_page,
    text,
)
from tenantlink.accounts.views import company as company_views
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for, make_user, sign_in, signed_in_browser

# Deactivation and reactivation ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["deactivate", "reset-second-factor"])
def test_an_audit_event_being_written_about_the_user_does_not_hold_up_the_administrator(admin_client, member, action):
    """PostgreSQL: an audit event written about bob holds a key-share lock on his row (its foreign
    key) until it is committed. Locked FOR UPDATE, a deactivation or reset waited for it, while
    the event, holding the lock on its actor's row already, could be waiting for this one: a
    deadlock, and a 503 for one of two administrators acting on bob at the same moment. (SQLite
    has one writer at a time, so the other writer could not stay open.)"""
    if connection.vendor != "postgresql":
        assert admin_client.post(f"/company/users/{member.pk}/{action}/").status_code == 302
        return
    held, release = threading.Event(), threading.Event()

    def another_request():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # Django's foreign keys are checked at commit, where an audit event's transaction
                # takes the lock on each row it names, one after the other: checked here at once.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                AuditEvent.objects.record(Action.SIGNIN_FAILED, target=User.objects.get(pk=member.pk))
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=another_request)
    writer.start()
    assert held.wait(5)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        response = admin_client.post(f"/company/users/{member.pk}/{action}/")
    finally:
        release.set()
        writer.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert response.status_code == 302, response.content.decode()[:300]
    member.refresh_from_db()
    assert member.session_generation == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_the_event_is_written_while_the_person_is_locked(admin_client, member, monkeypatch, action):
    """Written after the change, outside the lock, a deactivation's and a reactivation's events at
    the same moment could be stored in the other order: the log's last word said deactivated of
    an active account."""
    if action == "reactivate":
        member.deactivate()
    record, locked = AuditEvent.objects.record, []

    def record_and_look(*args, **kwargs):
        locked.append(connection.in_atomic_block)
        return record(*args, **kwargs)

    monkeypatch.setattr(AuditEvent.objects, "record", record_and_look)

    assert admin_client.post(f"/company/users/{member.pk}/{action}/").status_code == 302

    assert locked == [True]


def test_a_deactivated_user_cannot_sign_in_and_their_session_stops_working(admin_client, admin, member, contoso):
    bobs_browser = signed_in_browser(member)
    assert bobs_browser.get("/portal/").status_code == 200

    response = admin_client.post(f"/company/users/{member.pk}/deactivate/", follow=True)
    assert "Bob can no longer sign in." in text(response)
    assert "Deactivated" in text(response)

    response = bobs_browser.get("/portal/")
    assert response.status_code == 302 and response.url.startswith("/signin/")
    assert str(SIGNIN_FAILED) in text(Client().post("/signin/", {"username": "bob", "password": PASSWORD}))

    event = audited(Action.USER_DEACTIVATED, member)
    assert (event.actor, event.company) == (admin, contoso)


def test_a_reactivated_user_signs_in_again_but_old_sessions_stay_ended(admin_client, admin, member, contoso):
    bobs_browser = signed_in_browser(member)
    admin_client.post(f"/company/users/{member.pk}/deactivate/")

    response = admin_client.post(f"/company/users/{member.pk}/reactivate/", follow=True)
    assert "Bob can sign in again." in text(response)

    # The browser that was signed in before the deactivation has to sign in again...
    response = bobs_browser.get("/portal/")
    assert response.status_code == 302 and response.url.startswith("/signin/")
    # ...which now works.
    bobs_browser.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert bobs_browser.post("/signin/verify/", {"code": code_for(member, offset=1)}).url == "/portal/"

    event = audited(Action.USER_REACTIVATED, member)
    assert (event.actor, event.company) == (admin, contoso)


def test_deactivating_someone_twice_records_it_once_and_says_so(admin_client, member):
    admin_client.post(f"/company/users/{member.pk}/deactivate/")
    response = admin_client.post(f"/company/users/{member.pk}/deactivate/", follow=True)  # a second tab
    assert "Bob was already deactivated." in text(response)
    response = admin_client.get(f"/company/users/{member.pk}/deactivate/", follow=True)  # Back to the question
    assert "Bob was already deactivated." in text(response) and "Deactivate Bob?" not in text(response)
    admin_client.post(f"/company/users/{member.pk}/reactivate/")
    response = admin_client.post(f"/company/users/{member.pk}/reactivate/", follow=True)
    assert "Bob was already active." in text(response)

    assert AuditEvent.objects.filter(action=Action.USER_DEACTIVATED).count() == 1
    assert AuditEvent.objects.filter(action=Action.USER_REACTIVATED).count() == 1


def test_deactivating_asks_first_and_says_what_happens_to_whom(admin_client, member):
    bobs_browser = signed_in_browser(member)
    user_page = text(admin_client.get(f"/company/users/{member.pk}/"))
    assert f'<a class="button danger" href="/company/users/{member.pk}/deactivate/">Deactivate</a>' in user_page

    page = admin_client.get(f"/company/users/{member.pk}/deactivate/")

    assert page.status_code == 200
    assert "<h1>Deactivate Bob?</h1>" in text(page)
    assert "Bob (bob) is signed out everywhere at once and can no longer sign in" in text(page)
    form = confirmation(page)
    assert 'name="csrfmiddlewaretoken"' in form and '<button class="danger" type="submit">Deactivate</button>' in form
    assert f'<a href="/company/users/{member.pk}/">Cancel</a>' in form
    # Only asked so far: Bob is still active and still signed in.
    member.refresh_from_db()
    assert member.is_active and bobs_browser.get("/portal/").status_code == 200
    assert not AuditEvent.objects.filter(action=Action.USER_DEACTIVATED).exists()

    response = admin_client.post(f"/company/users/{member.pk}/deactivate/", follow=True)
    assert "Bob can no longer sign in." in text(response)
    assert bobs_browser.get("/portal/").status_code == 302


def test_another_administrator_can_deactivate_an_administrator(admin_client, admin, contoso):
    colleague = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    doras_browser = signed_in_browser(colleague)

    admin_client.post(f"/company/users/{colleague.pk}/deactivate/")

    colleague.refresh_from_db()
    assert not colleague.is_active and not colleague.is_company_admin
    assert doras_browser.get("/company/users/").status_code == 302


def test_two_administrators_deactivating_each_other_at_once_leave_one_administrator(
    admin_client, admin, contoso, monkeypatch
):
    """Dora's request has passed the administrator check when Alice's deactivation of Dora lands
    (the moment is taken from inside Dora's request); Dora's then changes nothing."""
    colleague = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    doras_browser = signed_in_browser(colleague)
    refuse_self = company_views._refuse_self

    def alice_deactivates_dora_meanwhile(request, member):
        if request.user == colleague:
            monkeypatch.setattr(company_views, "_refuse_self", refuse_self)
            assert admin_client.post(f"/company/users/{colleague.pk}/deactivate/").status_code == 302
        return refuse_self(request, member)

    monkeypatch.setattr(company_views, "_refuse_self", alice_deactivates_dora_meanwhile)

    response = doras_browser.post(f"/company/users/{admin.pk}/deactivate/")

    assert response.status_code == 403
    admin.refresh_from_db()
    colleague.refresh_from_db()
    assert admin.is_company_admin and not colleague.is_active
    assert [event.target_user for event in AuditEvent.objects.filter(action=Action.USER_DEACTIVATED)] == [colleague]


def test_an_operator_staff_account_in_the_company_is_not_the_administrators_to_manage(admin_client, contoso):
    """Operator staff may be given a company in the operator admin; its administrators still
    cannot see them, deactivate them or reset their second factor."""
    operator = make_user("olivia", company=contoso, is_staff=True, is_superuser=True)

    assert "olivia" not in text(admin_client.get("/company/users/"))
    assert "olivia" not in text(admin_client.get("/company/audit/"))  # nor in the audit log's user filter
    for action in ("", "deactivate/", "reset-second-factor/"):
        assert admin_client.get(f"/company/users/{operator.pk}/{action}").status_code == 404
        if action:
            assert admin_client.post(f"/company/users/{operator.pk}/{action}").status_code == 404
    operator.refresh_from_db()
    assert operator.is_active and operator.has_second_factor


# Second factor --------------------------------------------------------------------------------


def test_after_a_second_factor_reset_the_user_sets_up_a_new_authenticator(admin_client, admin, member, contoso):
    RecoveryCode.replace_for(member)
    stolen_phone = signed_in_browser(member)  # whoever has bob's phone is signed in
    client = Client()  # bob's browser

    response = admin_client.post(f"/company/users/{member.pk}/reset-second-factor/", follow=True)
    assert stolen_phone.get("/portal/").status_code == 302
    assert "The second factor of Bob has been reset and they have been signed out." in text(response)
    assert "Not set up — set up at next sign-in" in text(response)
    assert not TOTPDevice.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()

    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.url == "/signin/enrol/"
    assert client.get("/signin/verify/").url == "/signin/enrol/"  # the old app's codes are not asked for
    enrol_through_the_page(client)
    assert client.get("/portal/").status_code == 200

    event = audited(Action.SECOND_FACTOR_RESET, member)
    assert (event.actor, event.company) == (admin, contoso)


def test_a_second_factor_reset_sent_twice_resets_and_is_recorded_once(admin_client, member):
    """A double click, two administrators at the same moment, or an old tab sent again while Bob
    already sets up his new authenticator."""
    admin_client.post(f"/company/users/{member.pk}/reset-second-factor/", follow=True)
    bobs_browser = Client()
    assert bobs_browser.post("/signin/", {"username": "bob", "password": PASSWORD}).url == "/signin/enrol/"

    response = admin_client.post(f"/company/users/{member.pk}/reset-second-factor/", follow=True)

    assert "The second factor of Bob was already reset." in text(response)
    assert "has been reset" not in text(response)
    assert AuditEvent.objects.filter(action=Action.SECOND_FACTOR_RESET).count() == 1
    assert bobs_browser.get("/signin/enrol/").status_code == 200  # his set-up goes on


def test_resetting_the_second_factor_asks_first_and_says_what_happens_to_whom(admin_client, member):
    RecoveryCode.replace_for(member)
    bobs_phone = signed_in_browser(member)
    user_page = text(admin_client.get(f"/company/users/{member.pk}/"))
    assert f'href="/company/users/{member.pk}/reset-second-factor/">Reset second factor</a>' in user_page

    page = admin_client.get(f"/company/users/{member.pk}/reset-second-factor/")

    assert page.status_code == 200
    assert "<h1>Reset the second factor of Bob?</h1>" in text(page)
    assert (
        "Bob (bob) is signed out everywhere and must set up an authenticator app at the next sign-in; "
        "their recovery codes stop working."
    ) in text(page)
    form = confirmation(page)
    assert 'name="csrfmiddlewaretoken"' in form and ">Reset second factor</button>" in form
    assert f'<a href="/company/users/{member.pk}/">Cancel</a>' in form
    # Only asked so far: the authenticator, the recovery codes and the session are all still there.
    assert TOTPDevice.objects.filter(user=member).exists() and RecoveryCode.remaining(member) == 10
    assert bobs_phone.get("/portal/").status_code == 200
    assert not AuditEvent.objects.filter(action=Action.SECOND_FACTOR_RESET).exists()


def test_the_reset_button_reads_as_an_action_not_as_the_audit_logs_record_of_one(client, admin, member):
    admin.language = "sv"
    admin.save(update_fields=["language"])
    sign_in(client, admin)

    # "Återställde" is the audit log's "reset (done)": a button asking to reset must not say it.
    for page in (f"/company/users/{member.pk}/", f"/company/users/{member.pk}/reset-second-factor/"):
        assert "Återställde" not in text(client.get(page)), page

    client.post(f"/company/users/{member.pk}/reset-second-factor/")
    assert "Återställde tvåfaktorsautentisering" in text(client.get(f"/company/users/{member.pk}/"))


def test_an_administrator_cannot_deactivate_or_reset_themselves(admin_client, admin):
    for action in ("deactivate", "reset-second-factor"):
        for send in (admin_client.get, admin_client.post):  # not even the page that asks
            response = send(f"/company/users/{admin.pk}/{action}/", follow=True)
            assert "You cannot do this to your own account. Ask another administrator." in text(response)

    admin.refresh_from_db()
    assert admin.is_active and TOTPDevice.objects.filter(user=admin).exists()
    assert not AuditEvent.objects.filter(action__in=[Action.USER_DEACTIVATED, Action.SECOND_FACTOR_RESET]).exists()
    assert admin_client.get("/company/users/").status_code == 200
    assert "This is you." in text(admin_client.get(f"/company/users/{admin.pk}/"))
