"""The session engine: sessions read with their user, rotated at sign-in, gone with the user."""

import datetime

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, UpdateError
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import Session
from tenantlink.accounts.sessions import SessionStore
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


def _fields(instance):
    return {field.attname: repr(getattr(instance, field.attname)) for field in type(instance)._meta.concrete_fields}


def test_the_session_read_gives_what_the_orm_gives(member_client, member):
    # Every column through its converters: on SQLite a forgotten one leaves a date a string or a
    # flag 0/1, which repr() tells apart from datetime and True.
    member.last_login = timezone.now()
    member.save()
    key = member_client.cookies["sessionid"].value
    read = SessionStore(key)._get_session_from_db()
    expected = Session.objects.select_related("user__company").get(session_key=key)
    assert _fields(read) == _fields(expected)
    assert _fields(read.user) == _fields(expected.user)
    assert _fields(read.user.company) == _fields(expected.user.company)
    assert read.user.company.name == "Contoso Ltd"


def test_a_user_without_a_company_is_read_with_the_session(client):
    staff = make_user("olga", None, is_staff=True)
    sign_in(client, staff)
    read = SessionStore(client.cookies["sessionid"].value)._get_session_from_db()
    assert read.user == staff and read.user.company is None
    assert client.get("/portal/").status_code == 200


def test_an_expired_or_unknown_session_is_not_read(member_client):
    key = member_client.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - datetime.timedelta(seconds=1))
    store = SessionStore(key)
    assert store._get_session_from_db() is None and store.session_key is None
    assert SessionStore("x" * 32)._get_session_from_db() is None
    assert member_client.get("/portal/").url.startswith("/signin/")


def test_a_session_is_written_as_the_orm_would_and_read_back(member):
    store = SessionStore()
    store[SESSION_KEY] = str(member.pk)
    store["note"] = "ünïcode"
    store.save()
    row = Session.objects.get(session_key=store.session_key)
    assert row.user == member and row.get_decoded()["note"] == "ünïcode"
    assert abs(row.expire_date - store.get_expiry_date()) < datetime.timedelta(seconds=5)
    store["note"] = "changed"
    store.save()
    assert SessionStore(store.session_key).load()["note"] == "changed"


def test_a_session_deleted_meanwhile_is_not_written_again(member):
    # Signed out in another tab while this request ran: Django answers SessionInterrupted.
    store = SessionStore()
    store["note"] = "x"
    store.save()
    Session.objects.all().delete()
    store["note"] = "y"
    with pytest.raises(UpdateError):
        store.save()
    assert not Session.objects.exists()


def test_signing_out_in_another_tab_while_this_one_changes_the_key_stays_signed_out(member_client, member):
    # Tab B read the signed-in session; tab A signs out; tab B then confirms the password, which
    # gives the session a new key. The sign-in must not come back under it.
    key = member_client.cookies["sessionid"].value
    store = SessionStore(key)
    assert store[SESSION_KEY] == str(member.pk)  # read by tab B's request
    member_client.post("/signout/")  # tab A
    store.cycle_key()
    store["reauthenticated_at"] = 1
    store.save()

    assert SESSION_KEY not in SessionStore(store.session_key).load()
    browser = Client()
    browser.cookies["sessionid"] = store.session_key
    assert browser.get("/portal/").url.startswith("/signin/")


def test_a_new_session_whose_key_is_taken_draws_another(member, monkeypatch):
    taken = SessionStore()
    taken["who"] = "first"
    taken.save()
    keys = iter([taken.session_key, "b" * 32])
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(keys))
    store = SessionStore()
    store["who"] = "second"
    store.save()
    assert store.session_key == "b" * 32
    assert SessionStore(taken.session_key).load()["who"] == "first"
    assert SessionStore("b" * 32).load()["who"] == "second"


def test_new_session_keys_are_random_and_of_the_characters_django_allows():
    keys = {SessionStore()._get_new_session_key() for _ in range(2000)}
    assert len(keys) == 2000
    assert all(len(key) == 32 and set(key) <= set(VALID_KEY_CHARS) for key in keys)
    assert set("".join(keys)) == set("abcdefghijklmnopqrstuvwxyz234567")  # every character drawn


def test_a_request_that_keeps_the_key_sends_no_cookie_that_could_undo_another_tabs_sign_in(member_client, member):
    """Tab A's request refreshes its session (its last-seen time) under the key it read; tab B signs
    in meanwhile under a new key. Were A's answer to send its key again, arriving after B's it would
    take the browser back to the old key: signed out."""
    session = member_client.session
    session["last_seen"] -= 120  # due for its refresh
    session.save()
    key = member_client.cookies["sessionid"].value

    response = member_client.get("/portal/")

    assert SessionStore(key).load()["last_seen"] > session["last_seen"]  # saved
    assert "sessionid" not in response.cookies  # but not sent again
