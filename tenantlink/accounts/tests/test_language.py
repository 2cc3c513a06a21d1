"""The portal in English, Swedish and Finnish: the browser's Accept-Language, the sign-in page's
switch (a plain form) and, once signed in, the user's own choice in My Profile → Settings."""

import datetime
import re

import pyotp
import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import translation

from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.conftest import PASSWORD, make_user, sign_in

SIGN_IN = {"en": "Sign in", "sv": "Logga in", "fi": "Kirjaudu sisään"}
MY_PROFILE = {"en": "My Profile", "sv": "Min profil", "fi": "Oma profiili"}


def heading(response):
    return heading_text(response.content.decode())


def heading_text(page):
    return re.search(r"<h1>(.*?)</h1>", page).group(1)


@pytest.mark.parametrize("language", ["en", "sv", "fi"])
def test_the_sign_in_page_speaks_the_browsers_language(client, language):
    response = client.get("/signin/", headers={"accept-language": f"{language},en;q=0.5"})

    assert heading(response) == SIGN_IN[language]
    assert f'<html lang="{language}">' in response.content.decode()
    assert response["Content-Language"] == language


def test_an_unknown_browser_language_gets_english(client):
    assert heading(client.get("/signin/", headers={"accept-language": "de-DE,de;q=0.9"})) == "Sign in"


def test_the_language_switch_is_a_plain_form_that_remembers_the_choice(client):
    page = client.get("/signin/?next=/profile/", headers={"accept-language": "sv"}).content.decode()
    switch = re.search(r'<form method="post" action="/language/".*?</form>', page, re.S).group(0)
    assert 'name="csrfmiddlewaretoken"' in switch and 'value="/signin/?next=/profile/"' in switch
    assert re.search(r'<button[^>]*type="submit" name="language" value="fi" lang="fi">Suomi</button>', switch)
    assert 'value="sv"' not in switch  # the page is in Swedish already

    response = client.post("/language/", {"language": "fi", "next": "/signin/?next=/profile/"})

    assert response.status_code == 302 and response.url == "/signin/?next=/profile/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fi"
    assert heading(client.get(response.url, headers={"accept-language": "sv"})) == SIGN_IN["fi"]


def test_the_switch_never_leads_off_the_site(client):
    response = client.post("/language/", {"language": "sv", "next": "https://evil.example/"})
    assert response.status_code == 302 and response.url == "/"


def test_a_users_own_language_wins_over_the_browser(client, member):
    member.language = "fi"
    member.save(update_fields=["language"])
    sign_in(client, member)

    response = client.get("/profile/", headers={"accept-language": "sv"})

    assert heading(response) == MY_PROFILE["fi"]


def test_the_message_of_the_sign_in_itself_is_in_the_users_language(client, member):
    member.language = "fi"
    member.save(update_fields=["language"])
    recovery_code = RecoveryCode.replace_for(member)[0]
    client.post("/signin/", {"username": member.username, "password": PASSWORD}, headers={"accept-language": "sv"})

    response = client.post("/signin/verify/", {"code": recovery_code}, headers={"accept-language": "sv"}, follow=True)

    assert "Kirjauduit sisään palautuskoodilla. Jäljellä on 9 käyttämätöntä koodia" in response.content.decode()


@pytest.mark.parametrize("seed", [True, False], ids=["code", "authenticator set-up"])
def test_the_second_step_speaks_the_users_language_once_the_password_is_known(client, member, seed):
    """Not the browser's first and the user's after it, mid-way through signing in."""
    member.language = "fi"
    member.save(update_fields=["language"])
    if not seed:
        member.reset_second_factor()
    client.post("/signin/", {"username": member.username, "password": PASSWORD}, headers={"accept-language": "sv"})

    page = client.get("/signin/verify/" if seed else "/signin/enrol/", headers={"accept-language": "sv"}, follow=True)

    assert '<html lang="fi">' in page.content.decode()


