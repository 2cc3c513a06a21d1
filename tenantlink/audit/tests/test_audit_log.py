"""A company administrator reads their company's audit log: filters it by user, action and
dates, opens one event, and exports what they filtered as CSV. Nobody sees another company's
events, and members see none."""

import csv
import datetime
import io
import re

import pytest
from django.test import Client

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.conftest import make_user, sign_in

UTC = datetime.UTC
HEADER = ["time_utc", "actor", "action", "target", "outcome", "client_address", "user_agent", "details"]


def text(response):
    return response.content.decode()


def shown(response):
    """The events a log page lists, by id, in the order shown."""
    return [int(pk) for pk in re.findall(r'href="/company/audit/(\d+)/"', text(response))]


def export(client, **filters):
    response = client.get("/company/audit/export.csv", filters)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def at(year, month, day, hour=12, minute=0, second=0):
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def event(company, action, when, actor=None, target=None, label=None, **fields):
    return AuditEvent.objects.create(
        company=company,
        action=action,
        created_at=when,
        actor=actor,
        actor_label=actor.username if actor else "command line",
        target_user=target,
        target_label=label if label is not None else (target.username if target else ""),
        **fields,
    )


@pytest.fixture
def log(admin, member, outsider, contoso, northwind):
    """Contoso's spring of 2024, and one Northwind event that must never show up at Contoso."""
    return {
        "bob_signed_in": event(contoso, Action.SIGNIN_SUCCEEDED, at(2024, 3, 9), actor=member, target=member),
        "alice_deactivated_bob": event(contoso, Action.USER_DEACTIVATED, at(2024, 3, 10), actor=admin, target=member),
        "alice_changed_password": event(contoso, Action.PASSWORD_CHANGED, at(2024, 3, 11), actor=admin, target=admin),
        "alice_created_carol": event(contoso, Action.USER_CREATED, at(2024, 3, 12), actor=admin, label="carol"),
        "northwind": event(
            northwind, Action.USER_CREATED, at(2024, 3, 10), actor=outsider, label="northwind-only-label"
        ),
    }


def test_the_log_shows_the_companys_own_events_only(admin_client, log):
    response = admin_client.get("/company/audit/")

    assert response.status_code == 200
    ids = shown(response)
    contoso_events = [
        log[name].pk
        for name in ("alice_created_carol", "alice_changed_password", "alice_deactivated_bob", "bob_signed_in")
    ]
    assert ids[-4:] == contoso_events  # newest first; alice's sign-in of today comes before them
    assert log["northwind"].pk not in ids
    assert "northwind-only-label" not in text(response) and "olga" not in text(response)

    exported = export(admin_client)
    assert "northwind-only-label" not in str(exported)


def test_an_event_opens_for_its_own_company_only(admin_client, outsider, log):
    deactivation = log["alice_deactivated_bob"]
    response = admin_client.get(f"/company/audit/{deactivation.pk}/")
    assert response.status_code == 200
    assert "Deactivated user" in text(response) and "user.deactivated" not in text(response)

    assert admin_client.get(f"/company/audit/{log['northwind'].pk}/").status_code == 404

    olgas_browser = Client()
    sign_in(olgas_browser, outsider)
    response = olgas_browser.get(f"/company/audit/{deactivation.pk}/")
    assert response.status_code == 404
    assert "bob" not in text(response)
    assert shown(olgas_browser.get("/company/audit/"))[-1] == log["northwind"].pk
    assert deactivation.pk not in shown(olgas_browser.get("/company/audit/"))


def test_the_log_is_filtered_by_user(admin_client, admin, member, log):
    bobs = admin_client.get("/company/audit/", {"user": member.pk})
    # bob as the one who acted, and as the one acted upon; nothing that only concerns alice.
    assert shown(bobs) == [log["alice_deactivated_bob"].pk, log["bob_signed_in"].pk]

    alices = admin_client.get("/company/audit/", {"user": admin.pk, "until": "2024-12-31"})
    # alice acting on bob and on carol counts as alice's too.
    assert shown(alices) == [
        log["alice_created_carol"].pk,
        log["alice_changed_password"].pk,
        log["alice_deactivated_bob"].pk,
    ]


def test_the_log_is_filtered_by_action(admin_client, log):
    response = admin_client.get("/company/audit/", {"action": Action.USER_CREATED})

    assert shown(response) == [log["alice_created_carol"].pk]  # Northwind's user.created stays away


