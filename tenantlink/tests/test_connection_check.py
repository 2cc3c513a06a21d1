"""PostgreSQL connections kept across requests are asked `SELECT 1` before a request uses them
only when their previous request was not a moment ago (tenantlink/lib/postgresql)."""

import pytest
from django.db.utils import ConnectionHandler

from tenantlink.lib.postgresql import base


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def wrapper(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(base.time, "monotonic", clock)
    # Not connected: every question to the server below is answered by the test.
    handler = ConnectionHandler(
        {"default": {"ENGINE": "tenantlink.lib.postgresql", "NAME": "x", "CONN_HEALTH_CHECKS": True}}
    )
    connection = handler["default"]
    connection.connection = object()  # an open connection kept from an earlier request
    connection.health_check_enabled = True  # as connect() sets it from CONN_HEALTH_CHECKS
    connection.answers, connection.asked, connection.closed = [], [], []
    monkeypatch.setattr(
        connection, "is_usable", lambda: connection.asked.append(clock.now) or connection.answers.pop(0)
    )
    monkeypatch.setattr(connection, "close", lambda: connection.closed.append(clock.now))
    return connection, clock


def request_at(connection, clock, moment):
    """A request starts (Django's request_started resets the check) and makes its first query."""
    clock.now = moment
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    connection.close_if_health_check_failed()  # its later queries are never checked again


def test_a_connection_in_steady_use_is_not_asked_on_every_request(wrapper):
    connection, clock = wrapper
    connection.answers = [True, True]
    for moment in (1000.0, 1000.3, 1000.6, 1000.9, 1001.5, 1005.0):
        request_at(connection, clock, moment)
    # The first request after it was idle, and the one after a pause of more than a second.
    assert connection.asked == [1000.0, 1005.0]
    assert connection.closed == []


def test_a_connection_broken_while_idle_is_closed_before_the_request_uses_it(wrapper):
    connection, clock = wrapper
    connection.answers = [True, False]
    request_at(connection, clock, 1000.0)
    request_at(connection, clock, 1003.0)  # the database restarted in between
    assert connection.asked == [1000.0, 1003.0]
    assert connection.closed == [1003.0]  # Django then opens a new one for the request


def test_a_new_connection_counts_as_just_used(wrapper, monkeypatch):
    connection, clock = wrapper
    monkeypatch.setattr(base.base.DatabaseWrapper, "connect", lambda self: None)
    connection.answers = [True]
    connection.connect()
    request_at(connection, clock, 1000.5)
    request_at(connection, clock, 1002.0)
    assert connection.asked == [1002.0]
