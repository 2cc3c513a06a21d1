"""Company administrators create their company's users, with an initial password or an
invitation: the new user's own first steps, and every form that is refused."""

import re
import zoneinfo
from unittest import mock

from django.core import mail
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tenantlink.accounts import flows as flows_module
from tenantlink.accounts.forms import SIGNIN_FAILED
from tenantlink.accounts.models import User
from tenantlink.accounts.tests.company_user_helpers import (
    INITIAL_PASSWORD,
    audited,
    enrol_through_the_page,
    invitation_path,
    invite_carol,
    new_user_form,
    text,
)
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, get_under_prefix, make_user, signed_in_browser

CHOSEN_PASSWORD = "a quiet lighthouse in winter"


# A new user with an initial password ------------------------------------------------------


def test_an_administrator_creates_a_user_with_an_initial_password(admin_client, admin, contoso):
    response = admin_client.post(
        "/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD)
    )

    carol = User.objects.get(username="carol")
    assert response.status_code == 302 and response.url == f"/company/users/{carol.pk}/"
    assert carol.company == contoso and carol.role == User.Role.MEMBER
    assert carol.check_password(INITIAL_PASSWORD)
    assert carol.must_change_password
    assert mail.outbox == []

    page = admin_client.get(response.url)
    assert "Carol Jones has been created." in text(page)
    assert "Give them the initial password in a safe way" in text(page)
    assert "Initial password, to be changed at first sign-in" in text(page)

    event = audited(Action.USER_CREATED, carol)
    assert (event.actor, event.company, event.details) == (admin, contoso, {"role": "member"})


def test_a_new_user_always_joins_the_administrators_company_as_a_plain_user(admin_client, contoso, northwind):
    form = new_user_form(
        how="password", initial_password=INITIAL_PASSWORD, company=northwind.pk, is_staff="on", is_superuser="on"
    )
    admin_client.post("/company/users/new/", form)

    carol = User.objects.get(username="carol")
    assert carol.company == contoso
    assert not carol.is_staff and not carol.is_superuser


def test_a_weak_initial_password_is_refused_with_the_reasons(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="password", initial_password="password"))

    assert response.status_code == 200
    assert "This password is too short: it must have at least 12 characters." in text(response)
    assert "This password is too common." in text(response)
    assert not User.objects.filter(username="carol").exists()


def test_a_password_too_long_to_sign_in_with_is_refused(admin_client, admin):
    too_long = "copper kettle " * 300  # 4,200 characters: more than the sign-in form takes
    response = admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=too_long))
    assert "This password is too long: it may have at most 4096 characters." in text(response)
    assert not User.objects.filter(username="carol").exists()

    response = admin_client.post(
        "/profile/password/", {"old_password": PASSWORD, "new_password1": too_long, "new_password2": too_long}
    )
    assert "This password is too long" in text(response)
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD)


def test_a_password_sent_in_another_encoding_than_utf8_is_refused_not_changed(admin_client):
    """A client that sends Latin-1: the byte \xff is no UTF-8, and read as U+FFFD. Stored, the
    password would not be the one chosen: "Patÿpass-12345" would not sign in."""
    carol = invite_carol(admin_client)
    carols = Client()
    form_address = carols.get(invitation_path(mail.outbox[0]), follow=True).redirect_chain[-1][0]
    body = b"new_password1=Pat%FFpass-12345&new_password2=Pat%FFpass-12345"
    response = carols.post(form_address, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert "This password has a character the portal could not read." in text(response)
    carol.refresh_from_db()
    assert not carol.has_usable_password()


def test_a_password_of_a_few_characters_repeated_is_refused(admin_client):
    for repeated in ("xxxxxxxxxxxxxxxx", "abababababab", "AbAbaBcCabcaBC"):
        response = admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=repeated))
        assert "This password has too few different characters: use at least 5." in text(response), repeated
    assert not User.objects.filter(username="carol").exists()


