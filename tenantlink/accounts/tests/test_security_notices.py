"""Bob is told by email when how he signs in changes: his password, his authenticator, his
recovery codes, his account deactivated or reactivated — and when someone who knows his password
keeps entering wrong codes. Each email says what happened, when (in his time zone), who did it if
it was not him, and what to do; it is in his language, never holds a secret, and goes out once
the change is committed. A mail server that refuses it changes nothing; without an address,
nothing is sent."""

import datetime
import io
import logging
import re
import smtplib

import pyotp
import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from tenantlink.accounts import flows
from tenantlink.accounts.models import Throttle, User
from tenantlink.conftest import PASSWORD, code_for, make_user, sign_in, signed_in_browser
from tenantlink.tests.test_staff_admin import form_of, post_form

NEW_PASSWORD = "a brand new passphrase"
ASK_IF_IT_WAS_THEM = "If this was not you or you did not expect it, tell your company's administrator at once."
ASK_THE_ADMINISTRATOR = "If you did not expect this, ask your company's administrator about it."
BY_THE_ADMINISTRATOR = "This was done by your company's administrator."


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """The emails that `action()` sends. Notices wait for their change to be committed, which a
    test's own transaction never is: here they go out as that commit would send them."""

    def run(action):
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            action()
        return mail.outbox[before:]

    return run


def new_authenticator(browser):
    """Set up a new authenticator app in My Profile, as Bob does: its key (the seed)."""
    page = browser.get("/profile/authenticator/").content.decode()
    seed = re.search(r'id="manual-key">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert browser.post("/profile/authenticator/", {"code": pyotp.TOTP(seed).now()}).url == "/profile/settings/"
    return seed


def wrong_code(user):
    """A six-digit code that no time-step accepted now (this one, or one either side) gives: a wrong one."""
    accepted = {code_for(user, offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)


def pause_with_wrong_codes(browser, user, settings):
    """The right password, then wrong codes until the account pauses — and a few more."""
    browser.post("/signin/", {"username": user.username, "password": PASSWORD})
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES + 3):
        browser.post("/signin/verify/", {"code": wrong_code(user)})


def end_pauses():
    Throttle.objects.filter(locked_until__isnull=False).update(
        locked_until=timezone.now() - datetime.timedelta(seconds=1)
    )


# Bob's own changes in My Profile -----------------------------------------------------------------


def test_bob_who_changes_his_password_is_told_and_asked_to_report_it_if_it_was_not_him(member_client, member, sent):
    form = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    [notice] = sent(lambda: member_client.post("/profile/password/", form))

    assert notice.to == ["bob@example.com"]
    assert notice.subject == "The password of your Tenantlink account was changed"
    assert "the password of your Tenantlink account was changed." in notice.body
    assert "You have been signed out in every other browser." in notice.body
    assert ASK_IF_IT_WAS_THEM in notice.body and "This was done by" not in notice.body
    assert NEW_PASSWORD not in notice.body and PASSWORD not in notice.body


def test_the_initial_password_changed_at_the_first_sign_in_as_asked_is_no_news(member_client, member, sent):
    User.objects.filter(pk=member.pk).update(must_change_password=True)
    form = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    assert sent(lambda: member_client.post("/profile/password/", form)) == []

    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD) and not member.must_change_password


