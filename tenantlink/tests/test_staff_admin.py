"""Oscar works for the operator and looks after customers in the Django admin at /staff/. Every
change he makes there lands in the audit log — who, what, which company, from where — and the
admin's own sign-out and password pages hand over to the portal's, which are audited."""

import datetime
import io
import json
import uuid
from html.parser import HTMLParser

import pyotp
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company, Licence
from tenantlink.conftest import PASSWORD, make_user, sign_in, signed_in_browser
from tenantlink.sso.models import DeclinedOffer

NEW_PASSWORD = "purple elephant umbrella 42"


class _FormReader(HTMLParser):
    """What a browser would post from the form with a given id: its inputs, checked boxes,
    selected options and text areas, with the values the page shows."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id, self.inside, self.select, self.textarea = form_id, False, None, None
        self.data = {}

    def add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "name" not in attrs and tag not in ("option",):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.add(attrs["name"], attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self.select = attrs["name"]
            self.data.setdefault(self.select, [])
        elif tag == "option" and self.select and "selected" in attrs:
            self.add(self.select, attrs.get("value", ""))
        elif tag == "textarea":
            self.textarea = attrs["name"]
            self.add(self.textarea, "")

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def form_of(client, url, form_id):
    """The change form at `url`, filled in as the page shows it, ready to edit and post."""
    response = client.get(url)
    assert response.status_code == 200
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    assert reader.data, f"no form {form_id!r} at {url}"
    return reader.data


def post_form(client, url, data, **changes):
    response = client.post(url, {**data, **changes})
    assert response.status_code == 302, response.context and response.context.get("errors")
    return response


def staff_events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def split(name, moment):
    """A time as the admin's separate date and time boxes take it."""
    return {f"{name}_0": moment.strftime("%Y-%m-%d"), f"{name}_1": moment.strftime("%H:%M:%S")}


def no_licence_rows():
    return {"licences-TOTAL_FORMS": "0", "licences-INITIAL_FORMS": "0"}


@pytest.fixture
def oscar():
    return make_user("oscar", None, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, oscar):
    sign_in(client, oscar)
    return client


def test_oscar_makes_bob_an_administrator_and_contoso_sees_who_did_it(staff_client, oscar, member, contoso):
    url = f"/staff/accounts/user/{member.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "user_form"), role=User.Role.ADMINISTRATOR)

    member.refresh_from_db()
    assert member.role == User.Role.ADMINISTRATOR
    [event] = staff_events(Action.STAFF_CHANGED)
    assert (event.actor, event.actor_label) == (oscar, "oscar")
    assert (event.target_user, event.target_label) == (member, "bob")
    assert event.company == contoso  # so it shows in Contoso's own audit log
    assert event.client_ip == "127.0.0.1" and event.outcome == "success"
    assert event.details["via"] == "staff admin" and event.details["model"] == "accounts.user"
    assert event.details["fields"] == ["role"]
    assert event.details["changes"] == {"role": {"from": "member", "to": "administrator"}}
    assert member.password not in json.dumps(event.details)  # not even the hash
    # Contoso's administrator reads it in words, not as stored.
    alice = make_user("alice", contoso, User.Role.ADMINISTRATOR)
    page = signed_in_browser(alice).get(f"/company/audit/{event.pk}/").content.decode()
    assert "<dt>Changes</dt><dd>Role: Member → Administrator</dd>" in page
    assert "<dt>Changed fields</dt><dd>Role</dd>" in page and "{" not in page.split("<dt>Changes</dt>")[1][:80]
    assert "<dt>Kind of record</dt><dd>User</dd>" in page and "accounts.user" not in page


