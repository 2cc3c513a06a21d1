import datetime
import re
import time

import pyotp
from django.conf import settings
from django.test import Client

from tenantlink.accounts.forms import ChangePasswordForm, ConfirmCodeForm, PreferencesForm
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for


def make_signin_old(client):
    session = client.session
    session["signed_in_at"] = int(time.time()) - 3600
    session.save()


def test_the_settings_tab_shows_password_and_second_factor(member_client):
    html = member_client.get("/profile/settings/").content.decode()
    assert "Change password" in html
    assert "Authenticator app set up" in html
    assert "Move to a new authenticator app" in html


def test_changing_the_password_needs_the_current_one(member_client, member):
    response = member_client.post(
        "/profile/password/",
        {"old_password": "wrong", "new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)

    response = member_client.post(
        "/profile/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )
    assert response.url == "/profile/settings/"
    member.refresh_from_db()
    assert member.check_password("a brand new passphrase")
    assert member_client.get("/portal/").status_code == 200  # this session stays signed in
    assert AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED, target_user=member).exists()


def test_changing_the_password_ends_other_sessions(member_client, member):
    other_browser = Client()
    other_browser.post("/signin/", {"username": "bob", "password": PASSWORD})
    other_browser.post("/signin/verify/", {"code": code_for(member, offset=1)})
    assert other_browser.get("/portal/").status_code == 200

    new = "a brand new passphrase"
    member_client.post("/profile/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert other_browser.get("/portal/").status_code == 302
    assert member_client.get("/portal/").status_code == 200


def manual_key(page):
    return re.search(r'id="manual-key">([A-Z2-7 ]+)<', page.content.decode()).group(1).replace(" ", "")


def other_browser(user):
    """A second browser signed in as `user` (with a code of its own: a code counts once)."""
    browser = Client()
    browser.post("/signin/", {"username": user.username, "password": PASSWORD})
    assert browser.post("/signin/verify/", {"code": code_for(user, offset=1)}).url == "/portal/"
    return browser


def test_moving_to_a_new_authenticator_ends_other_sessions_and_keeps_this_one(member_client, member):
    elsewhere = other_browser(member)
    seed = manual_key(member_client.get("/profile/authenticator/"))

    member_client.post("/profile/authenticator/", {"code": pyotp.TOTP(seed).now()})

    assert elsewhere.get("/portal/").status_code == 302
    assert member_client.get("/portal/").status_code == 200


def test_new_recovery_codes_end_other_sessions_and_keep_this_one(member_client, member):
    elsewhere = other_browser(member)

    member_client.post("/profile/recovery-codes/")

    assert elsewhere.get("/portal/").status_code == 302
    page = member_client.get("/profile/recovery-codes/new/").content.decode()  # shown here, under the new key
    assert len(re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", page)) == 10
    assert member_client.get("/portal/").status_code == 200


def meanwhile(monkeypatch, form_class, action):
    """`action` runs as another request would, after this request read the user and before its
    form is saved."""
    checked = form_class.is_valid

    def is_valid(form):
        action()
        return checked(form)

    monkeypatch.setattr(form_class, "is_valid", is_valid)


NEW = "a brand new passphrase"


def test_saving_settings_while_an_administrator_deactivates_the_user_does_not_undo_it(
    member_client, member, monkeypatch
):
    meanwhile(monkeypatch, PreferencesForm, lambda: User.objects.get(pk=member.pk).deactivate())

    member_client.post("/profile/settings/", {"language": "sv", "time_zone": "Europe/Stockholm"})

    member.refresh_from_db()
    assert (member.is_active, member.session_generation, member.language) == (False, 1, "sv")
    assert member_client.get("/portal/").status_code == 302  # signed out, as the deactivation said


def test_changing_the_password_while_an_administrator_signs_the_user_out_everywhere_keeps_both(
    member_client, member, monkeypatch
):
    meanwhile(monkeypatch, ChangePasswordForm, lambda: User.objects.get(pk=member.pk).reset_second_factor())

    member_client.post("/profile/password/", {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})

    member.refresh_from_db()
    assert member.check_password(NEW)
    assert member.session_generation == 1 and not TOTPDevice.objects.filter(user=member).exists()


def test_of_two_tabs_changing_the_password_at_once_the_first_stands_and_the_second_is_told(
    member_client, member, monkeypatch
):
    def other_tab():
        other = User.objects.get(pk=member.pk)
        other.set_password("the other tab's passphrase")
        other.save(update_fields=["password"])

    meanwhile(monkeypatch, ChangePasswordForm, other_tab)

    response = member_client.post(
        "/profile/password/", {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}, follow=True
    )

    assert "Your password was changed a moment ago in another window. That password stays" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password("the other tab's passphrase") and not member.check_password(NEW)
    assert not AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED).exists()


def test_moving_to_a_new_authenticator_after_a_recent_signin(member_client, member):
    page = member_client.get("/profile/authenticator/")
    seed = re.search(r'id="manual-key">([A-Z2-7 ]+)<', page.content.decode()).group(1).replace(" ", "")
    assert seed != member.seed
    response = member_client.post("/profile/authenticator/", {"code": pyotp.TOTP(seed).now()})
    assert response.url == "/profile/settings/"
    assert TOTPDevice.objects.get(user=member).seed == seed


def test_of_two_browsers_moving_to_a_new_authenticator_the_first_to_finish_signs_the_other_out(member):
    """Both set-ups began before either finished: the first to finish counts and ends the other
    browser's session, so the other does not silently replace it (its person would lose the app
    they just set up)."""
    browsers = [Client(), Client()]
    for offset, browser in enumerate(browsers):  # each sign-in with a code of its own (a code counts once)
        browser.post("/signin/", {"username": member.username, "password": PASSWORD})
        assert browser.post("/signin/verify/", {"code": code_for(member, offset)}).url == "/portal/"
    seeds = [manual_key(browser.get("/profile/authenticator/")) for browser in browsers]

    first = browsers[0].post("/profile/authenticator/", {"code": pyotp.TOTP(seeds[0]).now()}, follow=True)
    second = browsers[1].post("/profile/authenticator/", {"code": pyotp.TOTP(seeds[1]).now()})

    assert "Your new authenticator app is set up." in first.content.decode()
    assert second.url.startswith("/signin/")
    assert TOTPDevice.objects.get(user=member).seed == seeds[0]
    assert AuditEvent.objects.filter(action=Action.SECOND_FACTOR_ENROLLED).count() == 1


def test_an_authenticator_set_up_elsewhere_while_this_one_is_being_confirmed_is_not_undone(
    member_client, member, monkeypatch
):
    """The other browser finished while this request was on its way, past the sign-out that its
    set-up brought: this one, begun earlier, does not replace it, and says so."""
    seed = manual_key(member_client.get("/profile/authenticator/"))
    theirs = pyotp.random_base32()
    meanwhile(
        monkeypatch,
        ConfirmCodeForm,
        lambda: TOTPDevice.replace(User.objects.get(pk=member.pk), theirs, TOTPDevice.current_step()),
    )

    response = member_client.post("/profile/authenticator/", {"code": pyotp.TOTP(seed).now()}, follow=True)

    assert "Your authenticator app was changed in another browser after you began here" in response.content.decode()
    assert TOTPDevice.objects.get(user=member).seed == theirs
    assert not AuditEvent.objects.filter(action=Action.SECOND_FACTOR_ENROLLED).exists()


def test_moving_to_a_new_authenticator_later_needs_the_password(member_client, member):
    make_signin_old(member_client)
    response = member_client.get("/profile/authenticator/")
    assert response.url == "/profile/confirm-password/?next=%2Fprofile%2Fauthenticator%2F"

    response = member_client.post(
        "/profile/confirm-password/?next=/profile/authenticator/",
        {"password": "wrong", "next": "/profile/authenticator/"},
    )
    assert "The password is not correct" in response.content.decode()
    before = member_client.cookies[settings.SESSION_COOKIE_NAME].value
    response = member_client.post(
        "/profile/confirm-password/", {"password": PASSWORD, "next": "/profile/authenticator/"}
    )
    assert response.url == "/profile/authenticator/"
    assert member_client.get("/profile/authenticator/").status_code == 200
    # The confirmation gave the session a new key, as a sign-in does; the old one is no more.
    assert member_client.cookies[settings.SESSION_COOKIE_NAME].value != before
    old_key = Client(HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}={before}")
    assert old_key.get("/profile/authenticator/").url.startswith("/signin/")


def test_new_recovery_codes_replace_the_old_ones(member_client, member):
    old = RecoveryCode.replace_for(member)
    assert member_client.get("/profile/recovery-codes/").status_code == 200  # asks first
    response = member_client.post("/profile/recovery-codes/", follow=True)
    assert "Your earlier recovery codes no longer work." in response.content.decode()
    new = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert not RecoveryCode.use(member, old[0])
    assert RecoveryCode.use(member, new[0])
    assert AuditEvent.objects.filter(action=Action.RECOVERY_CODES_GENERATED, target_user=member).exists()


def test_new_recovery_codes_later_need_the_password(member_client, member):
    make_signin_old(member_client)
    response = member_client.post("/profile/recovery-codes/")
    assert response.url.startswith("/profile/confirm-password/")
    assert RecoveryCode.remaining(member) == 0


def test_profile_pages_need_a_signin(client):
    for url in ("/profile/", "/profile/settings/", "/profile/password/", "/profile/authenticator/"):
        assert client.get(url).url.startswith("/signin/?next=")


def test_dates_are_shown_in_the_time_zone_the_user_chooses(member_client, member):
    response = member_client.post("/profile/settings/", {"time_zone": "Asia/Tokyo"})
    assert response.url == "/profile/settings/"
    member.refresh_from_db()
    assert member.time_zone == "Asia/Tokyo"
    # The last sign-in, 12:00 UTC, reads as 21:00 in Tokyo.
    User.objects.filter(pk=member.pk).update(last_login=datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC))
    assert "1 January 2026, 21:00" in member_client.get("/profile/").content.decode()


def test_an_unknown_time_zone_is_refused(member_client, member):
    response = member_client.post("/profile/settings/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    member.refresh_from_db()
    assert member.time_zone == ""


def test_the_new_password_must_differ_from_the_current_one(member_client, member):
    response = member_client.post(
        "/profile/password/", {"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD}
    )

    assert response.status_code == 200  # not "Your password has been changed."
    assert response.context["form"].errors["new_password1"] == [
        "The new password is the same as your current one. Choose a different one."
    ]
    assert "Your password has been changed." not in response.content.decode()
    assert not AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED).exists()


def test_an_initial_password_cannot_be_kept_by_changing_it_to_itself(member_client, member):
    User.objects.filter(pk=member.pk).update(must_change_password=True)
    same = {"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD}

    assert member_client.post("/profile/password/", same).status_code == 200
    member.refresh_from_db()
    assert member.must_change_password
    assert member_client.get("/portal/").url == "/profile/password/"  # still asked first


def test_going_back_to_the_browsers_language_says_saved_in_the_browsers_language(member_client, member):
    member.language = "sv"
    member.save(update_fields=["language"])
    member_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sv"

    response = member_client.post(
        "/profile/settings/", {"language": "", "time_zone": ""}, headers={"accept-language": "fi"}, follow=True
    )

    page = response.content.decode()
    assert "Kieli ja aikavyöhyke on tallennettu." in page  # Finnish, as the page itself now is
    assert '<html lang="fi"' in page


def test_new_recovery_codes_are_shown_to_a_get_only(member_client, member):
    member_client.post("/profile/recovery-codes/")

    for method in (member_client.head, member_client.put, member_client.post, member_client.delete):
        response = method("/profile/recovery-codes/new/")
        assert response.status_code == 405
        assert response["Allow"] == "GET"
    assert "This page cannot be used that way" in member_client.put("/profile/recovery-codes/new/").content.decode()

    page = member_client.get("/profile/recovery-codes/new/").content.decode()  # still there to see, once
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", page)
    assert len(codes) == 10 and RecoveryCode.use(member, codes[0])
    assert member_client.get("/profile/recovery-codes/new/").url == "/profile/settings/"
