"""The adoption picture: Alice, Contoso's administrator, sees on the Single sign-on page how many
of Contoso's active users each integration has connected, and Contoso's sign-ins of the last 30
days per day and method, in her own time zone; Oscar (operator staff) sees the same for all
companies in the operator admin. Sign-ins are seeded straight into the audit log, where the
sign-in flows record them."""

import datetime
import io
import re
import uuid
import zoneinfo

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format

from tenantlink.audit.models import SLOT, Action, AuditEvent, Outcome, SigninSlot
from tenantlink.conftest import make_user, sign_in
from tenantlink.sso.adoption import DAYS, PLOT_HEIGHT
from tenantlink.sso.models import Connection, Integration
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM

HELSINKI = zoneinfo.ZoneInfo("Europe/Helsinki")


def signed_in(user, at, method="totp", count=1, company=None):
    for _ in range(count):
        AuditEvent.objects.create(
            action=Action.SIGNIN_SUCCEEDED,
            actor=user,
            target_user=user,
            company=company or user.company,
            created_at=at,
            details={"method": method},
        )


def local_day(days_ago, zone=HELSINKI):
    return timezone.localdate(timezone.now(), zone) - datetime.timedelta(days=days_ago)


def at(days_ago, hour=12, minute=0, zone=HELSINKI):
    """A moment `days_ago` days before today, at this local time of `zone`."""
    return datetime.datetime.combine(local_day(days_ago, zone), datetime.time(hour, minute), tzinfo=zone)


def table(page):
    """The chart's table: {day as shown: (password, Microsoft, total)}, and the totals row."""
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>', page)
    days = {day: tuple(int(n) for n in numbers) for day, *numbers in rows}
    return days, days.pop("All 30 days")


def bars(page, kind):
    """The heights of the chart's bars of one kind, left to right."""
    return [float(height) for height in re.findall(rf'<rect class="bar {kind}" [^>]*height="([\d.]+)"', page)]


def height(count, top=6):
    return round(count / top * PLOT_HEIGHT, 2)


def shown(day):
    return date_format(day, "DATE_FORMAT")


@pytest.fixture
def helsinki_admin(admin):
    admin.time_zone = "Europe/Helsinki"
    admin.save(update_fields=["time_zone"])
    return admin


def test_the_chart_counts_each_days_sign_ins_by_method(client, helsinki_admin, member, outsider, contoso):
    signed_in(member, at(3), "totp", count=2)
    signed_in(member, at(3, 18), "microsoft", count=3)
    signed_in(member, at(10), "recovery_code")
    signed_in(member, at(29, 0, 30), "microsoft")  # the first of the 30 days, just after midnight
    signed_in(member, at(30, 23, 30), "totp")  # the day before: not shown
    signed_in(outsider, at(3), "totp", count=5)  # another company
    AuditEvent.objects.create(
        action=Action.SIGNIN_FAILED, company=contoso, outcome=Outcome.FAILURE, details={"step": "password"}
    )
    sign_in(client, helsinki_admin)  # today: password and a code, counted too

    response = client.get("/company/sso/")
    page = response.content.decode()

    days, totals = table(page)
    assert len(days) == DAYS
    assert days[shown(local_day(3))] == (2, 3, 5)
    assert days[shown(local_day(10))] == (1, 0, 1)
    assert days[shown(local_day(29))] == (0, 1, 1)
    assert days[shown(local_day(0))] == (1, 0, 1)
    assert sum(1 for numbers in days.values() if numbers == (0, 0, 0)) == DAYS - 4
    assert totals == (4, 4, 8)
    # Bars left to right: one per day and kind with sign-ins, as high as its count on a 0–6 scale.
    assert response.context["chart"].top == 6
    assert bars(page, "password") == [height(1), height(2), height(1)]  # 10 and 3 days ago, today
    assert bars(page, "microsoft") == [height(1), height(3)]  # 29 and 3 days ago
    assert 'role="img" aria-labelledby="signins-title signins-desc"' in page
    assert "days in the time zone Europe/Helsinki: 4 sign-ins with password and second factor, 4 with Microsoft" in page