def test_a_username_saved_by_another_request_meanwhile_is_refused_in_the_same_words(admin_client, monkeypatch):
    from tenantlink.accounts.forms import CompanyUserForm

    admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD))
    # The other request had not saved it yet when this one checked the name itself; by the time
    # the model's own checks ran, it had.
    monkeypatch.setattr(CompanyUserForm, "clean_username", lambda form: form.cleaned_data["username"])
    for spelling in ("carol", "Carol"):
        response = admin_client.post(
            "/company/users/new/", new_user_form(username=spelling, how="password", initial_password=INITIAL_PASSWORD)
        )
        assert "This username is taken. Choose another one." in text(response)
        assert "Constraint" not in text(response) and "already exists" not in text(response)
    assert User.objects.filter(username__iexact="carol").count() == 1


def test_the_same_new_user_sent_twice_at_once_is_created_once(admin_client, monkeypatch):
    from tenantlink.accounts.forms import CompanyUserForm

    admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD))
    # The second request checked the name before the first one had saved it.
    monkeypatch.setattr(CompanyUserForm, "clean_username", lambda form: form.cleaned_data["username"])
    monkeypatch.setattr(CompanyUserForm, "validate_unique", lambda form: None)
    monkeypatch.setattr(User, "validate_constraints", lambda user, exclude=None: None)
    response = admin_client.post(
        "/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD)
    )
    assert response.status_code == 200
    assert "This username is taken. Choose another one." in text(response)
    assert User.objects.filter(username="carol").count() == 1
    assert AuditEvent.objects.filter(action=Action.USER_CREATED).count() == 1


def test_an_initial_password_is_required_when_chosen(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=""))

    assert "Enter an initial password." in text(response)
    assert not User.objects.filter(username="carol").exists()


def test_a_username_with_other_characters_is_refused_in_the_words_of_the_fields_help(admin_client):
    for username in ("jürgen", "carol smith", "ｃａｒｏｌ"):
        page = text(admin_client.post("/company/users/new/", new_user_form(username=username)))
        assert "A username may have only letters a–z, digits and @/./+/-/_. Choose another." in page, username
        assert "Letters a–z, digits and @/./+/-/_ only." in page  # the help beside it says the same
        assert "unaccented" not in page
    assert not User.objects.filter(display_name="Carol Jones").exists()


def test_a_taken_username_is_refused_whatever_its_case(admin_client, member, outsider):
    own_company = admin_client.post(
        "/company/users/new/", new_user_form(username="BOB", how="password", initial_password=INITIAL_PASSWORD)
    )
    other_company = admin_client.post(
        "/company/users/new/", new_user_form(username="Olga", how="password", initial_password=INITIAL_PASSWORD)
    )

    for response in (own_company, other_company):
        assert response.status_code == 200
        assert "This username is taken. Choose another one." in text(response)
    assert User.objects.filter(username__iexact="bob").count() == 1
    assert User.objects.filter(username__iexact="olga").count() == 1
    assert not AuditEvent.objects.filter(action=Action.USER_CREATED).exists()


def test_a_company_cannot_list_the_usernames_of_others_by_trying_names(admin_client, member, outsider, contoso):
    """Usernames are unique across companies: each "taken" tells that somebody has the name. The
    count is the company's: another administrator it makes does not start again."""
    from tenantlink.accounts.throttle import TAKEN_NAMES

    for _free in range(TAKEN_NAMES + 5):  # free names, with another mistake in the form: never counted
        assert "Enter an initial password." in text(
            admin_client.post("/company/users/new/", new_user_form(how="password"))
        )
    for _taken in range(TAKEN_NAMES - 1):
        assert "This username is taken" in text(
            admin_client.post("/company/users/new/", new_user_form(username="Olga"))
        )
    other_admin = signed_in_browser(make_user("abe", contoso, User.Role.ADMINISTRATOR))
    assert "This username is taken" in text(other_admin.post("/company/users/new/", new_user_form(username="Olga")))

    for client, name in ((admin_client, "olga"), (other_admin, "carol")):  # taken or free: no more said
        page = text(client.post("/company/users/new/", new_user_form(username=name)))
        assert "no more are checked for now" in page and "This username is taken" not in page
    assert not User.objects.filter(username="carol").exists()