def test_a_refused_password_change_tells_nobody(member_client, sent):
    form = {"old_password": "not it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    assert sent(lambda: member_client.post("/profile/password/", form)) == []


def test_bob_who_moves_to_a_new_authenticator_is_told_without_its_key(member_client, member, sent):
    seeds = []

    [notice] = sent(lambda: seeds.append(new_authenticator(member_client)))

    assert notice.to == ["bob@example.com"]
    assert notice.subject == "A new authenticator app was set up for your Tenantlink account"
    assert "Codes from the earlier app no longer work." in notice.body
    assert "You have been signed out in every other browser." in notice.body
    assert ASK_IF_IT_WAS_THEM in notice.body
    key = seeds[0]
    assert key not in notice.body and " ".join(key[i : i + 4] for i in range(0, len(key), 4)) not in notice.body


def test_bob_who_makes_new_recovery_codes_is_told_without_the_codes(member_client, member, sent):
    [notice] = sent(lambda: member_client.post("/profile/recovery-codes/"))
    codes = re.findall(
        r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>",
        member_client.get("/profile/recovery-codes/new/").content.decode(),
    )

    assert notice.subject == "New recovery codes were made for your Tenantlink account"
    assert "The earlier ones no longer work." in notice.body
    assert ASK_IF_IT_WAS_THEM in notice.body
    assert len(codes) == 10 and not any(code in notice.body or code.replace("-", "") in notice.body for code in codes)


# Changes made by someone else ----------------------------------------------------------------------


def test_an_administrator_resetting_bobs_second_factor_tells_him_who_did_it(admin_client, member, sent):
    [notice] = sent(lambda: admin_client.post(f"/company/users/{member.pk}/reset-second-factor/"))

    assert notice.to == ["bob@example.com"]
    assert notice.subject == "The second factor of your Tenantlink account was reset"
    assert "At your next sign-in you set up an authenticator app again." in notice.body
    assert "You have been signed out everywhere." in notice.body
    assert BY_THE_ADMINISTRATOR in notice.body
    assert ASK_THE_ADMINISTRATOR in notice.body and "If this was not you" not in notice.body


def test_a_reset_sent_again_from_a_second_tab_tells_bob_once(admin_client, member, sent):
    url = f"/company/users/{member.pk}/reset-second-factor/"

    assert len(sent(lambda: [admin_client.post(url), admin_client.post(url)])) == 1


def test_the_reset_page_says_that_bob_is_told(admin_client, member):
    page = admin_client.get(f"/company/users/{member.pk}/reset-second-factor/").content.decode()
    assert "They are told by email." in page


def test_an_administrator_deactivating_and_reactivating_bob_tells_him_each_once(admin_client, member, sent):
    [deactivated] = sent(lambda: [admin_client.post(f"/company/users/{member.pk}/deactivate/") for _twice in range(2)])
    [reactivated] = sent(lambda: admin_client.post(f"/company/users/{member.pk}/reactivate/"))

    assert deactivated.subject == "Your Tenantlink account was deactivated"
    assert "you can no longer sign in to it." in deactivated.body
    assert "You have been signed out everywhere." in deactivated.body
    assert BY_THE_ADMINISTRATOR in deactivated.body and ASK_THE_ADMINISTRATOR in deactivated.body
    assert reactivated.subject == "Your Tenantlink account was reactivated"
    assert "you can sign in to it again." in reactivated.body
    assert BY_THE_ADMINISTRATOR in reactivated.body and "signed out" not in reactivated.body


def test_a_new_address_is_told_at_the_old_one_and_a_new_role_to_bob(admin_client, member, sent):
    """After an address change every notice goes to the new address: the old one hears of it."""
    User.objects.filter(pk=member.pk).update(last_login=timezone.now())  # Bob has signed in
    edit = f"/company/users/{member.pk}/edit/"
    details = {"display_name": "Bob", "email": "bob@example.com", "role": User.Role.MEMBER}

    [moved] = sent(lambda: admin_client.post(edit, {**details, "email": "robert@example.org"}))
    [promoted] = sent(
        lambda: admin_client.post(edit, {**details, "email": "robert@example.org", "role": "administrator"})
    )

    assert (
        moved.to == ["bob@example.com"] and moved.subject == "The email address of your Tenantlink account was changed"
    )
    assert "was changed from this one to another" in moved.body and "robert@example.org" not in moved.body
    assert BY_THE_ADMINISTRATOR in moved.body and "signed out" not in moved.body
    assert promoted.to == ["robert@example.org"] and promoted.subject == "Your role in Tenantlink was changed"
    assert "you were made an administrator of your company in Tenantlink" in promoted.body
    [demoted] = sent(lambda: admin_client.post(edit, {**details, "email": "robert@example.org"}))
    assert "you were made a member of your company" in demoted.body


def test_deactivating_someone_invited_who_never_signed_in_tells_nobody(admin_client, contoso, sent):
    """ "You have been signed out" and "you can sign in again" mean nothing to them."""
    ivy = make_user("ivy", contoso, enrolled=False)
    ivy.set_unusable_password()
    ivy.save()
    assert sent(lambda: admin_client.post(f"/company/users/{ivy.pk}/deactivate/")) == []
    assert sent(lambda: admin_client.post(f"/company/users/{ivy.pk}/reactivate/")) == []


def test_correcting_the_address_of_someone_invited_tells_nobody(admin_client, contoso, sent):
    carol = make_user("carol", contoso, enrolled=False)
    carol.email = "carol@exmaple.com"  # a slip of the administrator's, the invitation gone there
    carol.set_unusable_password()
    carol.save()
    correct = {"display_name": "Carol", "email": "carol@example.com", "role": User.Role.MEMBER}
    assert sent(lambda: admin_client.post(f"/company/users/{carol.pk}/edit/", correct)) == []


@pytest.fixture
def oscar():
    return make_user("oscar", None, is_staff=True, is_superuser=True)


def test_operator_staff_setting_bobs_password_or_turning_it_off_tell_him_who_did_it(client, oscar, member, sent):
    sign_in(client, oscar)
    url = f"/staff/accounts/user/{member.pk}/password/"
    new = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    off = {"usable_password": "false", "unset-password": "Disable password-based authentication"}

    [changed] = sent(lambda: post_form(client, url, new))
    [turned_off] = sent(lambda: post_form(client, url, off))

    assert changed.subject == "The password of your Tenantlink account was changed"
    assert "This was done by the operator staff of Tenantlink." in changed.body
    assert "You have been signed out everywhere." in changed.body and NEW_PASSWORD not in changed.body
    assert turned_off.subject == "Password sign-in was turned off for your Tenantlink account"
    assert "This was done by the operator staff of Tenantlink." in turned_off.body


def test_operator_staff_deactivating_bob_or_resetting_his_second_factor_tell_him(client, oscar, member, sent):
    sign_in(client, oscar)
    url = f"/staff/accounts/user/{member.pk}/change/"
    data = {key: value for key, value in form_of(client, url, "user_form").items() if key != "is_active"}

    [deactivated] = sent(lambda: post_form(client, url, data))
    [reactivated] = sent(lambda: post_form(client, url, form_of(client, url, "user_form"), is_active="on"))
    [reset] = sent(
        lambda: client.post("/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [member.pk]})
    )

    assert [deactivated.subject, reactivated.subject, reset.subject] == [
        "Your Tenantlink account was deactivated",
        "Your Tenantlink account was reactivated",
        "The second factor of your Tenantlink account was reset",
    ]
    assert all(
        "This was done by the operator staff of Tenantlink." in n.body for n in (deactivated, reactivated, reset)
    )


def test_a_reset_on_the_command_line_tells_bob_it_was_operator_staff(member, sent):
    [notice] = sent(lambda: call_command("reset_second_factor", "bob", stdout=io.StringIO()))

    assert notice.subject == "The second factor of your Tenantlink account was reset"
    assert "This was done by the operator staff of Tenantlink." in notice.body


# Wrong codes after the right password ------------------------------------------------------------


def test_wrong_codes_after_the_right_password_tell_bob_once_that_his_password_is_known(client, member, settings, sent):
    [notice] = sent(lambda: pause_with_wrong_codes(client, member, settings))

    assert notice.to == ["bob@example.com"]
    assert notice.subject == "Someone who knows your Tenantlink password entered wrong codes"
    assert "someone entered the right password for your Tenantlink account and then wrong codes" in notice.body
    assert "Your password is probably known to someone else." in notice.body
    assert "Change it in My Profile → Settings" in notice.body and "tell your company's administrator" in notice.body
    assert wrong_code(member) not in notice.body and PASSWORD not in notice.body


def test_guesses_sent_pause_after_pause_tell_bob_once_a_day(client, member, settings, sent):
    assert len(sent(lambda: pause_with_wrong_codes(client, member, settings))) == 1
    for _pause in range(3):  # whoever has the password can start a pause every few minutes
        end_pauses()
        assert sent(lambda: pause_with_wrong_codes(client, member, settings)) == []

    # A day after the first email, the next pause is told again.
    Throttle.objects.filter(key__startswith="notice:").update(
        window_started_at=timezone.now() - datetime.timedelta(days=1, seconds=1)
    )
    end_pauses()
    assert len(sent(lambda: pause_with_wrong_codes(client, member, settings))) == 1


def test_the_daily_purge_keeps_the_count_of_notices_for_its_day(client, member, settings, sent):
    sent(lambda: pause_with_wrong_codes(client, member, settings))
    later = timezone.now() - datetime.timedelta(hours=2)  # any other count of then would be purged
    Throttle.objects.filter(key__startswith="notice:").update(window_started_at=later)

    call_command("purge_expired", stdout=io.StringIO())
    end_pauses()

    assert sent(lambda: pause_with_wrong_codes(client, member, settings)) == []


def test_wrong_passwords_tell_nobody(client, member, settings, sent):
    attempts = settings.THROTTLE_ACCOUNT_FAILURES + 3

    assert sent(lambda: [client.post("/signin/", {"username": "bob", "password": "no"}) for _ in range(attempts)]) == []


def test_a_few_wrong_codes_then_the_right_one_tell_nobody(client, member, settings, sent):
    def mistyped():
        client.post("/signin/", {"username": "bob", "password": PASSWORD})
        for _ in range(settings.THROTTLE_ACCOUNT_FAILURES - 1):
            client.post("/signin/verify/", {"code": wrong_code(member)})
        assert client.post("/signin/verify/", {"code": code_for(member)}).url == "/portal/"

    assert sent(mistyped) == []


def test_a_strangers_wrong_passwords_and_bobs_one_wrong_code_tell_nobody(client, member, settings, sent):
    """The account's pause counts both, but only wrong codes tell that the password is known."""

    def both():
        stranger = Client()
        for _ in range(settings.THROTTLE_ACCOUNT_FAILURES - 1):
            stranger.post("/signin/", {"username": "bob", "password": "a guess"})
        client.post("/signin/", {"username": "bob", "password": PASSWORD})
        client.post("/signin/verify/", {"code": wrong_code(member)})  # and now the account pauses

    assert sent(both) == []


# Language, time zone, delivery ---------------------------------------------------------------------


def test_bob_is_told_in_his_language_and_time_zone_not_the_administrators(contoso, member, sent, monkeypatch):
    User.objects.filter(pk=member.pk).update(last_language="fi", time_zone="Asia/Tokyo")
    astrid = make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="sv")
    administrator = Client(headers={"accept-language": "sv"})
    sign_in(administrator, astrid)
    monkeypatch.setattr(flows.timezone, "now", lambda: datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC))

    [notice] = sent(lambda: administrator.post(f"/company/users/{member.pk}/deactivate/"))

    assert notice.body.startswith("Hei Bob,")  # Finnish, the language Bob last signed in with
    assert "Tämän teki yrityksesi järjestelmänvalvoja." in notice.body
    assert "1. tammikuuta 2026 kello 21.00 (Asia/Tokyo)" in notice.body  # 12:00 UTC is 21:00 in Tokyo, named