def test_without_a_choice_a_signed_in_user_gets_the_browsers_language(member_client):
    assert heading(member_client.get("/profile/", headers={"accept-language": "sv"})) == MY_PROFILE["sv"]


def test_a_user_chooses_a_language_in_settings(member_client, member):
    page = member_client.get("/profile/settings/").content.decode()
    assert '<option value="sv">Svenska</option>' in page and '<option value="fi">Suomi</option>' in page

    response = member_client.post("/profile/settings/", {"language": "sv", "time_zone": "Europe/Helsinki"}, follow=True)

    member.refresh_from_db()
    assert (member.language, member.time_zone) == ("sv", "Europe/Helsinki")
    assert "Ditt språk och din tidszon har sparats." in response.content.decode()
    # The sign-in page keeps Swedish after signing out.
    member_client.post("/signout/")
    assert heading(member_client.get("/signin/")) == SIGN_IN["sv"]


def test_a_user_goes_back_to_the_browsers_language(client, member):
    member.language = "fi"
    member.save(update_fields=["language"])
    sign_in(client, member)

    response = client.post("/profile/settings/", {"language": "", "time_zone": ""})

    member.refresh_from_db()
    assert member.language == ""
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == ""  # deleted
    assert heading(client.get("/profile/", headers={"accept-language": "sv"})) == MY_PROFILE["sv"]


def test_a_language_that_is_not_offered_is_refused(member_client, member):
    response = member_client.post("/profile/settings/", {"language": "de", "time_zone": ""})
    assert response.status_code == 200
    member.refresh_from_db()
    assert member.language == ""


@pytest.mark.parametrize(
    ("language", "shown"),
    [("en", "5 March 2026, 14:07"), ("sv", "5 mars 2026 14:07"), ("fi", "5. maaliskuuta 2026 kello 14.07")],
)
def test_dates_are_written_as_the_language_writes_them(client, member, language, shown):
    member.language = language
    member.time_zone = "UTC"
    member.save(update_fields=["language", "time_zone"])
    sign_in(client, member)
    User.objects.filter(pk=member.pk).update(last_login=datetime.datetime(2026, 3, 5, 14, 7, tzinfo=datetime.UTC))

    assert shown in client.get("/profile/").content.decode()


def test_an_invitation_is_written_in_the_inviters_language_until_the_invited_signs_in(client, contoso):
    """The invited person has used the portal in no language yet: the administrator who adds them
    likely shares theirs. Their own first sign-in then decides."""
    admin = make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="fi")
    sign_in(client, admin)

    client.post(
        "/company/users/new/",
        {"username": "carol", "display_name": "Carol", "email": "carol@example.com", "role": "member", "how": "invite"},
    )

    assert mail.outbox[-1].subject == "Sinut on kutsuttu palveluun Tenantlink"
    assert "Käyttäjätunnuksesi: carol" in mail.outbox[-1].body
    carol = User.objects.get(username="carol")
    carol.set_password(PASSWORD)
    carol.save()
    carol.seed = pyotp.random_base32()
    TOTPDevice.enrol(carol, carol.seed, step=0)
    sign_in(Client(headers={"accept-language": "sv"}), carol)
    with User.objects.get(username="carol").addressed():
        assert translation.get_language() == "sv"


NEW_CAROL = {
    "username": "carol",
    "display_name": "Carol",
    "email": "carol@example.com",
    "role": "member",
    "how": "invite",
}


def test_the_new_user_page_offers_the_administrators_own_language_for_the_invitation(client, contoso):
    sign_in(client, make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="fi"))

    page = client.get("/company/users/new/").content.decode()

    select = re.search(r'<select name="email_language".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="(\w+)"', select) == ["en", "sv", "fi"]
    assert '<option value="fi" selected>Suomi</option>' in select
    # Between the email address and the role, as a form reads: who, where to write, in what language.
    assert page.index('name="email"') < page.index('name="email_language"') < page.index('name="role"')