def test_a_user_with_an_initial_password_changes_it_before_reaching_the_portal(admin_client):
    admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD))
    client = Client()  # carol's own browser

    response = client.post("/signin/", {"username": "carol", "password": INITIAL_PASSWORD})
    assert response.url == "/signin/enrol/"  # no authenticator yet: set one up first
    enrol_through_the_page(client)

    for page in ("/portal/", "/profile/", "/company/users/"):
        response = client.get(page)
        assert response.status_code == 302 and response.url == "/profile/password/"
    assert "Please choose a new password before you continue." in text(client.get("/profile/password/"))
    # Under a script prefix too; a static address is never sent there (a missing file stays a 404).
    portal, static = get_under_prefix(client, "/portal/", "/static/tenantlink/missing.css")
    assert portal.status_code == 302 and portal.url == "/app/profile/password/"
    assert static.status_code == 404

    # Back to her recovery codes, shown once: on to the password, without words about the settings.
    again = client.get("/profile/recovery-codes/new/", follow=True)
    assert again.redirect_chain[-1][0] == "/profile/password/" and "make new ones here" not in text(again)
    # She typed the initial password a moment ago: it is not asked for again, and the profile's
    # tabs, which would only lead back here, are not shown.
    page = text(client.get("/profile/password/"))
    assert "Choose your own password" in page and 'name="old_password"' not in page
    assert 'href="/profile/settings/"' not in page
    same = {"new_password1": INITIAL_PASSWORD, "new_password2": INITIAL_PASSWORD}
    assert "The new password is the same as your current one." in text(client.post("/profile/password/", same))
    response = client.post("/profile/password/", {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
    assert response.status_code == 302 and response.url == "/portal/"  # on to where she was going

    assert client.get("/portal/").status_code == 200
    carol = User.objects.get(username="carol")
    assert not carol.must_change_password and carol.check_password(CHOSEN_PASSWORD)
    assert AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED, target_user=carol).exists()


def test_the_first_own_password_sent_from_a_second_window_says_another_window_chose_one(admin_client):
    admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD))
    client = Client()
    client.post("/signin/", {"username": "carol", "password": INITIAL_PASSWORD})
    enrol_through_the_page(client)
    chosen = {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD}
    assert client.post("/profile/password/", chosen).url == "/portal/"

    other = {"new_password1": "another long passphrase", "new_password2": "another long passphrase"}
    page = text(client.post("/profile/password/", other, follow=True))

    assert "Your password was changed a moment ago in another window." in page and "required" not in page
    assert User.objects.get(username="carol").check_password(CHOSEN_PASSWORD)


def test_a_change_operator_staff_ask_for_later_asks_for_the_current_password(member_client, member):
    """Not the initial password typed at this sign-in: whoever sits at the browser must know it."""
    User.objects.filter(pk=member.pk).update(must_change_password=True)
    page = text(member_client.get("/profile/password/"))
    assert "Choose your own password" in page and 'name="old_password"' in page