def test_days_follow_the_viewers_time_zone(client, admin, member):
    signed_in(member, at(1, 0, 30), "microsoft")  # 00:30 in Helsinki is 22:30 the day before in UTC
    admin.time_zone = "UTC"
    admin.save(update_fields=["time_zone"])
    sign_in(client, admin)
    days, _ = table(client.get("/company/sso/").content.decode())
    utc_day = timezone.localtime(at(1, 0, 30), datetime.UTC).date()
    assert days[shown(utc_day)] == (0, 1, 1)

    admin.time_zone = "Europe/Helsinki"
    admin.save(update_fields=["time_zone"])
    days, _ = table(client.get("/company/sso/").content.decode())
    assert days[shown(local_day(1))] == (0, 1, 1)
    assert days[shown(utc_day)] == (0, 0, 0)


def connect(user, integration):
    return Connection.objects.create(user=user, integration=integration, tid=integration.tenant_id, oid=uuid.uuid4())


def test_each_integration_shows_its_connected_users_out_of_the_active_users(client, admin, member, contoso):
    contoso_tenant = Integration.objects.create(
        company=contoso, tenant_id=CONTOSO, display_name="Contoso", status=Integration.Status.ACTIVE
    )
    fabrikam_tenant = Integration.objects.create(company=contoso, tenant_id=FABRIKAM, display_name="Fabrikam")
    connect(member, contoso_tenant)
    connect(make_user("carl", contoso), contoso_tenant)
    connect(make_user("dora", contoso, is_active=False), contoso_tenant)  # deactivated: not counted
    make_user("erik", contoso)
    make_user("sam", contoso, is_staff=True)  # operator staff given the company: not one of its users
    sign_in(client, admin)

    page = client.get("/company/sso/").content.decode()

    contoso_item = page.split(f'id="integration-{contoso_tenant.pk}"')[1].split("</li>")[0]
    assert "2 of 4 active users (50%)" in contoso_item
    assert '<rect class="fill" width="50" height="10"/>' in contoso_item
    # One that has never worked has nobody connected through it to count.
    fabrikam_item = page.split(f'id="integration-{fabrikam_tenant.pk}"')[1].split("</li>")[0]
    assert "active users" not in fabrikam_item and "Connected users" not in fabrikam_item
    Integration.objects.filter(pk=fabrikam_tenant.pk).update(status=Integration.Status.DISABLED)
    fabrikam_item = client.get("/company/sso/").content.decode().split(f'id="integration-{fabrikam_tenant.pk}"')[1]
    assert "0 of 4 active users (0%)" in fabrikam_item.split("</li>")[0]
    assert '<rect class="fill" width="0" height="10"/>' in fabrikam_item.split("</li>")[0]


def test_another_company_sees_only_its_own_picture(client, outsider, member, contoso):
    Integration.objects.create(company=contoso, tenant_id=CONTOSO, display_name="Contoso tenant")
    signed_in(member, at(2), "microsoft", count=4)
    sign_in(client, outsider)

    page = client.get("/company/sso/").content.decode()

    assert "Contoso tenant" not in page
    _, totals = table(page)
    assert totals == (1, 0, 1)  # the outsider's own sign-in just now


def test_members_may_not_see_it(client, member):
    sign_in(client, member)
    assert client.get("/company/sso/").status_code == 403


@pytest.fixture
def staff_client(client):
    oscar = make_user("oscar", None, is_staff=True, is_superuser=True)
    sign_in(client, oscar)
    return client


