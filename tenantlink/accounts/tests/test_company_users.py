"""Company administrators look after their own company's users: the list, new users (with an
initial password or an invitation), deactivation, reactivation and second-factor resets.
Members may not, and administrators of another company cannot even see that the users exist."""

import re
from unittest import mock

import pyotp
from django.contrib.auth.forms import SetPasswordForm
from django.core import mail
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tenantlink.accounts.forms import SIGNIN_FAILED
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for, get_under_prefix, make_user, sign_in, signed_in_browser

INITIAL_PASSWORD = "copper kettle on the stove"
CHOSEN_PASSWORD = "a quiet lighthouse in winter"


def text(response):
    return response.content.decode()


def user_links(response):
    """The users a page links to, by id, in the order shown."""
    return [int(pk) for pk in re.findall(r'href="/company/users/(\d+)/"', text(response))]


def new_user_form(**fields):
    form = {"username": "carol", "display_name": "Carol Jones", "email": "carol@example.com", "role": User.Role.MEMBER}
    form.update(fields)
    return form


def audited(action, target):
    return AuditEvent.objects.get(action=action, target_user=target)


def confirmation(response):
    """The form of a page that asks before it acts: it sends itself back with a POST."""
    return re.search(r'<form method="post" class="actions">(.*?)</form>', text(response), re.S).group(1)


def enrol_through_the_page(browser):
    """Do what the person does on the enrolment page: type the key into an app, enter its code."""
    page = browser.get("/signin/enrol/")
    assert page.status_code == 200
    key = re.search(r'id="manual-key">([A-Z2-7 ]+)<', text(page)).group(1).replace(" ", "")
    code = pyotp.TOTP(key).generate_otp(TOTPDevice.current_step())
    response = browser.post("/signin/enrol/", {"code": code}, follow=True)
    assert response.status_code == 200 and "Your recovery codes" in text(response)


# The list ------------------------------------------------------------------------------------


def test_the_list_shows_the_administrators_own_company_only(admin_client, admin, member, outsider):
    response = admin_client.get("/company/users/")

    assert response.status_code == 200
    assert "Contoso Ltd" in text(response)
    assert user_links(response) == [admin.pk, member.pk]  # alice, bob; never olga
    assert "Olga" not in text(response) and "Northwind" not in text(response)


def test_an_administrator_cannot_see_another_companys_users(client, admin, member, outsider):
    sign_in(client, outsider)

    response = client.get("/company/users/")
    assert user_links(response) == [outsider.pk]
    assert "Alice" not in text(response) and "Bob" not in text(response)

    assert client.get(f"/company/users/{member.pk}/").status_code == 404
    assert client.get(f"/company/users/{admin.pk}/").status_code == 404


def test_the_list_can_be_searched_by_name_username_or_email(admin_client, admin, member, outsider, contoso):
    dmitri = User.objects.create_user(
        "dmitri", company=contoso, display_name="Dmitri Petrov", email="d.p@fabrikam.example"
    )

    by_name = admin_client.get("/company/users/", {"q": "petrov"})
    by_username = admin_client.get("/company/users/", {"q": "DMITRI"})
    by_email = admin_client.get("/company/users/", {"q": "fabrikam.example"})
    for response in (by_name, by_username, by_email):
        assert user_links(response) == [dmitri.pk]

    assert user_links(admin_client.get("/company/users/", {"q": "example.com"})) == [admin.pk, member.pk]

    other_company = admin_client.get("/company/users/", {"q": "olga"})
    assert user_links(other_company) == []
    assert "No user matches your search." in text(other_company)


def test_names_are_shown_as_text_not_as_markup(admin_client, contoso):
    User.objects.create_user("eve", company=contoso, display_name="<script>alert(1)</script>")

    response = admin_client.get("/company/users/", {"q": "<script>"})

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(response)
    assert "<script>" not in text(response)