def test_an_initial_password_left_unchanged_for_a_while_is_asked_for_again(admin_client):
    admin_client.post("/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD))
    client = Client()
    client.post("/signin/", {"username": "carol", "password": INITIAL_PASSWORD})
    enrol_through_the_page(client)
    session = client.session
    session["signed_in_at"] -= 3600  # the browser was left at the page
    session.save()

    chosen = {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD}
    assert 'name="old_password"' in text(client.get("/profile/password/"))
    assert "This field is required." in text(client.post("/profile/password/", chosen))
    response = client.post("/profile/password/", {"old_password": INITIAL_PASSWORD, **chosen})
    assert response.status_code == 302 and response.url == "/portal/"


def test_an_administrator_can_make_another_administrator(admin_client, contoso):
    admin_client.post("/company/users/new/", new_user_form(how="invite", role=User.Role.ADMINISTRATOR))

    carol = User.objects.get(username="carol")
    assert carol.company == contoso and carol.is_company_admin
    assert audited(Action.USER_CREATED, carol).details == {"role": "administrator"}
    assert "Administrator" in text(admin_client.get(f"/company/users/{carol.pk}/"))


# A new user with an invitation --------------------------------------------------------------


def test_an_invited_user_gets_an_email_and_chooses_a_password_once(admin_client, admin, contoso):
    carol = invite_carol(admin_client)
    client = Client()  # carol's own browser

    assert not carol.has_usable_password() and not carol.must_change_password
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["carol@example.com"]
    assert "Contoso Ltd" in message.body and "Your username: carol" in message.body
    # Until when the link works, in her time zone (the portal's default: she has chosen none).
    ends = timezone.localtime(timezone.now() + timezone.timedelta(days=3), zoneinfo.ZoneInfo("Europe/Stockholm"))
    until = re.search(r"the link works once, until (.+), (\S+) time\):", message.body)
    assert until.group(2) == "Europe/Stockholm" and until.group(1).startswith(f"{ends.day} {ends:%B %Y}, ")
    page = admin_client.get(f"/company/users/{carol.pk}/")
    assert "Carol Jones has been created." in text(page)
    assert "An invitation has been sent to carol@example.com." in text(page)
    assert "Invitation not yet accepted" in text(page)

    # Until the invitation is accepted no password signs carol in.
    assert str(SIGNIN_FAILED) in text(client.post("/signin/", {"username": "carol", "password": CHOSEN_PASSWORD}))

    link = invitation_path(message)
    response = client.get(link, follow=True)
    assert response.status_code == 200 and "Your username is <strong>carol</strong>" in text(response)
    # The token leaves the address at once, so it stays out of history and access logs.
    form_address = response.redirect_chain[-1][0]
    assert form_address.endswith("/set-password/") and link.split("/")[3] not in form_address
    response = client.post(form_address, {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
    assert response.status_code == 302 and response.url == "/signin/?username=carol"
    # Carol's username is filled in; the cursor waits in the password field.
    signin_page = text(client.get(response.url))
    assert "Your password is set." in signin_page and "was not saved" not in signin_page
    assert re.search(r'<input type="text" name="username" value="carol"[^>]*>', signin_page)
    assert re.search(r'<input type="password" name="password"[^>]*autofocus', signin_page)
    assert 'name="username" value="carol" autofocus' not in signin_page

    response = client.post("/signin/", {"username": "carol", "password": CHOSEN_PASSWORD})
    assert response.url == "/signin/enrol/"

    again = Client().get(link, follow=True)
    assert again.status_code == 400
    assert "This invitation link does not work" in text(again)
    somebody = Client()
    somebody.get(link)
    taken_over = somebody.post(
        form_address, {"new_password1": "somebody else's password", "new_password2": "somebody else's password"}
    )
    assert taken_over.status_code == 400
    carol.refresh_from_db()
    assert carol.check_password(CHOSEN_PASSWORD)

    created, invited = audited(Action.USER_CREATED, carol), audited(Action.USER_INVITED, carol)
    for event in (created, invited):
        assert (event.actor, event.company) == (admin, contoso)
    accepted = audited(Action.INVITATION_ACCEPTED, carol)
    assert (accepted.actor, accepted.company) == (carol, contoso)


def test_password_pages_name_whose_password_it_is_for_password_managers(admin_client, member):
    """A password manager saves and fills a password under the username field before it."""
    invite_carol(admin_client)
    carols = Client()
    invitation = carols.get(invitation_path(mail.outbox[0]), follow=True).content.decode()
    bob = signed_in_browser(member)
    pages = [
        (invitation, "carol"),
        (bob.get("/profile/confirm-password/").content.decode(), member.username),
        (bob.get("/profile/password/").content.decode(), member.username),
    ]
    for page, username in pages:
        field = re.search(r'<input type="text" name="username"[^>]*>', page)[0]
        assert f'value="{username}"' in field and 'autocomplete="username"' in field and "hidden" in field
        assert page.index('name="username"') < page.index('type="password"')


def test_of_two_browsers_sending_one_invitation_link_at_once_only_one_sets_the_password(admin_client):
    carol = invite_carol(admin_client)
    link = invitation_path(mail.outbox[0])
    carols, forwarded = Client(), Client()  # carol, and whoever else has the email
    form_address = carols.get(link, follow=True).redirect_chain[-1][0]
    forwarded.get(link)

    # Carol's password is stored while the other browser's request has checked the link and not
    # yet written its own password.
    replace = User.replace_password

    def carol_first(user, read, raw_password, **columns):
        if raw_password != CHOSEN_PASSWORD:
            response = carols.post(form_address, {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
            assert response.status_code == 302 and response.url == "/signin/?username=carol"
        return replace(user, read, raw_password, **columns)

    with mock.patch.object(User, "replace_password", carol_first):
        late = forwarded.post(form_address, {"new_password1": "a forwarded copy", "new_password2": "a forwarded copy"})

    assert late.status_code == 400 and "This invitation link does not work" in text(late)
    carol.refresh_from_db()
    assert carol.check_password(CHOSEN_PASSWORD)
    assert AuditEvent.objects.filter(action=Action.INVITATION_ACCEPTED, target_user=carol).count() == 1


def test_a_link_checker_opening_the_invitation_first_uses_nothing_up(admin_client):
    carol = invite_carol(admin_client)
    link = invitation_path(mail.outbox[0])
    mail_server = Client()
    moved = mail_server.head(link)  # HEAD, as the link's GET would: the token into its session
    assert moved.status_code == 302
    assert mail_server.head(moved.url).status_code == 200  # the set-password page, as a HEAD
    carols = Client()
    form_address = carols.get(link, follow=True).redirect_chain[-1][0]
    response = carols.post(form_address, {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
    assert response.status_code == 302 and response.url == "/signin/?username=carol"
    carol.refresh_from_db()
    assert carol.check_password(CHOSEN_PASSWORD)


def test_a_tampered_invitation_link_does_not_work(admin_client, member):
    carol = invite_carol(admin_client)
    client = Client()
    link = invitation_path(mail.outbox[0])
    _, _, uid, token, _ = link.split("/")

    changed_token = f"/invitation/{uid}/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/"
    bobs_id_with_carols_token = f"/invitation/{urlsafe_base64_encode(force_bytes(member.pk))}/{token}/"
    for forged in (changed_token, bobs_id_with_carols_token, f"/invitation/!!/{token}/"):
        client.get(forged)
        response = client.post(
            forged.rsplit("/", 2)[0] + "/set-password/",
            {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD},
        )
        assert response.status_code == 400
        assert "This invitation link does not work" in text(response)

    carol.refresh_from_db()
    member.refresh_from_db()
    assert not carol.has_usable_password()
    assert member.check_password(PASSWORD)


def test_a_name_that_would_turn_the_text_around_or_break_lines_is_refused(admin_client):
    # "Carol" followed by a right-to-left override shows the rest backwards, in pages and emails.
    for name in ("Carol\u202eseno\u202c", "Carol\nJones", "Carol\tJones", "Carol\u2028Jones"):
        response = admin_client.post("/company/users/new/", new_user_form(how="invite", display_name=name))
        assert response.status_code == 200
        assert "characters that turn the direction of the text" in text(response)
        assert response.context["form"]["display_name"].value() == name  # kept, to correct
    assert not User.objects.filter(username="carol").exists()
    # Joiners, as emoji and some scripts need, and right-to-left names are fine.
    assert (
        admin_client.post("/company/users/new/", new_user_form(how="invite", display_name="كارول 👩‍💻")).status_code
        == 302
    )


def test_an_invitation_to_an_address_that_is_not_one_says_only_that(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="invite", email="not-an-email"))
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]


def test_an_invitation_needs_an_email_address(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="invite", email=""))

    assert response.status_code == 200
    assert "An invitation needs an email address." in text(response)
    assert not User.objects.filter(username="carol").exists()
    assert mail.outbox == []


def test_an_invitation_can_be_sent_again_until_it_is_accepted(admin_client, admin, member):
    carol = invite_carol(admin_client)

    first_link = invitation_path(mail.outbox[0])
    response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)
    assert "An invitation has been sent to carol@example.com; links sent before it no longer work." in text(response)
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["carol@example.com"]
    assert AuditEvent.objects.filter(action=Action.USER_INVITED, target_user=carol, actor=admin).count() == 1
    assert AuditEvent.objects.filter(action=Action.USER_INVITED_AGAIN, target_user=carol, actor=admin).count() == 1
    assert "Sent the invitation again" in text(admin_client.get(f"/company/users/{carol.pk}/"))
    # The first email's link went astray, say: it works no more; the new one does.
    assert "This invitation link does not work" in text(Client().get(first_link, follow=True))
    assert "Choose your password" in text(Client().get(invitation_path(mail.outbox[1]), follow=True))

    # Bob has a password already: no invitation for him.
    response = admin_client.post(f"/company/users/{member.pk}/invite/", follow=True)
    assert "Bob has chosen a password already, so nothing was sent." in text(response)
    assert len(mail.outbox) == 2


def test_an_invitation_not_sent_again_leaves_the_earlier_link_working(admin_client, settings):
    carol = invite_carol(admin_client)
    first_link = invitation_path(mail.outbox[0])
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens there

    response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)

    assert "The invitation could not be sent" in text(response)
    assert "Choose your password" in text(Client().get(first_link, follow=True))


def test_sending_again_as_the_person_accepts_keeps_their_password(admin_client):
    carol = invite_carol(admin_client)
    carols = Client()
    form_address = carols.get(invitation_path(mail.outbox[0]), follow=True).redirect_chain[-1][0]
    make_unusable = User.set_unusable_password

    def accepted_meanwhile(user):  # after the administrator's request read the account
        carols.post(form_address, {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
        make_unusable(user)

    with mock.patch.object(User, "set_unusable_password", accepted_meanwhile):
        response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)

    assert "Carol Jones accepted the invitation a moment ago." in text(response)
    assert len(mail.outbox) == 1  # nothing more sent
    carol.refresh_from_db()
    assert carol.check_password(CHOSEN_PASSWORD)


def test_sending_again_from_a_page_older_than_the_acceptance_says_so(admin_client):
    carol = invite_carol(admin_client)
    mail.outbox.clear()
    carol.set_password("carol's own passphrase")  # she accepted in the meantime
    carol.save(update_fields=["password"])

    response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)

    assert "Carol Jones has chosen a password already, so nothing was sent." in text(response)
    assert "Only an active user" not in text(response) and not mail.outbox


def test_two_invitations_sent_again_at_once_say_which_link_works(admin_client):
    """Two administrators, or two windows: the second is sent while the first is on its way."""
    carol = invite_carol(admin_client)
    other_window = Client()
    other_window.cookies = admin_client.cookies
    send = flows_module.send_invitation
    answers, started = [], []

    def meanwhile_another(request, user, action):
        if not started:
            started.append(True)
            answers.append(other_window.post(f"/company/users/{carol.pk}/invite/", follow=True))
        return send(request, user, action)

    with mock.patch.object(flows_module, "send_invitation", meanwhile_another):
        first = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)

    # The later one was sent first; the earlier one's message went out last, with the link that works.
    assert "only the link in the last one sent works" in text(first).replace("&#x27;", "'")
    assert "links sent before it no longer work" in text(answers[0])
    works = [
        "Choose your password" in text(Client().get(invitation_path(message), follow=True)) for message in mail.outbox
    ]
    assert works == [False, False, True] or works == [False, True, False]
    assert works.count(True) == 1


def test_someone_whose_password_sign_in_was_turned_off_is_not_sent_an_invitation(admin_client, member):
    """They have signed in (with Microsoft, say): a new link would change their password hash and
    end their sessions, without a word."""
    member.set_unusable_password()
    member.last_login = timezone.now()
    member.save(update_fields=["password", "last_login"])
    page = text(admin_client.get(f"/company/users/{member.pk}/"))
    assert "Send invitation again" not in page and "Password sign-in off" in page
    response = admin_client.post(f"/company/users/{member.pk}/invite/", follow=True)
    assert "Only an active user who has not yet accepted an invitation can be sent one." in text(response)
    assert not mail.outbox


def test_a_mail_server_that_is_down_loses_nothing(admin_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens there

    response = admin_client.post("/company/users/new/", new_user_form(how="invite"), follow=True)

    carol = User.objects.get(username="carol")
    assert "Carol Jones has been created." in text(response)
    assert "The invitation could not be sent" in text(response)
    assert "Send invitation again" in text(response)
    assert AuditEvent.objects.get(action=Action.USER_INVITED, target_user=carol).outcome == "failure"

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)
    assert "An invitation has been sent to carol@example.com;" in text(response)
    assert len(mail.outbox) == 1