def test_bob_without_an_email_address_gets_nothing_and_the_change_stands(admin_client, member, sent):
    User.objects.filter(pk=member.pk).update(email="")

    assert sent(lambda: admin_client.post(f"/company/users/{member.pk}/deactivate/")) == []

    member.refresh_from_db()
    assert not member.is_active


def test_a_mail_server_that_refuses_the_notice_changes_nothing_and_is_logged(
    admin_client, member, sent, monkeypatch, caplog
):
    def refuse(backend, messages):
        raise smtplib.SMTPRecipientsRefused({"bob@example.com": (550, b"no such mailbox")})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)

    with caplog.at_level(logging.WARNING, logger="tenantlink.accounts.flows"):
        response = sent(lambda: admin_client.post(f"/company/users/{member.pk}/reset-second-factor/"))

    assert response == []
    member.refresh_from_db()
    assert not member.has_second_factor
    [record] = [r for r in caplog.records if r.name == "tenantlink.accounts.flows"]
    assert record.levelno == logging.WARNING
    assert (
        record.getMessage()
        == f"Security notice second_factor_reset to user {member.pk} not sent: SMTPRecipientsRefused"
    )


def test_a_change_rolled_back_is_not_told(member, sent):
    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            member.deactivate()
            flows.notify(None, member, "deactivated")
            raise RuntimeError("the request failed after all")

    assert sent(rolled_back) == []


def test_signing_in_as_usual_tells_nobody(member, sent):
    assert sent(lambda: signed_in_browser(member)) == []