def test_the_date_filter_includes_both_days_in_the_users_time_zone(admin_client, admin, contoso):
    admin.time_zone = "Europe/Stockholm"  # UTC+1 in March
    admin.save(update_fields=["time_zone"])
    late_on_the_9th = event(contoso, Action.SIGNED_OUT, at(2024, 3, 9, 22, 59, 59))
    first_moment_of_the_10th = event(contoso, Action.SIGNED_OUT, at(2024, 3, 9, 23, 0, 0))
    last_moment_of_the_11th = event(contoso, Action.SIGNED_OUT, at(2024, 3, 11, 22, 59, 59))
    first_moment_of_the_12th = event(contoso, Action.SIGNED_OUT, at(2024, 3, 11, 23, 0, 0))

    both = admin_client.get("/company/audit/", {"since": "2024-03-10", "until": "2024-03-11"})
    assert shown(both) == [last_moment_of_the_11th.pk, first_moment_of_the_10th.pk]

    since_only = admin_client.get("/company/audit/", {"since": "2024-03-12", "action": Action.SIGNED_OUT})
    assert shown(since_only) == [first_moment_of_the_12th.pk]

    until_only = admin_client.get("/company/audit/", {"until": "2024-03-09"})
    assert shown(until_only) == [late_on_the_9th.pk]

    one_day = admin_client.get("/company/audit/", {"since": "2024-03-10", "until": "2024-03-10"})
    assert shown(one_day) == [first_moment_of_the_10th.pk]


def test_an_end_date_before_the_start_date_is_explained(admin_client, log):
    response = admin_client.get("/company/audit/", {"since": "2024-03-12", "until": "2024-03-10"})

    assert response.status_code == 200
    assert "The end date must be on or after the start date." in text(response)


@pytest.mark.parametrize(
    "query",
    [
        "since=notadate&user=999999&page=abc",
        "user=abc&action=nonsense",
        "user=99999999999999999999999&page=99999999999999999999999",
        "since=0001-01-01",
        "until=9999-12-31",
        "since=2024-02-30",
        "page=-1",
    ],
)
def test_nonsense_in_the_address_gives_a_normal_page(admin_client, log, query):
    response = admin_client.get(f"/company/audit/?{query}")
    assert response.status_code == 200
    assert "Audit log" in text(response)
    assert log["northwind"].pk not in shown(response)

    response = admin_client.get(f"/company/audit/export.csv?{query}")
    if response.status_code == 302:  # a filter it cannot read: back to the log, which explains it
        assert response.url.startswith("/company/audit/?")
    else:
        assert response.status_code == 200
        assert list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))[0] == HEADER


def test_a_filter_that_cannot_be_read_shows_nothing_rather_than_everything(admin_client, log):
    response = admin_client.get("/company/audit/", {"since": "notadate"})
    assert shown(response) == []
    assert "Enter a valid date." in text(response)
    response = admin_client.get("/company/audit/export.csv", {"since": "notadate"})
    assert response.status_code == 302 and response.url == "/company/audit/?since=notadate"


def test_a_date_that_is_not_one_is_explained(admin_client, log):
    response = admin_client.get("/company/audit/", {"since": "notadate", "until": "9999-12-31"})

    assert text(response).count("Enter a valid date.") == 1
    assert "Enter a date up to 9998-12-31." in text(response)

    response = admin_client.get("/company/audit/", {"since": "0001-01-01"})
    assert "Enter a date from 1900-01-01 on." in text(response)


def test_another_companys_user_is_not_a_filter_choice(admin_client, outsider, log):
    response = admin_client.get("/company/audit/", {"user": outsider.pk})

    assert response.status_code == 200
    assert "Select a valid choice." in text(response)
    assert f'<option value="{outsider.pk}"' not in text(response)
    assert log["northwind"].pk not in shown(response)


def test_the_log_is_paginated_and_pages_keep_the_filters(admin_client, admin, contoso):
    for minute in range(55):
        event(contoso, Action.USER_CREATED, at(2024, 3, 10, 9, minute), actor=admin, label=f"user{minute:02}")

    first = admin_client.get("/company/audit/", {"action": Action.USER_CREATED})
    assert len(shown(first)) == 50
    assert "Page 1 of 2" in text(first)
    assert 'href="?action=user.created&amp;page=2"' in text(first)

    second = admin_client.get("/company/audit/", {"action": Action.USER_CREATED, "page": 2})
    assert len(shown(second)) == 5
    assert "Page 2 of 2" in text(second)
    assert "user00" in text(second)  # the oldest comes last


def test_the_export_honours_the_filters_and_gives_utc_times(admin_client, admin, member, log):
    admin.time_zone = "America/New_York"
    admin.save(update_fields=["time_zone"])

    rows = export(admin_client, user=member.pk, since="2024-03-10", until="2024-03-10")

    assert rows == [
        HEADER,
        ["2024-03-10 12:00:00", "alice", "user.deactivated", "bob", "success", "", "", "{}"],
    ]
    everything = export(admin_client)
    assert len(everything) == 1 + AuditEvent.objects.filter(company=admin.company).count()


