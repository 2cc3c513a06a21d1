"""Health endpoints for process supervisors and load balancers: liveness never asks the
database, readiness (also at /health/) does."""

import pytest
from django.db import OperationalError


class UnreachableDatabase:
    def cursor(self):
        raise OperationalError("connection refused")


@pytest.fixture
def database_down(monkeypatch):
    monkeypatch.setattr("tenantlink.views.connection", UnreachableDatabase())


def test_liveness_answers_ok(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("path", ["/health/ready/", "/health/"])
def test_readiness_answers_ok_while_the_database_does(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/ready/", "/health/"])
def test_readiness_answers_503_with_the_reason_when_the_database_does_not(client, database_down, path):
    response = client.get(path)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


def test_liveness_stays_ok_while_the_database_is_down(client, database_down):
    assert client.get("/health/live/").status_code == 200


def test_while_the_database_holds_a_check_without_answering_the_next_probes_get_503_soon(client, monkeypatch):
    import threading
    import time

    from django.test import Client

    released = threading.Event()

    class FrozenDatabase:
        def cursor(self):
            released.wait(10)  # a server that froze: no answer, no error
            return UnreachableDatabase().cursor()

    monkeypatch.setattr("tenantlink.views.connection", FrozenDatabase())
    monkeypatch.setattr("tenantlink.views.PROBE_WAIT", 0.2)
    first = threading.Thread(target=Client().get, args=("/health/ready/",))
    first.start()
    time.sleep(0.1)
    started = time.monotonic()
    response = client.get("/health/ready/")
    assert response.status_code == 503 and time.monotonic() - started < 2
    assert client.get("/health/live/").status_code == 200
    released.set()
    first.join()
    monkeypatch.undo()
    assert client.get("/health/ready/").status_code == 200  # the database answers again
