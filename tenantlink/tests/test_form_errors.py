"""A form that comes back with errors starts where the mistake is: the first field with an error
has the focus (autofocus, no script needed) and a summary at the top of the form, read out as the
page opens, lists each error with a link to its field."""

import html
import re

from django.core import mail
from django.test import Client

from tenantlink.conftest import PASSWORD, code_for

NEW_PASSWORD = "a brand new passphrase 42"


def page_of(response):
    return response.content.decode()


def autofocused(page):
    """The names of the inputs and selects that take the focus as the page opens."""
    tags = re.findall(r"<(?:input|select|textarea) [^>]*>", page)
    return [re.search(r'name="([^"]+)"', tag)[1] for tag in tags if re.search(r"\sautofocus[\s>]", tag)]


def summary(page):
    """The error summary: its own text, and each link as (target id, text)."""
    found = re.search(r'<div class="error-summary" role="alert">(.*?)</div>', page, re.DOTALL)
    if found is None:
        return None, []
    links = [(target, html.unescape(text)) for target, text in re.findall(r'<a href="#([^"]+)">([^<]*)</a>', found[1])]
    return re.sub(r"<[^>]+>", " ", found[1]), links


def test_a_refused_new_password_takes_the_focus_from_the_old_one(member_client):
    page = page_of(
        member_client.post(
            "/profile/password/", {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"}
        )
    )

    # Beside the new password, which is what breaks the rule, not its confirmation.
    assert autofocused(page) == ["new_password1"]
    [(target, text)] = summary(page)[1]
    assert target == "id_new_password1" and 'id="id_new_password1"' in page
    assert text.startswith("New password: ") and "too short" in text


def test_a_form_without_errors_keeps_its_own_first_field_focused(member_client):
    page = page_of(member_client.get("/profile/password/"))

    assert autofocused(page) == ["old_password"]
    assert summary(page) == (None, [])


def test_the_new_user_form_lists_every_error_and_focuses_the_first(admin_client):
    page = page_of(admin_client.post("/company/users/new/", {"how": "password", "role": "member"}))

    text, links = summary(page)
    assert "Correct the following and send the form again:" in text
    assert [target for target, _ in links] == ["id_username", "id_display_name", "id_initial_password"]
    assert links[0][1] == "Username: This field is required."
    assert autofocused(page) == ["username"]
    for target, _ in links:
        assert f'id="{target}"' in page


def test_an_error_in_a_later_field_moves_the_focus_there(admin_client):
    page = page_of(
        admin_client.post(
            "/company/users/new/",
            {"how": "invite", "role": "member", "username": "carol", "display_name": "Carol Jones"},
        )
    )

    assert autofocused(page) == ["email"]
    assert [target for target, _ in summary(page)[1]] == ["id_email"]


def test_a_wrong_password_at_sign_in_is_announced_once_and_names_no_field(client, member):
    page = page_of(client.post("/signin/", {"username": member.username, "password": "not the password"}))

    text, links = summary(page)
    assert "We could not sign you in with these details." in text
    assert links == []
    assert "Correct the following" not in text
    assert page.count('role="alert"') == 1
    assert autofocused(page) == ["password"]  # emptied, what to type again; the username stays as typed


def test_the_invitation_page_focuses_the_password_to_correct(admin_client):
    admin_client.post(
        "/company/users/new/",
        {"how": "invite", "role": "member", "username": "carol", "display_name": "Carol", "email": "c@example.com"},
    )
    link = re.search(r"https?://[^/\s]+(/invitation/[^/\s]+/[^/\s]+/)", mail.outbox[0].body)[1]
    carol = Client()
    form_address = carol.get(link, follow=True).redirect_chain[-1][0]

    page = page_of(carol.post(form_address, {"new_password1": NEW_PASSWORD, "new_password2": "something else"}))

    assert autofocused(page) == ["new_password2"]
    assert [target for target, _ in summary(page)[1]] == ["id_new_password2"]


def test_the_settings_form_summarises_a_refused_choice(member_client):
    page = page_of(member_client.post("/profile/settings/", {"language": "sv", "time_zone": "Mars/Olympus_Mons"}))

    assert autofocused(page) == ["time_zone"]
    [(target, text)] = summary(page)[1]
    assert target == "id_time_zone" and text.startswith("Time zone: ")


def test_the_only_field_of_a_form_shows_its_error_once(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    wrong = "000000" if code_for(member) != "000000" else "111111"

    page = client.post("/signin/verify/", {"code": wrong}).content.decode()

    assert page.count("That code was not accepted.") == 1
    assert "error-summary" not in page
    assert re.search(r'<input[^>]*name="code"[^>]*autofocus[^>]*aria-invalid="true"', page)