def test_thirty_users_fill_two_pages(admin_client, admin, contoso):
    for number in range(1, 30):  # with alice, thirty users
        User.objects.create_user(f"user{number:02}", company=contoso, display_name=f"User {number:02}")

    first = admin_client.get("/company/users/")
    assert len(user_links(first)) == 25
    assert "Page 1 of 2" in text(first)

    second = admin_client.get("/company/users/", {"page": 2})
    assert len(user_links(second)) == 5
    assert "Page 2 of 2" in text(second)
    assert set(user_links(first)).isdisjoint(user_links(second))

    # A search keeps its words from page to page.
    searched = admin_client.get("/company/users/", {"q": "user"})
    assert "Page 1 of 2" in text(searched)
    assert 'href="?q=user&amp;page=2"' in text(searched)
    assert len(user_links(admin_client.get("/company/users/", {"q": "user", "page": 2}))) == 4

    # A page number that is not one shows the first page.
    assert user_links(admin_client.get("/company/users/", {"page": "abc"})) == user_links(first)


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

    response = client.post(
        "/profile/password/",
        {"old_password": INITIAL_PASSWORD, "new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD},
    )
    assert response.status_code == 302

    assert client.get("/portal/").status_code == 200
    carol = User.objects.get(username="carol")
    assert not carol.must_change_password and carol.check_password(CHOSEN_PASSWORD)
    assert AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED, target_user=carol).exists()


# A new user with an invitation --------------------------------------------------------------


def invite_carol(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="invite"))
    assert response.status_code == 302
    return User.objects.get(username="carol")


def invitation_path(message):
    return re.search(r"https?://[^/\s]+(/invitation/[^/\s]+/[^/\s]+/)", message.body).group(1)


def test_an_invited_user_gets_an_email_and_chooses_a_password_once(admin_client, admin, contoso):
    carol = invite_carol(admin_client)
    client = Client()  # carol's own browser

    assert not carol.has_usable_password() and not carol.must_change_password
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["carol@example.com"]
    assert "Contoso Ltd" in message.body and "Your username: carol" in message.body
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


def test_of_two_browsers_sending_one_invitation_link_at_once_only_one_sets_the_password(admin_client):
    carol = invite_carol(admin_client)
    link = invitation_path(mail.outbox[0])
    carols, forwarded = Client(), Client()  # carol, and whoever else has the email
    form_address = carols.get(link, follow=True).redirect_chain[-1][0]
    forwarded.get(link)

    # Carol's password is stored while the other browser's request has checked the link and not
    # yet written its own password.
    save = SetPasswordForm.save

    def carol_first(form, *args, **kwargs):
        if form.cleaned_data["new_password1"] != CHOSEN_PASSWORD:
            response = carols.post(form_address, {"new_password1": CHOSEN_PASSWORD, "new_password2": CHOSEN_PASSWORD})
            assert response.status_code == 302 and response.url == "/signin/?username=carol"
        return save(form, *args, **kwargs)

    with mock.patch.object(SetPasswordForm, "save", carol_first):
        late = forwarded.post(form_address, {"new_password1": "a forwarded copy", "new_password2": "a forwarded copy"})

    assert late.status_code == 400 and "This invitation link does not work" in text(late)
    carol.refresh_from_db()
    assert carol.check_password(CHOSEN_PASSWORD)
    assert AuditEvent.objects.filter(action=Action.INVITATION_ACCEPTED, target_user=carol).count() == 1


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

    response = admin_client.post(f"/company/users/{carol.pk}/invite/", follow=True)
    assert "An invitation has been sent to carol@example.com." in text(response)
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["carol@example.com"]
    assert AuditEvent.objects.filter(action=Action.USER_INVITED, target_user=carol, actor=admin).count() == 2

    # Bob has a password already: no invitation for him.
    response = admin_client.post(f"/company/users/{member.pk}/invite/", follow=True)
    assert "Only an active user who has not yet accepted an invitation can be sent one." in text(response)
    assert len(mail.outbox) == 2


# Deactivation and reactivation ----------------------------------------------------------------


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


# Who may do what ------------------------------------------------------------------------------