def test_an_administrator_invites_someone_in_another_language_than_their_own(client, contoso):
    sign_in(client, make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="fi"))

    client.post("/company/users/new/", {**NEW_CAROL, "email_language": "sv"})

    assert mail.outbox[-1].subject == "Du har bjudits in till Tenantlink"
    carol = User.objects.get(username="carol")
    with carol.addressed():  # and so is every later email, until Carol signs in herself
        assert translation.get_language() == "sv"
    # Not a choice of her own: once signed in, her pages follow her browser until she chooses one.
    assert carol.language == ""


def test_the_invitation_page_speaks_the_invitations_language_unless_the_browser_chose_one(client, contoso):
    sign_in(client, make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="fi"))
    client.post("/company/users/new/", {**NEW_CAROL, "email_language": "sv"})
    link = re.search(r"https?://[^/\s]+(/invitation/\S+)", mail.outbox[-1].body).group(1)

    carol = Client(headers={"accept-language": "en"})
    page = carol.get(link, follow=True)
    assert (
        heading(page) == "Välkommen"
        and "Välj ditt lösenord" in page.content.decode()
        and '<html lang="sv">' in page.content.decode()
    )
    form = {"new_password1": "purple elephant umbrella 42", "new_password2": "purple elephant umbrella 42"}
    accepted = carol.post(page.redirect_chain[-1][0], form, follow=True)
    assert heading(accepted) == SIGN_IN["sv"]  # and the sign-in page after it

    chose = Client(headers={"accept-language": "en"})
    chose.cookies[settings.LANGUAGE_COOKIE_NAME] = "fi"  # picked on the portal's pages
    client.post(
        "/company/users/new/", {**NEW_CAROL, "username": "dora", "email": "dora@example.com", "email_language": "sv"}
    )
    link = re.search(r"https?://[^/\s]+(/invitation/\S+)", mail.outbox[-1].body).group(1)
    assert "Valitse salasana" in chose.get(link, follow=True).content.decode()


@pytest.mark.parametrize("bad", ["de", "<script>", "sv ", "x" * 300])
def test_a_language_the_portal_does_not_speak_is_refused_and_the_form_kept(admin_client, bad):
    response = admin_client.post("/company/users/new/", {**NEW_CAROL, "email_language": bad})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Select a valid choice." in page
    assert 'value="carol@example.com"' in page and 'value="Carol"' in page
    assert not User.objects.filter(username="carol").exists() and not mail.outbox


@pytest.mark.parametrize(
    ("language", "title"), [("en", "Page not found"), ("sv", "Sidan hittades inte"), ("fi", "Sivua ei löytynyt")]
)
def test_error_pages_speak_the_language(client, language, title):
    response = client.get("/no-such-page/", headers={"accept-language": language})

    assert response.status_code == 404
    assert heading(response) == title
    assert f"<title>{title} · Tenantlink</title>" in response.content.decode()


def test_the_audit_logs_date_filter_keeps_its_dates_in_finnish(admin_client):
    page = admin_client.get("/company/audit/?since=2026-03-05", headers={"accept-language": "fi"}).content.decode()

    assert heading_text(page) == "Valvontaloki"
    assert re.search(r'<input type="date" name="since" value="2026-03-05"', page)


@pytest.mark.parametrize(
    "language, too_short",
    [
        ("sv", "Det här lösenordet är för kort"),
        ("fi", "Tämä salasana on liian lyhyt"),
    ],
)
def test_a_too_short_password_is_refused_in_the_users_language(client, member, language, too_short):
    member.language = language
    member.save(update_fields=["language"])
    sign_in(client, member)

    response = client.post(
        "/profile/password/", {"old_password": PASSWORD, "new_password1": "ab", "new_password2": "ab"}
    )

    assert too_short in response.content.decode()
    assert "too short" not in response.content.decode()
