"""The session engine: sessions read with their user, rotated at sign-in, gone with the user."""

from django.test import Client

from tenantlink.accounts.models import Session
from tenantlink.conftest import PASSWORD, code_for, make_user, sign_in


def test_the_half_signed_in_session_is_gone_after_signin(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    pending_key = client.cookies["sessionid"].value
    client.post("/signin/verify/", {"code": code_for(member)})

    assert not Session.objects.filter(session_key=pending_key).exists()
    stolen = Client()
    stolen.cookies["sessionid"] = pending_key
    assert stolen.get("/portal/").url.startswith("/signin/")
    assert Session.objects.get(session_key=client.cookies["sessionid"].value).user == member


def test_people_taking_turns_each_see_their_own_name(client, member, contoso):
    # Requests run one after another on the same thread here, as in a server thread: the user
    # read with one request's session must never serve the next request.
    sign_in(client, member)
    other = Client()
    sign_in(other, make_user("carl", contoso))
    for _ in range(3):
        assert "Welcome, Carl" in other.get("/portal/").content.decode()
        page = client.get("/portal/").content.decode()
        assert f"Welcome, {member.get_full_name()}" in page and "Carl" not in page


def test_a_signed_in_page_reads_session_user_and_company_in_one_query(member_client, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert member_client.get("/portal/").status_code == 200


def test_a_deactivated_user_read_with_the_session_is_signed_out(member_client, member):
    member.deactivate()
    assert member_client.get("/portal/").url.startswith("/signin/")


def test_deleting_a_user_deletes_their_sessions(member_client, member):
    assert Session.objects.filter(user=member).exists()
    member.delete()
    assert not Session.objects.exists()
