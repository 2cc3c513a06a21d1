"""The language a user last signed in with, kept for the emails the portal sends them later: a
user without a language of their own gets those in the language they use the portal in, not in
the language of whoever's action sends them."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenantlink.conftest import PASSWORD, code_for, sign_in


def browser(language):
    """A browser whose Accept-Language asks for `language`."""
    return Client(headers={"accept-language": f"{language},en;q=0.5"})


def sign_in_again(client, user):
    """A second sign-in with the next code: the first one's is accepted once only."""
    client.post("/signin/", {"username": user.username, "password": PASSWORD})
    response = client.post("/signin/verify/", {"code": code_for(user, 1)})
    assert response.url == "/portal/"


def test_a_sign_in_remembers_the_language_it_was_made_in(member):
    sign_in(browser("fi"), member)
    member.refresh_from_db()
    assert member.last_language == "fi"

    sign_in_again(browser("sv"), member)
    member.refresh_from_db()
    assert member.last_language == "sv"


def test_the_language_picked_on_the_sign_in_page_is_the_one_remembered(member):
    client = browser("sv")
    client.post("/language/", {"language": "fi", "next": "/signin/"})

    sign_in(client, member)

    member.refresh_from_db()
    assert member.last_language == "fi"


def test_a_sign_in_in_the_same_language_writes_nothing_more(member):
    sign_in(browser("fi"), member)
    with CaptureQueriesContext(connection) as queries:
        sign_in_again(browser("fi"), member)

    assert not [query for query in queries if "last_language" in query["sql"] and "UPDATE" in query["sql"]]
