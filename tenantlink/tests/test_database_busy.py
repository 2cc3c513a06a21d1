"""A database that is still busy after its timeout, or does not answer at all, is not a bug: the
visitor gets the friendly 503 page ("try again in a moment"), never the 500 page or a traceback,
wherever in the request the database failed."""

import logging

import pytest
from django.contrib.auth import get_user
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.utils.functional import SimpleLazyObject

from tenantlink.accounts.sessions import SessionStore
from tenantlink.conftest import PASSWORD, sign_in
from tenantlink.lib.errors import service_unavailable

FRIENDLY = "The portal cannot answer right now. Please wait a moment and try again."


@pytest.fixture
def browser():
    # Like a real server: an exception becomes the error page instead of failing the test.
    return Client(raise_request_exception=False)


def assert_friendly_503(response):
    page = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Temporarily unavailable" in page and FRIENDLY in page
    assert "Traceback" not in page and "database is locked" not in page


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("database is locked"),
        InterfaceError("connection already closed"),
        OperationalError("server closed the connection unexpectedly\n\tThis probably means the server terminated"),
    ],
)
def test_a_sign_in_that_finds_the_database_busy_gets_the_503_page(browser, member, monkeypatch, caplog, error):
    def busy(*args, **kwargs):
        raise error

    monkeypatch.setattr("tenantlink.accounts.throttle.begin_attempt", busy)

    with caplog.at_level(logging.WARNING):
        response = browser.post("/signin/", {"username": "bob", "password": PASSWORD})

    assert_friendly_503(response)
    # One line, a warning, with the driver's first line: not again at ERROR by django.request.
    assert [(r.name, r.levelno) for r in caplog.records] == [("tenantlink.lib.middleware", logging.WARNING)]
    message = caplog.records[0].getMessage()
    assert str(error).splitlines()[0] in message and "\n" not in message and PASSWORD not in message
    assert caplog.records[0].exc_info is None  # no traceback


def test_a_signed_in_user_whose_session_cannot_be_read_gets_the_503_page(browser, member, monkeypatch, caplog):
    sign_in(browser, member)

    def busy(self):
        raise OperationalError("database is locked")

    # The session is read in a middleware, before any view: Django's 500 handler answers there.
    monkeypatch.setattr(SessionStore, "load", busy)

    with caplog.at_level(logging.WARNING):
        response = browser.get("/portal/")

    assert_friendly_503(response)
    # During an outage every request fails like this: one line each, not two tracebacks.
    logged = [record for record in caplog.records if record.name == "django.request"]
    assert [record.getMessage() for record in logged] == ["Database unavailable at /portal/: database is locked"]
    assert logged[0].levelno == logging.WARNING and logged[0].exc_info is None


def test_a_session_that_cannot_be_saved_gets_the_503_page(browser, member, monkeypatch):
    def busy(self, must_create=False):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SessionStore, "save", busy)

    # The password step starts a new session, which the session middleware saves after the view.
    response = browser.post("/signin/", {"username": "bob", "password": PASSWORD})

    assert_friendly_503(response)


def test_the_503_page_is_drawn_without_the_database(rf, member, client, django_assert_num_queries):
    sign_in(client, member)
    request = rf.get("/portal/")
    request.session = SessionStore(client.session.session_key)
    request.user = SimpleLazyObject(lambda: get_user(request))

    with django_assert_num_queries(0):
        response = service_unavailable(request)

    assert_friendly_503(response)


def test_a_real_bug_still_gets_the_500_page(browser, member, monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError

    monkeypatch.setattr("tenantlink.accounts.throttle.begin_attempt", bug)

    response = browser.post("/signin/", {"username": "bob", "password": PASSWORD})

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