def test_granting_superuser_and_deactivating_are_spelled_out(staff_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    data = form_of(staff_client, url, "user_form")
    data.pop("is_active")  # an unticked box is not posted
    data["is_superuser"] = "on"

    post_form(staff_client, url, data)

    # Bob is operator staff now: his events are no longer Contoso's, but Contoso sees him leave.
    events = staff_events(Action.STAFF_CHANGED)
    assert [event.company for event in events] == [None, member.company]
    shown = dict(events[1].detail_items())
    assert shown["Changes"] == "Active: Yes → No; Superuser status: No → Yes"
    for event in events:
        assert sorted(event.details["fields"]) == ["is_active", "is_superuser"]
        assert event.details["changes"] == {
            "is_active": {"from": True, "to": False},
            "is_superuser": {"from": False, "to": True},
        }


def test_moving_bob_to_another_company_shows_in_both_logs(staff_client, member, contoso, northwind):
    url = f"/staff/accounts/user/{member.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "user_form"), company=str(northwind.pk))

    events = staff_events(Action.STAFF_CHANGED)
    assert {event.company for event in events} == {contoso, northwind}
    assert all(e.details["changes"]["company"] == {"from": "Contoso Ltd", "to": "Northwind Traders"} for e in events)


def test_deactivating_bob_here_ends_his_sessions_and_reactivating_brings_none_back(staff_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    bobs_browser = signed_in_browser(member)
    data = form_of(staff_client, url, "user_form")
    post_form(staff_client, url, {key: value for key, value in data.items() if key != "is_active"})
    post_form(staff_client, url, form_of(staff_client, url, "user_form"), is_active="on")

    member.refresh_from_db()
    assert member.is_active
    assert bobs_browser.get("/portal/").url.startswith("/signin/")


def test_resetting_bobs_second_factor_here_or_on_the_command_line_signs_him_out(staff_client, member):
    bobs_browser = signed_in_browser(member)
    staff_client.post("/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [member.pk]})
    assert bobs_browser.get("/portal/").url.startswith("/signin/")
    member.refresh_from_db()
    assert not member.has_second_factor
    # Sent again (a second tab): nothing more to reset, nothing more recorded.
    staff_client.post("/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [member.pk]})
    assert AuditEvent.objects.filter(action=Action.SECOND_FACTOR_RESET, target_user=member).count() == 1

    member.seed = pyotp.random_base32()  # he enrolled again
    TOTPDevice.enrol(member, member.seed, step=0)
    bobs_browser = signed_in_browser(member)
    call_command("reset_second_factor", "bob", stdout=io.StringIO())
    assert bobs_browser.get("/portal/").url.startswith("/signin/")


def test_moving_bob_to_another_company_removes_his_microsoft_connection(staff_client, member, contoso, northwind):
    from tenantlink.sso.models import Connection, Integration

    integration = Integration.objects.create(company=contoso, tenant_id=uuid.uuid4(), display_name="Contoso")
    Connection.objects.create(user=member, integration=integration, tid=integration.tenant_id, oid=uuid.uuid4())
    url = f"/staff/accounts/user/{member.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "user_form"), company=str(northwind.pk))

    assert not Connection.objects.filter(user=member).exists()
    [event] = staff_events(Action.SSO_DISCONNECTED)
    assert (event.target_user, event.details["tenant"]) == (member, str(integration.tenant_id))
    assert event.company == contoso  # the company whose tenant it was


@pytest.mark.parametrize("right", ["is_staff", "is_superuser"])
def test_making_bob_operator_staff_removes_his_microsoft_connection(staff_client, member, contoso, right):
    from tenantlink.sso.models import Connection, Integration

    integration = Integration.objects.create(company=contoso, tenant_id=uuid.uuid4(), display_name="Contoso")
    Connection.objects.create(user=member, integration=integration, tid=integration.tenant_id, oid=uuid.uuid4())
    url = f"/staff/accounts/user/{member.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "user_form"), **{right: "on"})

    assert not Connection.objects.filter(user=member).exists()
    [event] = staff_events(Action.SSO_DISCONNECTED)
    assert (event.target_user, event.details["tenant"]) == (member, str(integration.tenant_id))
    assert event.company == contoso  # Contoso sees its tenant's connection go


def test_a_rejected_change_writes_nothing(staff_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    data = form_of(staff_client, url, "user_form")

    response = staff_client.post(url, {**data, "username": "not a valid name!"})

    assert response.status_code == 200  # the form again, with the error
    assert not AuditEvent.objects.filter(action=Action.STAFF_CHANGED).exists()


def test_oscar_sets_bobs_password_and_the_log_never_holds_it(staff_client, oscar, member, contoso):
    url = f"/staff/accounts/user/{member.pk}/password/"

    post_form(staff_client, url, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    [event] = staff_events(Action.PASSWORD_CHANGED)
    assert (event.actor, event.target_user, event.company) == (oscar, member, contoso)
    assert event.details == {"via": "staff admin"}
    stored = json.dumps([event.details, event.target_label, event.actor_label, event.user_agent])
    assert NEW_PASSWORD not in stored and PASSWORD not in stored


def test_a_mismatched_password_is_not_set_and_not_logged(staff_client, member):
    response = staff_client.post(
        f"/staff/accounts/user/{member.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "!"},
    )

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED).exists()


def test_turning_off_bobs_password_sign_in_is_logged(staff_client, member):
    post_form(
        staff_client,
        f"/staff/accounts/user/{member.pk}/password/",
        {"usable_password": "false", "unset-password": "Disable password-based authentication"},
    )

    member.refresh_from_db()
    assert not member.has_usable_password()
    [event] = staff_events(Action.PASSWORD_CHANGED)
    assert event.details == {"via": "staff admin", "password_sign_in": "disabled"}


def test_oscar_deletes_bob_and_the_log_keeps_his_name(staff_client, oscar, member, contoso):
    bob_id = member.pk

    post_form(staff_client, f"/staff/accounts/user/{bob_id}/delete/", {"post": "yes"})

    assert not User.objects.filter(pk=bob_id).exists()
    [event] = staff_events(Action.STAFF_DELETED)
    assert (event.actor, event.target_label, event.company) == (oscar, "bob", contoso)
    assert event.target_user is None  # bob is gone; the label stays
    assert event.details == {"via": "staff admin", "model": "accounts.user", "object_id": bob_id}


def test_deleting_several_users_at_once_logs_each(staff_client, member, contoso):
    carol = make_user("carol", contoso)

    post_form(
        staff_client,
        "/staff/accounts/user/",
        {"action": "delete_selected", "_selected_action": [member.pk, carol.pk], "post": "yes"},
    )

    assert not User.objects.filter(username__in=["bob", "carol"]).exists()
    assert sorted(event.target_label for event in staff_events(Action.STAFF_DELETED)) == ["bob", "carol"]


@pytest.mark.parametrize("how", ["delete page", "delete selected"])
def test_oscar_deleting_an_integration_puts_the_removed_connection_in_bobs_history(
    staff_client, oscar, member, contoso, how
):
    from tenantlink.sso.models import Connection, Integration

    integration = Integration.objects.create(company=contoso, tenant_id=uuid.uuid4(), display_name="Contoso")
    oid = uuid.uuid4()
    Connection.objects.create(user=member, integration=integration, tid=integration.tenant_id, oid=oid)

    if how == "delete page":
        post_form(staff_client, f"/staff/sso/integration/{integration.pk}/delete/", {"post": "yes"})
    else:
        post_form(
            staff_client,
            "/staff/sso/integration/",
            {"action": "delete_selected", "_selected_action": [integration.pk], "post": "yes"},
        )

    assert not Connection.objects.exists()
    [removal] = staff_events(Action.SSO_DISCONNECTED)
    assert (removal.actor, removal.target_user, removal.company) == (oscar, member, contoso)
    assert removal.details == {"tenant": str(integration.tenant_id), "oid": str(oid), "reason": "integration_deleted"}
    assert [e.details["model"] for e in staff_events(Action.STAFF_DELETED)] == ["sso.integration"]


def test_an_integration_deleted_meanwhile_is_not_deleted_and_recorded_again(rf, oscar, member, contoso):
    """Two operators deleting it at the same moment: the second finds it gone (it is locked)."""
    from django.contrib import admin

    from tenantlink.sso.models import Connection, Integration

    integration = Integration.objects.create(company=contoso, tenant_id=uuid.uuid4(), display_name="Contoso")
    Connection.objects.create(user=member, integration=integration, tid=integration.tenant_id, oid=uuid.uuid4())
    read_by_the_other = Integration.objects.get(pk=integration.pk)
    request = rf.post("/staff/")
    request.user = oscar
    model_admin = admin.site._registry[Integration]
    model_admin.delete_model(request, integration)

    model_admin.delete_model(request, read_by_the_other)

    assert len(staff_events(Action.SSO_DISCONNECTED)) == 1 and len(staff_events(Action.STAFF_DELETED)) == 1


def test_a_sign_in_attempt_with_a_name_nobody_has_reads_in_the_staffs_language(staff_client, oscar):
    Client().post("/signin/", {"username": "nobody-here", "password": "guess"})

    assert "(unknown username)" in staff_client.get("/staff/audit/auditevent/").content.decode()
    User.objects.filter(pk=oscar.pk).update(language="sv")
    page = staff_client.get("/staff/audit/auditevent/").content.decode()
    assert "(okänt användarnamn)" in page and "(unknown username)" not in page
    assert "nobody-here" not in page  # the name typed is not kept
    event = AuditEvent.objects.get(action=Action.SIGNIN_FAILED)
    page = staff_client.get(f"/staff/audit/auditevent/{event.pk}/change/").content.decode()
    assert "(okänt användarnamn)" in page and "(unknown username)" not in page


class _Unnamed(HTMLParser):
    """The inputs of a page that a screen reader could not name: no <label for> and no aria-label."""

    def __init__(self):
        super().__init__()
        self.inputs, self.labelled = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.labelled.add(attrs["for"])
        elif tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit", "button"):
            self.inputs.append(attrs)

    def unnamed(self):
        return [
            i.get("name")
            for i in self.inputs
            if i.get("id") not in self.labelled and not i.get("aria-label") and not i.get("aria-labelledby")
        ]


def unnamed_inputs(response):
    assert response.status_code == 200
    reader = _Unnamed()
    reader.feed(response.content.decode())
    assert reader.inputs
    return reader.unnamed()


def test_every_input_of_the_licence_and_user_pages_has_a_name_a_screen_reader_can_say(staff_client, member, contoso):
    contoso.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30))

    assert unnamed_inputs(staff_client.get("/staff/companies/licence/add/")) == []
    assert unnamed_inputs(staff_client.get(f"/staff/companies/company/{contoso.pk}/change/")) == []
    assert unnamed_inputs(staff_client.get(f"/staff/accounts/user/{member.pk}/change/")) == []
    html = staff_client.get("/staff/companies/licence/add/").content.decode()
    assert 'aria-label="Valid until: time"' in html


def test_oscar_grants_northwind_a_licence_on_the_company_page(staff_client, oscar, northwind):
    url = f"/staff/companies/company/{northwind.pk}/change/"
    data = form_of(staff_client, url, "company_form")
    data.update({"licences-TOTAL_FORMS": "1", "licences-0-product": "sso", "licences-0-company": str(northwind.pk)})
    data.update(split("licences-0-valid_from", timezone.now() - datetime.timedelta(days=1)))
    data.update(split("licences-0-valid_until", timezone.now() + datetime.timedelta(days=365)))

    post_form(staff_client, url, data)

    assert northwind.has_sso()
    licence = northwind.licences.get()
    [event] = staff_events(Action.LICENCE_GRANTED)
    assert (event.actor, event.company, event.target_label) == (oscar, northwind, str(licence))
    assert event.details["model"] == "companies.licence" and event.details["object_id"] == licence.pk
    assert event.details["changes"]["product"] == {"to": "sso"}
    assert event.details["changes"]["valid_until"] == {"to": licence.valid_until.isoformat()}
    assert not AuditEvent.objects.filter(action=Action.STAFF_CHANGED).exists()  # the company itself is unchanged


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "field", "error"),
    [
        # 23:59:59 in Stockholm is 22:59:59 UTC, and 9999-12-31 in Helsinki or Tokyo no longer a date.
        ("2026-01-01", "9999-12-31", "valid_until", "Enter a date from the year 2000 to 9998."),
        ("0001-01-01", "0001-01-01", "valid_from", "Enter a date from the year 2000 to 9998."),
        ("2027-01-01", "2026-01-01", "valid_until", "The licence must end after it starts."),
    ],
)
def test_a_licence_that_could_not_be_shown_or_never_runs_is_refused(
    staff_client, northwind, valid_from, valid_until, field, error
):
    data = {"company": str(northwind.pk), "product": "sso"}
    data.update({"valid_from_0": valid_from, "valid_from_1": "00:00:00"})
    data.update({"valid_until_0": valid_until, "valid_until_1": "23:59:59"})

    response = staff_client.post("/staff/companies/licence/add/", data)

    assert response.status_code == 200
    assert error in response.context["adminform"].form.errors[field]
    assert not northwind.licences.exists() and not staff_events(Action.LICENCE_GRANTED)


def test_the_last_licence_date_allowed_shows_in_every_time_zone(client, contoso):
    """Single sign-on page of an administrator as far east (Kiritimati, UTC+14) and west (Pago Pago,
    UTC-11) as zones go, with the licence ending on the last day an operator may give it."""
    call_command("licence", "grant", "Contoso Ltd", "--until", "9998-12-31", stdout=io.StringIO())
    for zone, shown in (("Pacific/Kiritimati", "1 January 9999"), ("Pacific/Pago_Pago", "31 December 9998")):
        administrator = make_user(f"ada{zone[-4:].lower()}", contoso, User.Role.ADMINISTRATOR, time_zone=zone)
        browser = signed_in_browser(administrator)

        response = browser.get("/company/sso/")

        assert response.status_code == 200 and shown in response.content.decode(), zone


@pytest.mark.parametrize("selected", ["abc", "1.5", "", "99999999999999999999"])
@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/staff/accounts/user/", "reset_second_factor"),
        ("/staff/accounts/user/", "delete_selected"),
        ("/staff/companies/company/", "stop_requiring_microsoft"),
    ],
)
def test_a_selection_that_names_nothing_is_refused_and_nothing_done(staff_client, member, url, action, selected):
    response = staff_client.post(url, {"action": action, "_selected_action": [selected, str(member.pk)]}, follow=True)

    assert response.status_code == 200
    assert "The selection could not be read. Nothing was done." in response.content.decode()
    assert User.objects.filter(pk=member.pk).exists() and TOTPDevice.objects.filter(user=member).exists()
    assert not AuditEvent.objects.exclude(action=Action.SIGNIN_SUCCEEDED).exists()