def test_a_member_is_refused_every_company_page(member_client, member, admin):
    pages = ["/company/users/", "/company/users/new/", f"/company/users/{admin.pk}/", f"/company/users/{member.pk}/"]
    for page in pages:
        response = member_client.get(page)
        assert response.status_code == 403, page
        assert "You do not have permission to open this page." in text(response)

    for action in ("deactivate", "reset-second-factor"):  # the pages that ask first, too
        assert member_client.get(f"/company/users/{admin.pk}/{action}/").status_code == 403, action
    for action in ("deactivate", "reactivate", "reset-second-factor", "invite"):
        assert member_client.post(f"/company/users/{admin.pk}/{action}/").status_code == 403
    response = member_client.post(
        "/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD)
    )
    assert response.status_code == 403

    admin.refresh_from_db()
    assert admin.is_active and TOTPDevice.objects.filter(user=admin).exists()
    assert not User.objects.filter(username="carol").exists()


def test_an_administrator_of_another_company_finds_nothing_of_contoso(client, outsider, admin, member):
    RecoveryCode.replace_for(member)
    sign_in(client, outsider)
    before = AuditEvent.objects.count()

    assert client.get(f"/company/users/{member.pk}/").status_code == 404
    for action in ("deactivate", "reset-second-factor"):  # the pages that ask first
        response = client.get(f"/company/users/{member.pk}/{action}/")
        assert response.status_code == 404, action
        assert "Bob" not in text(response)
    for action in ("deactivate", "reactivate", "reset-second-factor", "invite"):
        response = client.post(f"/company/users/{member.pk}/{action}/")
        assert response.status_code == 404, action
        assert "There is nothing here." in text(response)

    member.refresh_from_db()
    assert member.is_active
    assert TOTPDevice.objects.filter(user=member).exists() and RecoveryCode.remaining(member) == 10
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_the_company_pages_need_a_signed_in_administrator(client, member):
    response = client.get("/company/users/")
    assert response.status_code == 302 and response.url == "/signin/?next=/company/users/"

    response = client.post(f"/company/users/{member.pk}/deactivate/")
    assert response.status_code == 302 and response.url.startswith("/signin/")
    member.refresh_from_db()
    assert member.is_active


def test_actions_that_change_something_refuse_get(admin_client, member):
    # Deactivating and resetting answer a GET with the page that asks first (tests above).
    for action in ("reactivate", "invite"):
        assert admin_client.get(f"/company/users/{member.pk}/{action}/").status_code == 405, action

    member.refresh_from_db()
    assert member.is_active and TOTPDevice.objects.filter(user=member).exists()
    assert mail.outbox == []


def test_a_form_sent_without_its_security_token_gets_the_form_has_expired_page(admin_client, member):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["sessionid"] = admin_client.cookies["sessionid"].value

    response = browser.post(f"/company/users/{member.pk}/deactivate/")
    assert response.status_code == 403
    assert "The form has expired" in text(response)
    member.refresh_from_db()
    assert member.is_active

    # The button on the page that asks first carries the token, and works.
    page = browser.get(f"/company/users/{member.pk}/deactivate/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    response = browser.post(f"/company/users/{member.pk}/deactivate/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_active


def test_an_administrator_can_make_another_administrator(admin_client, contoso):
    admin_client.post("/company/users/new/", new_user_form(how="invite", role=User.Role.ADMINISTRATOR))

    carol = User.objects.get(username="carol")
    assert carol.company == contoso and carol.is_company_admin
    assert audited(Action.USER_CREATED, carol).details == {"role": "administrator"}
    assert "Administrator" in text(admin_client.get(f"/company/users/{carol.pk}/"))


def test_another_administrator_can_deactivate_an_administrator(admin_client, admin, contoso):
    colleague = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    doras_browser = signed_in_browser(colleague)

    admin_client.post(f"/company/users/{colleague.pk}/deactivate/")

    colleague.refresh_from_db()
    assert not colleague.is_active and not colleague.is_company_admin
    assert doras_browser.get("/company/users/").status_code == 302


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
    assert "An invitation has been sent to carol@example.com." in text(response)
    assert len(mail.outbox) == 1
