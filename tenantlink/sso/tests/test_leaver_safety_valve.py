"""The leaver check's safety valve: more leavers at once than the check acts on alone are held
back until an administrator confirms exactly those people; and the leaver metrics
(/metrics/leavers), which say whether a runner runs and how many leavers wait for confirmation."""

import datetime
import re
import sqlite3
import time

import pytest
from django.core import mail
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import make_user
from tenantlink.sso import leavers
from tenantlink.sso.models import Connection, Integration
from tenantlink.sso.tests.leaver_helpers import connect, run

# Retry-After is obeyed without waiting in every test here (the `no_waiting` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("no_waiting")


def held_on_page(admin_client):
    """The held leavers the Single sign-on page shows, as its confirmation form names them."""
    page = admin_client.get("/company/sso/").content.decode()
    return re.search(r'name="held" value="([0-9a-f]*)"', page).group(1)


def confirm(admin_client, integration, held=None):
    """The administrator confirms the held leavers (by default those the page shows now)."""
    held = held_on_page(admin_client) if held is None else held
    return admin_client.post(f"/company/sso/{integration.pk}/leavers/confirm/", {"held": held}, follow=True)


def six_of_ten_left(checked, fake_microsoft, contoso):
    """Ten connected people of whom Microsoft says six left: more than the check acts on alone."""
    people = [make_user(f"user{number}", contoso, enrolled=False) for number in range(10)]
    return [connect(person, checked, fake_microsoft, enabled=number >= 6) for number, person in enumerate(people)]


def six_others_left(fake_microsoft, connections):
    """Microsoft now names six others: as many as before, not the same people."""
    for number, connection in enumerate(connections):
        fake_microsoft.accounts[connection.oid] = number < 4


def test_a_confirmation_of_leavers_the_administrator_did_not_see_counts_for_nothing(
    checked, fake_microsoft, contoso, admin_client
):
    connections = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    seen = held_on_page(admin_client)
    six_others_left(fake_microsoft, connections)  # and a run meanwhile holds them
    run()
    response = confirm(admin_client, checked, seen)
    assert "have changed since you looked" in response.content.decode()
    assert "6 held back" in run() and User.objects.filter(is_active=False).count() == 0


def test_the_safety_valve_holds_until_an_administrator_confirms(checked, fake_microsoft, contoso, admin_client):
    six_of_ten_left(checked, fake_microsoft, contoso)
    assert "6 held back" in run()
    assert User.objects.filter(is_active=False).count() == 0
    assert "many leavers at once" in mail.outbox[-1].subject
    run()
    assert len(mail.outbox) == 1 and AuditEvent.objects.filter(action=Action.SSO_LEAVERS_HELD).count() == 1

    page = admin_client.get("/company/sso/").content.decode()
    assert "6 connected people are disabled or deleted at Microsoft" in page
    # Who they are, on the page and in the email, before anyone confirms; the others are not named.
    for number in range(10):
        line = f"(user{number}) · user{number}@contoso.onmicrosoft.com: The Microsoft account was disabled"
        assert (line in page) == (number < 6)
        assert (f"(user{number}, user{number}@contoso.onmicrosoft.com)" in mail.outbox[-1].body) == (number < 6)
    confirm(admin_client, checked)
    assert "6 users lost access" in run()
    assert User.objects.filter(is_active=False).count() == 6
    checked.refresh_from_db()
    assert checked.leaver_held == 0 and checked.leaver_held_digest == checked.leaver_confirmed_digest == ""
    assert checked.leaver_held_list == "" and "The Microsoft account was disabled" not in held_section(admin_client)


def held_section(admin_client):
    page = admin_client.get("/company/sso/").content.decode()
    return page[page.find('class="notice warn"') :] if 'class="notice warn"' in page else ""


def test_a_held_list_this_version_did_not_write_does_not_break_the_page(checked, fake_microsoft, contoso, admin_client):
    """Written by another version (a newer one, rolled back), or naming a connection removed
    since: the page still shows, with the people it can name."""
    [first, *_others] = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    checked.refresh_from_db()
    Integration.objects.filter(pk=checked.pk).update(
        leaver_held_list=f"garbage,x:y,{checked.leaver_held_list},{first.pk}:suspended"
    )
    Connection.objects.filter(pk=first.pk + 1).delete()
    section = held_section(admin_client)
    assert "(user0) · user0@contoso.onmicrosoft.com: suspended" in section  # its own word, untranslated
    assert "(user1)" not in section and "(user2)" in section


def test_a_long_list_of_held_leavers_shows_the_first_fifty_and_how_many_more(
    checked, fake_microsoft, contoso, admin_client
):
    for number in range(60):
        connect(make_user(f"user{number:02}", contoso, enrolled=False), checked, fake_microsoft, enabled=False)
    assert "60 held back" in run()
    section = held_section(admin_client)
    assert section.count("The Microsoft account was disabled") == 50
    assert "(user49)" in section and "(user50)" not in section and "…and 10 more." in section
    assert "…and 10 more." in mail.outbox[-1].body and mail.outbox[-1].body.count(": The Microsoft account was") == 50

    # Two of them disconnected since (one named, one not): still fifty named, and eight more.
    Connection.objects.filter(user__username__in=["user00", "user59"]).delete()
    section = held_section(admin_client)
    assert section.count("The Microsoft account was disabled") == 50 and "(user50)" in section
    assert "…and 8 more." in section