def test_oscar_revokes_contosos_licence_on_the_licence_page(staff_client, oscar, contoso):
    licence = contoso.licences.get()
    url = f"/staff/companies/licence/{licence.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "licence_form"), revoked="on")

    assert not contoso.has_sso()
    [event] = staff_events(Action.STAFF_CHANGED)
    assert (event.actor, event.company, event.target_label) == (oscar, contoso, str(licence))
    assert event.details["changes"] == {"revoked": {"from": False, "to": True}}


def test_a_company_added_in_the_admin_is_logged_like_one_added_on_the_command_line(staff_client, oscar):
    post_form(staff_client, "/staff/companies/company/add/", {"name": "Fabrikam Inc", **no_licence_rows()})

    fabrikam = Company.objects.get(name="Fabrikam Inc")
    [event] = staff_events(Action.COMPANY_CREATED)
    assert (event.actor, event.company, event.target_label) == (oscar, fabrikam, "Fabrikam Inc")


def test_a_group_added_in_the_admin_is_logged(staff_client, oscar):
    post_form(staff_client, "/staff/auth/group/add/", {"name": "Support desk"})

    [event] = staff_events(Action.STAFF_ADDED)
    assert (event.actor, event.target_label, event.company) == (oscar, "Support desk", None)


def test_the_admins_password_page_sends_oscar_to_the_portals(staff_client):
    for url in ("/staff/password_change/", "/staff/password_change/done/"):
        response = staff_client.get(url)
        assert response.status_code == 302 and response.url == "/profile/password/"


