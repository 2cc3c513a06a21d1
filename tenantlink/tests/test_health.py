"""Health endpoints for process supervisors and load balancers: liveness never asks the
database, readiness (also at /health/) does."""

import contextlib
import threading
import time
import types

import pytest
from django.db import OperationalError
from django.test import Client


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


def test_an_outage_is_logged_once_when_readiness_changes_not_at_every_probe(client, monkeypatch, caplog):
    monkeypatch.setattr("tenantlink.views._not_ready_reason", None)
    with monkeypatch.context() as down:
        down.setattr("tenantlink.views.connection", UnreachableDatabase())
        for _ in range(3):
            assert client.get("/health/ready/").status_code == 503
    assert client.get("/health/ready/").status_code == 200
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert said == [
        ("WARNING", "Not ready: the database does not answer: connection refused"),
        ("INFO", "Ready again"),
    ]


def test_a_database_without_this_releases_migrations_is_not_ready(client, monkeypatch, caplog):
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    # As when a new release is started before `manage.py migrate`: the newest migration is missing.
    monkeypatch.setattr("tenantlink.views._schema_current", False)
    monkeypatch.setattr("tenantlink.views._not_ready_reason", None)
    newest = MigrationRecorder(connection).migration_qs.filter(app="sso").order_by("-name").first()
    newest.delete()

    response = client.get("/health/ready/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "migrations_pending"}
    assert f"sso.{newest.name}" in caplog.text and "run manage.py migrate" in caplog.text

    MigrationRecorder(connection).record_applied("sso", newest.name)
    assert client.get("/health/ready/").status_code == 200


def test_liveness_stays_ok_while_the_database_is_down(client, database_down):
    assert client.get("/health/live/").status_code == 200


def test_while_the_database_holds_a_check_without_answering_the_next_probes_get_503_soon(client, monkeypatch):
    asked, released = threading.Event(), threading.Event()

    class FrozenDatabase:
        def cursor(self):
            asked.set()
            released.wait(10)  # a server that froze: no answer, no error
            return UnreachableDatabase().cursor()

    monkeypatch.setattr("tenantlink.views.connection", FrozenDatabase())
    monkeypatch.setattr("tenantlink.views.PROBE_WAIT", 0.2)
    first = threading.Thread(target=Client().get, args=("/health/ready/",))
    first.start()
    assert asked.wait(5)
    started = time.monotonic()
    response = client.get("/health/ready/")
    assert response.status_code == 503 and time.monotonic() - started < 2
    assert client.get("/health/live/").status_code == 200
    released.set()
    first.join()
    monkeypatch.undo()
    assert client.get("/health/ready/").status_code == 200  # the database answers again


def test_probes_at_once_against_a_slow_database_all_get_its_answer(monkeypatch):

    checks = []

    class SlowDatabase:
        def cursor(self):
            checks.append(1)
            time.sleep(0.3)  # answers, slowly
            return contextlib.nullcontext(types.SimpleNamespace(execute=lambda sql: None))

    monkeypatch.setattr("tenantlink.views.connection", SlowDatabase())
    monkeypatch.setattr("tenantlink.views.PROBE_WAIT", 1)
    answers = []
    probes = [threading.Thread(target=lambda: answers.append(Client().get("/health/ready/"))) for _ in range(6)]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join()
    # Six probes within one PROBE_WAIT, though each check takes 0.3 s: the waiting ones share one.
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len(checks) <= 2


def test_while_a_scrape_of_the_leaver_figures_waits_for_the_database_the_next_get_503_and_strangers_401(
    client, settings, monkeypatch
):
    settings.METRICS_TOKEN = "t" * 32
    held = threading.Lock()
    held.acquire()  # a scrape before this one waits for the database
    monkeypatch.setattr("tenantlink.views._leaver_figures.lock", held)
    monkeypatch.setattr("tenantlink.views.PROBE_WAIT", 0.1)
    assert client.get("/metrics/leavers").status_code == 401
    response = client.get("/metrics/leavers", HTTP_AUTHORIZATION="Bearer " + "t" * 32)
    assert response.status_code == 503 and response["Retry-After"] == "30"
