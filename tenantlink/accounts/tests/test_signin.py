import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.forms import SIGNIN_FAILED
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for, sign_in


def failed_message(response):
    return str(SIGNIN_FAILED) in response.content.decode()


def test_it_signs_in_with_password_and_totp(client, member):
    started = timezone.now()
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/signin/verify/"
    assert SESSION_KEY not in client.session  # the password alone signs nobody in

    response = client.post("/signin/verify/", {"code": code_for(member)})
    assert response.url == "/portal/"
    assert client.get("/portal/").status_code == 200
    assert AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED, target_user=member).exists()
    member.refresh_from_db()
    assert member.last_login >= started  # the user list's "last sign-in"


def test_username_is_case_insensitive(client, member):
    response = client.post("/signin/", {"username": "BOB", "password": PASSWORD})
    assert response.url == "/signin/verify/"


def test_the_portal_needs_a_complete_signin(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    response = client.get("/portal/")
    assert response.status_code == 302 and response.url.startswith("/signin/")


def test_messages_do_not_tell_which_part_was_wrong(client, member, contoso):
    from tenantlink.conftest import make_user

    inactive = make_user("carl", contoso, is_active=False)
    unknown = client.post("/signin/", {"username": "nobody", "password": PASSWORD})
    wrong_password = client.post("/signin/", {"username": "bob", "password": "wrong"})
    deactivated = client.post("/signin/", {"username": inactive.username, "password": PASSWORD})
    for response in (unknown, wrong_password, deactivated):
        assert response.status_code == 200
        assert failed_message(response)
    texts = [
        re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", r.content.decode())
        for r in (unknown, wrong_password, deactivated)
    ]
    # Apart from the username echoed back into the field, the three pages are identical.
    assert texts[0].replace("nobody", "X") == texts[1].replace("bob", "X") == texts[2].replace("carl", "X")


def test_session_key_changes_at_signin(client, member):
    client.get("/signin/")
    client.cookies["sessionid"] = "x"  # a key planted by an attacker must not survive
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    pending_key = client.session.session_key
    client.post("/signin/verify/", {"code": code_for(member)})
    assert client.session.session_key not in (pending_key, "x")


def test_half_finished_signin_expires(client, member, settings):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    session = client.session
    session["pending_signin"]["expires"] = 0
    session.save()
    response = client.post("/signin/verify/", {"code": code_for(member)}, follow=True)
    assert response.redirect_chain[-1][0] == "/signin/"
    assert "took too long" in response.content.decode()
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize("page", ["/signin/verify/", "/signin/enrol/"])
def test_back_to_the_second_step_after_signing_in_just_shows_the_portal(client, member, page):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    client.post("/signin/verify/", {"code": code_for(member)})

    response = client.get(page, follow=True)

    assert response.redirect_chain[-1][0] == "/portal/"
    assert 'class="messages"' not in response.content.decode()


def test_a_code_sent_twice_at_once_leaves_the_person_signed_in(client, member):
    # Both requests carry the half-signed-in session's cookie; the first signs in under a new key.
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    second_request = Client()
    second_request.cookies["sessionid"] = client.cookies["sessionid"].value
    code = code_for(member)
    assert client.post("/signin/verify/", {"code": code}).url == "/portal/"

    # The second finds no session under the old key: its answer must not delete the browser's
    # cookie, which is the new one by now.
    answer = second_request.post("/signin/verify/", {"code": code})
    assert "sessionid" not in answer.cookies
    assert client.get("/portal/").status_code == 200
    # Signing out still deletes it.
    assert client.post("/signout/").cookies["sessionid"].value == ""


def test_back_to_the_sign_in_page_and_forward_again_says_to_start_again(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    client.get("/signin/")  # Back: the half-finished sign-in ends here

    response = client.get("/signin/verify/", follow=True)

    assert response.redirect_chain[-1][0] == "/signin/"
    page = response.content.decode()
    assert "Your sign-in was not finished. Please start again." in page and "took too long" not in page


def test_a_sign_in_cancelled_meanwhile_is_not_said_to_have_taken_too_long(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    member.deactivate()  # by the administrator, while Bob looks for his code

    response = client.post("/signin/verify/", {"code": code_for(member)}, follow=True)

    page = response.content.decode()
    assert "Your sign-in was not finished. Please start again." in page and "took too long" not in page
    assert SESSION_KEY not in client.session


def test_next_only_leads_to_our_own_site(client, member):
    client.post(
        "/signin/?next=https://evil.example/",
        {"username": "bob", "password": PASSWORD, "next": "https://evil.example/"},
    )
    response = client.post("/signin/verify/", {"code": code_for(member)})
    assert response.url == "/portal/"

    client.post("/signout/")
    client.post("/signin/", {"username": "bob", "password": PASSWORD, "next": "/profile/settings/"})
    member.totp.refresh_from_db()
    response = client.post("/signin/verify/", {"code": code_for(member, offset=1)})
    assert response.url == "/profile/settings/"


def test_signout_ends_the_session(client, member):
    sign_in(client, member)
    response = client.post("/signout/")
    assert response.url == "/signin/"
    assert client.get("/portal/").status_code == 302
    assert AuditEvent.objects.filter(action=Action.SIGNED_OUT, target_user=member).exists()


def test_signout_is_post_only(client, member):
    sign_in(client, member)
    assert client.get("/signout/").status_code == 405
    assert client.get("/portal/").status_code == 200