def test_oscar_changes_his_own_password_on_the_portals_page_not_the_admins(staff_client, oscar):
    url = f"/staff/accounts/user/{oscar.pk}/password/"
    assert staff_client.get(url).url == "/profile/password/"

    response = staff_client.post(url, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302 and response.url == "/profile/password/"
    oscar.refresh_from_db()
    assert oscar.check_password(PASSWORD)  # unchanged: the portal asks for the current password


def test_the_admins_sign_out_is_the_portals(staff_client, oscar):
    assert staff_client.get("/staff/logout/").status_code == 405  # a link must not sign anyone out
    assert staff_client.get("/staff/").status_code == 200

    response = staff_client.post("/staff/logout/")

    assert response.status_code == 302 and response.url == "/signin/"
    assert staff_client.get("/staff/").url.startswith("/staff/login/")
    [event] = staff_events(Action.SIGNED_OUT)
    assert event.actor == oscar


def test_licences_untouched_on_the_company_page_write_nothing(staff_client, contoso):
    url = f"/staff/companies/company/{contoso.pk}/change/"

    post_form(staff_client, url, form_of(staff_client, url, "company_form"))

    assert Licence.objects.filter(company=contoso).count() == 1
    staff_actions = [Action.STAFF_ADDED, Action.STAFF_CHANGED, Action.STAFF_DELETED, Action.LICENCE_GRANTED]
    assert not AuditEvent.objects.filter(action__in=staff_actions).exists()


def test_a_customer_administrator_at_the_operator_admin_is_refused_not_sent_round(admin_client):
    for url in ("/staff/", "/staff/sso/integration/adoption/"):
        response = admin_client.get(url, follow=True)
        assert response.status_code == 403
        assert len(response.redirect_chain) == 1  # to /staff/login/, which refuses


def test_the_operator_admin_sends_a_visitor_to_the_portal_sign_in_and_back(client):
    response = client.get("/staff/")
    response = client.get(response.url)
    assert response.url == "/signin/?next=/staff/"


def test_a_time_zone_the_portal_does_not_know_is_refused_not_saved(staff_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    data = form_of(staff_client, url, "user_form")

    response = staff_client.post(url, {**data, "time_zone": "Mars/Olympus"})

    assert response.status_code == 200  # the form again, not "changed successfully"
    assert "“Mars/Olympus” is not a time zone." in response.content.decode()
    member.refresh_from_db()
    assert member.time_zone == ""
    assert not AuditEvent.objects.filter(action=Action.STAFF_CHANGED).exists()


@pytest.mark.parametrize("zone", ["Europe/Helsinki", "Europe/Kiev", "UTC", ""])  # Kiev: an old name, still known
def test_known_time_zones_and_none_are_saved(staff_client, member, zone):
    url = f"/staff/accounts/user/{member.pk}/change/"
    post_form(staff_client, url, form_of(staff_client, url, "user_form"), time_zone=zone)

    member.refresh_from_db()
    assert member.time_zone == zone


def test_a_customer_user_cannot_be_left_without_a_company(staff_client, member, contoso):
    url = f"/staff/accounts/user/{member.pk}/change/"
    data = form_of(staff_client, url, "user_form")

    response = staff_client.post(url, {**data, "company": ""})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["company"] == [
        "Choose a company. Only operator staff belong to none."
    ]
    member.refresh_from_db()
    assert member.company == contoso


def test_a_user_added_here_needs_a_company_unless_made_staff_afterwards(staff_client, contoso):
    new_user = {"username": "sam", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = staff_client.post("/staff/accounts/user/add/", {**new_user, "company": "", "role": "member"})
    assert response.status_code == 200
    assert "Choose a company. Only operator staff belong to none." in response.content.decode()
    assert not User.objects.filter(username="sam").exists()

    post_form(staff_client, "/staff/accounts/user/add/", {**new_user, "company": str(contoso.pk), "role": "member"})
    sam = User.objects.get(username="sam")
    url = f"/staff/accounts/user/{sam.pk}/change/"
    post_form(staff_client, url, form_of(staff_client, url, "user_form"), company="", is_staff="on")
    sam.refresh_from_db()
    assert sam.is_staff and sam.company is None


def test_operator_staff_made_on_the_command_line_have_no_company(oscar):
    call_command(
        "createsuperuser", "--noinput", "--username", "sam", "--email", "sam@example.com", stdout=io.StringIO()
    )

    sam = User.objects.get(username="sam")
    assert sam.is_staff and sam.company is None
    sam.full_clean(exclude=["password"])  # valid as it is
    oscar.full_clean(exclude=["password"])


def test_operator_staff_are_added_here_without_a_company(staff_client):
    new_staff = {"username": "sam", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}

    post_form(
        staff_client, "/staff/accounts/user/add/", {**new_staff, "company": "", "role": "member", "is_staff": "on"}
    )

    sam = User.objects.get(username="sam")
    assert sam.is_staff and sam.company is None


def test_the_demos_operator_signs_in_and_opens_the_operator_admin(client):
    from tenantlink.demo import OSCAR_SEED, seed

    seed()
    client.post("/signin/", {"username": "oscar", "password": "oscar-demo-password"})
    client.post("/signin/verify/", {"code": pyotp.TOTP(OSCAR_SEED).now()})

    page = client.get("/staff/")
    assert page.status_code == 200 and "Oscar Operator" in page.content.decode()
    oscar = User.objects.get(username="oscar")
    assert oscar.is_staff and oscar.company is None


def test_running_the_demo_again_lets_ben_be_asked_again_and_nils_sign_in(client, settings):
    """Ben's "Don't ask again" and nils's wrong passwords of the last run are gone."""
    from tenantlink.demo import seed

    seed()
    ben = User.objects.get(username="ben")
    DeclinedOffer.objects.create(user=ben)
    for _wrong in range(settings.THROTTLE_ACCOUNT_FAILURES + 1):
        client.post("/signin/", {"username": "nils", "password": "a wrong guess"})
    assert client.post("/signin/", {"username": "nils", "password": "nils-demo-password"}).status_code != 302

    seed()
    assert not DeclinedOffer.objects.filter(user=ben).exists()
    assert client.post("/signin/", {"username": "nils", "password": "nils-demo-password"}).url == "/signin/verify/"


def test_the_operator_admin_says_whose_it_is_and_which_accounts_are_staff(staff_client, member):
    page = staff_client.get("/staff/accounts/user/").content.decode()
    assert "<title>Select user to change | Tenantlink operator admin</title>" in page
    assert "Django administration" not in page
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in page.split("<tr")[1:]}
    assert "Operator staff" in rows["oscar"]
    assert "Member" in rows[member.username] and "Operator staff" not in rows[member.username]


def test_operator_staff_given_a_company_are_not_in_its_audit_log(admin_client, contoso):
    sue = make_user("sue", contoso, is_staff=True)
    sign_in(Client(), sue)  # her address and browser are the operator's business

    export = admin_client.get("/company/audit/export.csv").getvalue().decode()
    assert "sue" not in export and "alice" in export
    event = AuditEvent.objects.get(action=Action.SIGNIN_SUCCEEDED, target_user=sue)
    assert event.company is None
    assert admin_client.get(f"/company/audit/{event.pk}/").status_code == 404


def staff_with(*codenames):
    """Sam, operator staff (not a superuser) with only these permissions, signed in."""
    from django.contrib.auth.models import Permission

    sam = make_user("sam", None, is_staff=True)
    sam.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return signed_in_browser(sam)


@pytest.fixture
def sam_client(oscar):
    """Sam looks after customers' accounts: he may view, change and delete users."""
    return staff_with("view_user", "change_user", "delete_user")


def test_staff_with_change_group_cannot_give_their_group_more_permissions(oscar):
    from django.contrib.auth.models import Group, Permission

    helpers = Group.objects.create(name="helpers")
    helpers.permissions.set(Permission.objects.filter(codename__in=["view_group", "change_group"]))
    sam_client = staff_with()
    User.objects.get(username="sam").groups.add(helpers)

    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    response = sam_client.post(
        f"/staff/auth/group/{helpers.pk}/change/", {"name": "helpers", "permissions": everything}
    )

    assert response.status_code == 403
    assert helpers.permissions.count() == 2
    assert sam_client.post("/staff/auth/group/add/", {"name": "all", "permissions": everything}).status_code == 403
    assert not Group.objects.filter(name="all").exists()


def test_staff_who_may_only_view_users_cannot_reset_a_second_factor(oscar, member):
    viewer = staff_with("view_user")
    viewer.post("/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [member.pk]})
    member.refresh_from_db()
    assert member.has_second_factor


def test_staff_with_change_user_cannot_make_themselves_superuser(sam_client):
    sam = User.objects.get(username="sam")
    url = f"/staff/accounts/user/{sam.pk}/change/"
    form = form_of(sam_client, url, "user_form")
    assert "is_superuser" not in form and "user_permissions" not in form  # shown, not offered

    sam_client.post(url, {**form, "is_superuser": "on", "groups": [], "user_permissions": ["1", "2"]})

    sam.refresh_from_db()
    assert not sam.is_superuser and sam.user_permissions.count() == 3


def test_staff_with_change_user_cannot_touch_another_operators_account(sam_client, oscar):
    for url in (
        f"/staff/accounts/user/{oscar.pk}/change/",
        f"/staff/accounts/user/{oscar.pk}/password/",
        f"/staff/accounts/user/{oscar.pk}/delete/",
    ):
        response = sam_client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "post": "yes"})
        assert response.status_code == 403, url
    response = sam_client.post(
        "/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [oscar.pk]}, follow=True
    )
    page = response.content.decode().replace("&#x27;", "'")
    assert "1 operator's account was left as it is: only a superuser can reset" in page
    assert "Reset the second factor of" not in page  # no success for nothing done
    oscar.refresh_from_db()
    assert oscar.check_password(PASSWORD) and oscar.has_second_factor
    assert not AuditEvent.objects.filter(target_user=oscar).exclude(action=Action.SIGNIN_SUCCEEDED).exists()


def test_staff_with_change_user_still_look_after_customers(sam_client, member, contoso):
    url = f"/staff/accounts/user/{member.pk}/change/"
    post_form(sam_client, url, form_of(sam_client, url, "user_form"), role=User.Role.ADMINISTRATOR)
    member.refresh_from_db()
    assert member.role == User.Role.ADMINISTRATOR
    sam_client.post("/staff/accounts/user/", {"action": "reset_second_factor", "_selected_action": [member.pk]})
    member.refresh_from_db()
    assert not member.has_second_factor


def test_a_superuser_still_grants_operator_rights(staff_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    post_form(staff_client, url, form_of(staff_client, url, "user_form"), is_staff="on", company="")
    member.refresh_from_db()
    assert member.is_staff


def test_staff_who_give_themselves_a_company_and_the_administrator_role_are_not_its_administrator(
    sam_client, contoso, member
):
    """Their rights are the operator admin's: else 'change user' would open any company's users,
    audit log and single sign-on settings."""
    sam = User.objects.get(username="sam")
    url = f"/staff/accounts/user/{sam.pk}/change/"
    form = form_of(sam_client, url, "user_form")
    response = sam_client.post(url, {**form, "company": str(contoso.pk), "role": "administrator"})
    assert "Operator staff are no company&#x27;s administrator" in response.content.decode()
    # Had it been stored (before this rule, or in the database by hand), it would give nothing.
    User.objects.filter(pk=sam.pk).update(company=contoso, role=User.Role.ADMINISTRATOR)
    for path in ("/company/users/", "/company/audit/", "/company/sso/", f"/company/users/{member.pk}/"):
        assert sam_client.get(path).status_code == 403, path