def test_the_export_opens_in_a_spreadsheet_with_its_letters(admin_client, contoso):
    event(contoso, Action.SSO_CONSENT_FAILED, at(2024, 3, 10), label="Åsa Öberg 🏭", details={"reason": "ääkköset"})

    response = admin_client.get("/company/audit/export.csv")
    body = b"".join(response.streaming_content)

    assert body.startswith("\ufeff".encode())  # Excel reads the file as UTF-8 by this mark only
    assert "Åsa Öberg 🏭" in body.decode("utf-8-sig") and '{""reason"": ""ääkköset""}' in body.decode("utf-8-sig")


def test_the_page_names_the_time_zone_of_its_times(admin_client, admin):
    admin.time_zone = "America/New_York"
    admin.save(update_fields=["time_zone"])
    page = text(admin_client.get("/company/audit/"))
    assert "Times are shown in your time zone (America/New_York); the export has them in UTC." in page


def test_the_user_filter_names_people_by_name_and_username(admin_client, member, contoso):
    User.objects.filter(pk=make_user("bob2", contoso).pk).update(display_name="Bob")  # two Bobs
    User.objects.filter(pk=make_user("aaron", contoso).pk).update(display_name="aaron lowercase")
    page = text(admin_client.get("/company/audit/"))
    choices = re.findall(
        r'<option value="\d+">([^<]*)</option>', re.search(r'<select name="user".*?</select>', page, re.S).group(0)
    )
    assert choices == ["aaron lowercase (aaron)", "Alice (alice)", "Bob (bob)", "Bob (bob2)"]  # whatever the case


def test_export_sends_the_filters_as_the_form_shows_them(admin_client, log):
    """Export is a button of the filter form: a filter chosen and not applied yet still counts."""
    page = text(admin_client.get("/company/audit/"))
    form = re.search(r'<form method="get".*?</form>', page, re.S).group(0)
    assert re.search(r'<button[^>]*type="submit"[^>]*formaction="/company/audit/export.csv"[^>]*>Export CSV', form)


def test_the_export_cannot_smuggle_formulas_into_a_spreadsheet(admin_client, admin, contoso):
    event(
        contoso,
        Action.SIGNIN_FAILED,
        at(2024, 3, 10),
        actor=admin,
        label='=HYPERLINK("https://evil.example","Click")',
        outcome=Outcome.FAILURE,
        user_agent="@SUM(1+1)",
        client_ip="203.0.113.5",
    )
    event(contoso, Action.SIGNIN_FAILED, at(2024, 3, 11), label="+31 20 123", user_agent="-2+3")
    # Full-width signs, which spreadsheets in East Asian languages read as the formula's own.
    event(contoso, Action.SIGNIN_FAILED, at(2024, 3, 12), label="＝1+1", user_agent="＠SUM(1)")

    rows = export(admin_client, action=Action.SIGNIN_FAILED)

    assert rows[1][3] == "'＝1+1" and rows[1][6] == "'＠SUM(1)"
    rows = rows[1:]
    assert rows[1][3] == "'+31 20 123" and rows[1][6] == "'-2+3"
    assert rows[2][3] == '\'=HYPERLINK("https://evil.example","Click")'
    assert rows[2][6] == "'@SUM(1+1)"
    assert rows[2][5] == "203.0.113.5"


def test_the_export_cannot_smuggle_a_formula_past_a_semicolon(admin_client, contoso):
    """Swedish and Finnish Excel split a CSV file's lines at semicolons, inside quotes or not."""
    agent = 'Mozilla/5.0;=HYPERLINK("https://evil.example","Click");x,+1\t@SUM(1)'
    event(contoso, Action.SIGNIN_FAILED, at(2024, 3, 10), label="bob", user_agent=agent)

    [row] = [row for row in export(admin_client, action=Action.SIGNIN_FAILED)[1:] if row[6].startswith("Mozilla")]

    assert row[6] == 'Mozilla/5.0;\'=HYPERLINK("https://evil.example","Click");x,\'+1\t\'@SUM(1)'
    for separator in (";", ",", "\t"):
        assert not any(part[:1] in "=+-@" for part in row[6].split(separator)[1:])


def test_a_member_may_not_read_the_log(member_client, log):
    for page in ("/company/audit/", "/company/audit/export.csv", f"/company/audit/{log['bob_signed_in'].pk}/"):
        response = member_client.get(page)
        assert response.status_code == 403, page
        assert "You do not have permission to open this page." in text(response)


def test_the_log_needs_a_signed_in_administrator(client, log):
    response = client.get("/company/audit/export.csv")
    assert response.status_code == 302 and response.url.startswith("/signin/")


def test_the_export_writes_details_as_json(admin_client, admin, contoso):
    event(
        contoso,
        Action.SIGNIN_LOCKED,
        at(2024, 3, 10),
        actor=admin,
        label="account:bob",
        details={"failures": 5, "until": "x"},
    )
    rows = export(admin_client, action=Action.SIGNIN_LOCKED)
    assert rows[1][7] == '{"failures": 5, "until": "x"}'