def test_operator_staff_see_the_picture_of_all_companies(staff_client, admin, member, outsider, contoso, northwind):
    Integration.objects.create(company=contoso, tenant_id=CONTOSO, display_name="Contoso tenant")
    connect(outsider, Integration.objects.create(company=northwind, tenant_id=FABRIKAM, display_name="Northwind"))
    # Oscar has no time zone of his own: his days are the portal's default zone's. (Helsinki's
    # days would differ from them for an hour every night.)
    stockholm = zoneinfo.ZoneInfo("Europe/Stockholm")
    signed_in(member, at(5, zone=stockholm), "microsoft", count=2)
    signed_in(outsider, at(5, zone=stockholm), "totp", count=3)
    signed_in(outsider, timezone.now() - datetime.timedelta(minutes=1), "totp")  # not counted into a slot yet

    response = staff_client.get("/staff/sso/integration/adoption/")
    page = response.content.decode()

    assert response.status_code == 200
    days, totals = table(page)
    # Oscar's own sign-in has no company but is a sign-in to the portal all the same.
    assert days[shown(local_day(5, stockholm))] == (3, 2, 5)
    assert totals == (5, 2, 7)
    assert bars(page, "microsoft") == [height(2)]
    assert "0 of 2 active users (0%)" in page  # Contoso: Alice and Bob, nobody connected
    assert "1 of 1 active user (100%)" in page  # Northwind: Olga, connected
    assert (
        '<a href="/staff/sso/integration/adoption/">Adoption</a>'
        in staff_client.get("/staff/sso/integration/").content.decode()
    )


def test_the_operators_picture_counts_each_finished_quarter_hour_once(staff_client, member):
    signed_in(member, at(4), "totp", count=2)
    staff_client.get("/staff/sso/integration/adoption/")
    counted = SigninSlot.objects.count()
    assert SigninSlot.objects.filter(count__gt=0).values_list("kind", "count").get() == ("password", 2)

    # Later views add only slots that ended since; what is counted is never read from the log again.
    AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED, created_at__lt=timezone.now() - SLOT * 2).delete()
    _, totals = table(staff_client.get("/staff/sso/integration/adoption/").content.decode())
    assert SigninSlot.objects.count() - counted <= 2 * 2
    assert totals == (3, 0, 3)  # the two counted, and Oscar's sign-in, still in the log


def test_the_daily_job_counts_the_finished_quarter_hours_too(member):
    signed_in(member, at(4), "microsoft", count=3)
    signed_in(member, timezone.now(), "totp")  # its quarter hour has not ended
    call_command("purge_expired", stdout=io.StringIO())
    assert list(SigninSlot.objects.filter(count__gt=0).values_list("kind", "count")) == [("microsoft", 3)]


def test_the_daily_job_deletes_counts_older_than_the_month_it_shows(member):
    signed_in(member, at(4), "totp", count=2)
    long_ago = (timezone.now() - datetime.timedelta(days=40)).replace(minute=0, second=0, microsecond=0)
    SigninSlot.objects.create(start=long_ago, kind="password", count=9)
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert not SigninSlot.objects.filter(start=long_ago).exists()
    assert list(SigninSlot.objects.filter(count__gt=0).values_list("kind", "count")) == [("password", 2)]
    assert "deleted 1 counts older than 31 days" in out.getvalue()


def test_members_and_administrators_have_no_operator_page(client, admin):
    sign_in(client, admin)
    response = client.get("/staff/sso/integration/adoption/")
    assert response.status_code == 302 and response.url.startswith("/staff/login/")


@pytest.mark.parametrize(
    ("connected", "active", "shown"),
    [
        (1, 310, "1 of 310 active users (&lt;1%)"),
        (309, 310, "309 of 310 active users (&gt;99%)"),
        (0, 310, "0 of 310 active users (0%)"),
        (2, 3, "2 of 3 active users (67%)"),
    ],
)
def test_the_share_beside_the_bar_is_never_rounded_to_nobody_or_everybody(connected, active, shown):
    integration = Integration(display_name="Contoso")
    integration.connected, integration.active_users = connected, active
    assert shown in render_to_string("sso/_adoption_bar.html", {"integration": integration})