def test_a_confirmation_covers_only_the_people_and_the_policy_it_was_given_for(
    checked, fake_microsoft, contoso, admin_client
):
    connections = six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    confirm(admin_client, checked)

    # No more than were confirmed, but not the people confirmed.
    six_others_left(fake_microsoft, connections)
    assert "6 held back" in run()
    assert User.objects.filter(is_active=False).count() == 0

    # Confirmed again, then the policy changes: held once more, under the new policy.
    confirm(admin_client, checked)
    admin_client.post(f"/company/sso/{checked.pk}/leavers/policy/", {"policy": "disconnect"})
    assert "6 held back" in run()
    assert Connection.objects.count() == 10


def test_five_leavers_are_never_too_many(checked, fake_microsoft, contoso):
    for number in range(5):
        connect(make_user(f"user{number}", contoso, enrolled=False), checked, fake_microsoft, enabled=False)
    assert "5 users lost access" in run()


def leaver_metrics(settings, status=200):
    """The leaver check's figures as a Prometheus scraper reads them from /metrics/leavers."""
    settings.METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
    page = Client(headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).get("/metrics/leavers")
    assert page.status_code == status
    if status != 200:
        return page
    return {
        (sample.name, sample.labels.get("state")): sample.value
        for family in text_string_to_metric_families(page.content.decode())
        for sample in family.samples
    }


def test_metrics_say_whether_a_runner_runs_and_how_many_leavers_wait_for_confirmation(
    checked, fake_microsoft, contoso, settings, admin_client
):
    asked = timezone.now() - datetime.timedelta(hours=2)
    Integration.objects.filter(pk=checked.pk).update(leaver_requested_at=asked)
    figures = leaver_metrics(settings)
    assert figures[("tenantlink_leaver_check_integrations", "on")] == 1
    assert figures[("tenantlink_leaver_check_integrations", "off")] == 0
    # Never checked: behind since the check was asked for (an alert on the age sees no runner).
    assert figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] == asked.timestamp()
    assert figures[("tenantlink_leaver_held_users", None)] == 0

    six_of_ten_left(checked, fake_microsoft, contoso)
    run()
    figures = leaver_metrics(settings)
    assert abs(figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] - time.time()) < 60
    assert figures[("tenantlink_leaver_held_users", None)] == 6

    # Confirmed: nobody waits for an administrator any more, only for the next run.
    confirm(admin_client, checked)
    assert leaver_metrics(settings)[("tenantlink_leaver_held_users", None)] == 0

    # Turned off, and on again a month later: behind since then, not since the last check before.
    Integration.objects.filter(pk=checked.pk).update(leaver_checked_at=timezone.now() - datetime.timedelta(days=30))
    admin_client.post(f"/company/sso/{checked.pk}/leavers/off/")
    admin_client.post(f"/company/sso/{checked.pk}/leavers/", {"policy": "deactivate"})
    checked.refresh_from_db()
    assert checked.leaver_check == "waiting" and checked.leaver_checked_at is None
    Integration.objects.filter(pk=checked.pk).update(leaver_check="on")
    figures = leaver_metrics(settings)
    assert abs(figures[("tenantlink_leaver_check_last_checked_timestamp_seconds", None)] - time.time()) < 60

    # A company whose licence has ended has no check to run.
    Licence.objects.filter(company=contoso).update(valid_until=timezone.now() - datetime.timedelta(days=1))
    figures = leaver_metrics(settings)
    assert figures[("tenantlink_leaver_check_integrations", "on")] == 0
    assert ("tenantlink_leaver_check_last_checked_timestamp_seconds", None) not in figures


def test_the_database_not_answering_makes_the_leaver_metrics_unavailable_not_the_others(checked, settings, monkeypatch):
    def not_answering(*args, **kwargs):
        raise OperationalError("the database is not answering")

    monkeypatch.setattr(leavers, "licensed_integrations", not_answering)
    assert "try again" in leaver_metrics(settings, status=503).content.decode().lower()
    page = Client(headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).get("/metrics")
    assert page.status_code == 200 and b"tenantlink_signins_total" in page.content


@pytest.mark.django_db(transaction=True)
def test_reading_the_leaver_metrics_waits_for_no_writer(checked, settings):
    """On SQLite a transaction takes the write lock: a scrape while a runner writes must not wait."""
    from django.db import connection

    if connection.vendor != "sqlite":
        assert leaver_metrics(settings)[("tenantlink_leaver_check_integrations", "on")] == 1
        return
    writer = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert leaver_metrics(settings)[("tenantlink_leaver_check_integrations", "on")] == 1
        assert time.monotonic() - started < 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()
