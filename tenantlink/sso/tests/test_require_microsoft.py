"""Require Microsoft sign-in, per company: Alice (administrator of Contoso Ltd) turns it on after
the dry run; Bob (member) is refused a password sign-in once connected, and must connect when he
is not; Alice stays exempt; the requirement pauses by itself without a licence or an active
integration; operator staff turn it off. Microsoft is answered by FakeMicrosoft."""

import io
import uuid

import pyotp
import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company, Licence
from tenantlink.conftest import PASSWORD, get_under_prefix, make_user, sign_in, signed_in_browser
from tenantlink.lib import crypto
from tenantlink.sso import requirement
from tenantlink.sso.models import Connection, DeclinedOffer, Integration
from tenantlink.sso.tests.microsoft_signin_helpers import (
    connected,
    microsoft_answers,
    microsoft_signin,
    page_text,
    password_signin_of,
    to_microsoft,
)

REQUIRED_OFFER = "/sso/offer/?next=%2Fportal%2F"


@pytest.fixture
def required(contoso, contoso_integration):
    """Contoso Ltd requires Microsoft sign-in (as Alice turned it on)."""
    contoso.require_microsoft()
    return contoso


@pytest.fixture
def half_signed_in(client, member, required):
    """Bob, not connected, after his password and code: only the connect flow is open to him."""
    response = password_signin_of(client, member)
    assert response.redirect_chain[-1][0] == REQUIRED_OFFER
    return client


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- A connected member ----------------------------------------------------------------------------


def test_a_connected_member_is_not_signed_in_with_password_and_code(client, member, required, contoso_integration):
    connected(member, contoso_integration)

    response = password_signin_of(client, member)

    assert response.redirect_chain[-1][0] == "/sso/required/"
    text = page_text(response)
    assert "Contoso Ltd requires its members to sign in with their Microsoft work account" in text
    assert 'id="microsoft-signin"' in text
    assert "_auth_user_id" not in client.session
    assert client.get("/portal/").url.startswith("/signin/")
    [refused] = events(Action.SIGNIN_FAILED)
    assert (refused.target_user, refused.outcome) == (member, "denied")
    assert refused.details == {"method": "password", "reason": "microsoft_required"}
    # Nobody was signed in, so the audit log says only that: no "Signed in" before the refusal.
    assert not events(Action.SIGNIN_SUCCEEDED)


def test_the_button_on_that_page_signs_the_member_in_with_microsoft(
    client, member, required, contoso_integration, fake_microsoft
):
    connected(member, contoso_integration)
    password_signin_of(client, member)

    assert microsoft_signin(client, fake_microsoft).url == "/portal/"
    assert client.get("/portal/").status_code == 200
    assert client.session["signin_method"] == "microsoft"


def test_the_explanation_page_tells_a_stranger_nothing(client, required):
    assert client.get("/sso/required/").url == "/signin/"


def test_wrong_password_and_unknown_account_answers_stay_identical(client, member, required, contoso_integration):
    connected(member, contoso_integration)
    wrong = client.post("/signin/", {"username": member.username, "password": "not the password at all"})
    unknown = Client().post("/signin/", {"username": "nobody-here", "password": "not the password at all"})
    assert wrong.status_code == unknown.status_code == 200

    def visible(response):
        return page_text(response).split("<form", 1)[1].split('name="csrfmiddlewaretoken"')[0]

    assert visible(wrong) == visible(unknown)
    assert "Microsoft" not in " ".join(str(m) for m in wrong.context["messages"])
    # A right password alone says nothing either: the code is asked for as always.
    response = client.post("/signin/", {"username": member.username, "password": PASSWORD})
    assert response.url == "/signin/verify/"


# --- A member without a connection -------------------------------------------------------------------


def test_a_member_without_a_connection_must_connect_and_has_no_not_now(half_signed_in):
    text = page_text(half_signed_in.get(REQUIRED_OFFER))
    assert "Contoso Ltd requires its members to sign in with their Microsoft work account" in text
    assert "Not now" not in text and "t ask again" not in text
    assert 'action="/sso/connect/"' in text and "Sign out for now" in text
    assert 'href="/profile/"' not in text  # the portal's navigation is out of reach


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/portal/"),
        ("get", "/"),
        ("get", "/profile/"),
        ("get", "/profile/settings/"),
        ("get", "/company/users/"),
        ("get", "/company/sso/"),
        ("get", "/signin/"),
        ("get", "/staff/"),
        ("post", "/profile/microsoft/disconnect/"),
        ("post", "/sso/signin/"),
        ("post", "/profile/password/"),
    ],
)
def test_every_other_address_leads_back_to_the_offer(half_signed_in, method, path):
    response = getattr(half_signed_in, method)(path)
    assert response.status_code == 302 and response.url.startswith("/sso/offer/?next="), (path, response)


def test_under_a_script_prefix_the_probes_still_answer(half_signed_in):
    probe, page = get_under_prefix(half_signed_in, "/health/live/", "/portal/")
    assert probe.status_code == 200
    assert page.status_code == 302 and page.url.startswith("/app/sso/offer/?next=")


def test_dont_ask_again_is_not_an_escape(half_signed_in, member):
    response = half_signed_in.post("/sso/offer/decline/", {"next": "/portal/"})
    assert response.url.startswith("/sso/offer/")
    assert not DeclinedOffer.objects.filter(user=member).exists()
    assert half_signed_in.get("/portal/").url == REQUIRED_OFFER


def test_a_second_tab_is_the_same_half_signed_in_session(half_signed_in):
    # A second tab shares the cookie: it sees the offer, whatever it opens, and so does the back button.
    assert half_signed_in.get("/profile/").url == "/sso/offer/?next=%2Fprofile%2F"
    assert half_signed_in.get("/portal/").url == REQUIRED_OFFER


def test_the_portal_is_reached_through_a_completed_connection(half_signed_in, member, fake_microsoft):
    path, params = to_microsoft(half_signed_in.post("/sso/connect/", {"next": "/portal/"}))
    response = microsoft_answers(half_signed_in, fake_microsoft, params)

    assert response.url == "/portal/"
    assert Connection.objects.filter(user=member).exists()
    assert "now connected to" in page_text(half_signed_in.get("/portal/"))
    assert half_signed_in.get("/profile/").status_code == 200


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "access_denied", "error_subcode": "cancel"},  # cancelled at Microsoft
        {"code": "the-code", "state": "expired-or-forged"},  # too late, or not ours
    ],
)
def test_a_failed_trip_to_microsoft_leaves_the_member_at_the_offer(half_signed_in, member, fake_microsoft, answer):
    path, params = to_microsoft(half_signed_in.post("/sso/connect/", {"next": "/portal/"}))
    response = half_signed_in.get("/sso/callback/", {"state": params["state"], **answer}, follow=True)

    assert response.redirect_chain[-1][0].startswith("/sso/offer/")
    assert "Not now" not in page_text(response)
    assert not Connection.objects.exists()
    # ...and may try again.
    path, params = to_microsoft(half_signed_in.post("/sso/connect/", {"next": "/portal/"}))
    assert microsoft_answers(half_signed_in, fake_microsoft, params).url == "/portal/"
    assert half_signed_in.get("/portal/").status_code == 200


def test_removing_the_connection_just_made_leads_back_to_the_offer(half_signed_in, member, fake_microsoft):
    """Not a way out of the requirement: the password session would go on without a connection."""
    path, params = to_microsoft(half_signed_in.post("/sso/connect/", {"next": "/portal/"}))
    microsoft_answers(half_signed_in, fake_microsoft, params)

    asked = page_text(half_signed_in.get("/profile/microsoft/disconnect/"))
    assert "Contoso Ltd requires Microsoft sign-in: you connect a Microsoft account again before you go on." in asked
    response = half_signed_in.post("/profile/microsoft/disconnect/", follow=True)

    assert not Connection.objects.filter(user=member).exists()
    assert response.redirect_chain[-1][0].startswith("/sso/offer/")
    assert "Contoso Ltd requires it: connect a Microsoft account to go on." in page_text(response)
    assert half_signed_in.get("/portal/").url == REQUIRED_OFFER
    assert half_signed_in.get("/profile/").url == "/sso/offer/?next=%2Fprofile%2F"


@pytest.fixture
def connected_in_a_password_session(half_signed_in, member, fake_microsoft):
    """Bob, held at the offer after his password and code, connected: his session goes on, a
    password session."""
    path, params = to_microsoft(half_signed_in.post("/sso/connect/", {"next": "/portal/"}))
    assert microsoft_answers(half_signed_in, fake_microsoft, params).url == "/portal/"
    assert half_signed_in.get("/portal/").status_code == 200
    return half_signed_in


def test_a_connection_an_administrator_removes_holds_the_members_session_at_the_offer(
    connected_in_a_password_session, member, admin
):
    response = signed_in_browser(admin).post(f"/company/users/{member.pk}/microsoft/disconnect/", follow=True)

    assert connected_in_a_password_session.get("/portal/").url == REQUIRED_OFFER
    assert "Not now" not in page_text(connected_in_a_password_session.get(REQUIRED_OFFER))
    # Not back to the password, as it would be without the requirement: the page and Bob's email say so.
    told = "the company requires Microsoft sign-in, so they connect a Microsoft account again before they go on"
    assert told in page_text(response) and "they sign in with password and second factor" not in page_text(response)
    notice = mail.outbox[-1]
    assert notice.to == [member.email] and "was disconnected" in notice.body
    assert "Your company requires Microsoft sign-in: you connect a Microsoft account again" in notice.body
    assert "You sign in with your username, password and authenticator app again." not in notice.body


def test_a_connection_gone_with_its_integration_holds_the_members_session_at_the_offer(
    connected_in_a_password_session, member, contoso, contoso_integration, admin
):
    Integration.objects.create(  # another one stays active: the requirement goes on
        company=contoso, tenant_id=uuid.uuid4(), display_name="Other", status=Integration.Status.ACTIVE
    )
    signed_in_browser(admin).post(f"/company/sso/{contoso_integration.pk}/delete/")

    assert not Connection.objects.filter(user=member).exists()
    assert connected_in_a_password_session.get("/profile/").url == "/sso/offer/?next=%2Fprofile%2F"


def test_turning_it_on_holds_the_open_session_of_a_member_without_a_connection(
    member_client, contoso, contoso_integration
):
    assert member_client.get("/portal/").status_code == 200
    contoso.require_microsoft()
    assert member_client.get("/portal/").url == REQUIRED_OFFER


def test_an_administrator_made_a_member_is_held_at_the_offer_at_once(client, required, contoso, admin):
    carol = make_user("carol", contoso, User.Role.ADMINISTRATOR)
    sign_in(client, carol)  # exempt: signed in with password and code
    assert client.get("/company/users/").status_code == 200

    signed_in_browser(admin).post(
        f"/company/users/{carol.pk}/edit/",
        {"display_name": "Carol", "email": "carol@example.com", "role": User.Role.MEMBER},
    )

    assert client.get("/portal/").url == REQUIRED_OFFER


def test_signing_out_is_always_possible(half_signed_in):
    assert half_signed_in.post("/signout/").url == "/signin/"
    assert "_auth_user_id" not in half_signed_in.session


def test_a_pause_lets_a_half_signed_in_member_in(half_signed_in, contoso):
    contoso.revoke_licences(Licence.Product.SSO)
    assert half_signed_in.get("/portal/").status_code == 200
    assert len(events(Action.SSO_REQUIRED_PAUSED)) == 1


def test_turning_it_off_lets_a_half_signed_in_member_in(half_signed_in, contoso):
    requirement.turn_off(contoso, actor_label="command line")
    # The ordinary offer, once, which may be put off.
    assert "Not now" in page_text(half_signed_in.get("/portal/", follow=True))
    assert half_signed_in.get("/portal/").status_code == 200


def test_a_new_initial_password_and_new_recovery_codes_come_first(client, contoso, required):
    cleo = make_user("cleo", contoso, enrolled=False, must_change_password=True)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    client.get("/signin/enrol/")
    seed = crypto.decrypt(client.session["enrol_seed"]["seed"])
    code = pyotp.TOTP(seed).generate_otp(TOTPDevice.current_step())
    response = client.post("/signin/enrol/", {"code": code}, follow=True)
    # The recovery codes, shown once, are not swallowed by the offer; nor the password change.
    assert response.redirect_chain[0][0].startswith("/profile/recovery-codes/new/")
    assert client.get("/profile/password/").status_code == 200
    assert client.get("/portal/").url.startswith("/profile/password/")
    User.objects.filter(pk=cleo.pk).update(must_change_password=False)
    assert client.get("/portal/").url == REQUIRED_OFFER


def test_a_connected_member_setting_up_an_authenticator_is_refused_without_recovery_codes(
    client, contoso, required, contoso_integration
):
    cleo = make_user("cleo", contoso, enrolled=False)
    connected(cleo, contoso_integration)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    client.get("/signin/enrol/")
    seed = crypto.decrypt(client.session["enrol_seed"]["seed"])
    code = pyotp.TOTP(seed).generate_otp(TOTPDevice.current_step())
    response = client.post("/signin/enrol/", {"code": code}, follow=True)

    assert response.redirect_chain[-1][0] == "/sso/required/"
    assert "_auth_user_id" not in client.session
    assert TOTPDevice.objects.filter(user=cleo).exists()  # the authenticator is hers now
    assert not events(Action.RECOVERY_CODES_GENERATED) and not events(Action.SIGNIN_SUCCEEDED)
    assert [event.details["reason"] for event in events(Action.SIGNIN_FAILED)] == ["microsoft_required"]


def test_a_member_connected_through_a_disabled_integration_keeps_the_password(
    client, member, contoso, required, contoso_integration
):
    """Microsoft cannot sign him in and he cannot connect again: nobody is locked out."""
    other = Integration.objects.create(
        company=contoso, tenant_id="0b7c2f3e-5a61-4d28-9e0a-6f4b1c8d2e75", display_name="Labs", status="disabled"
    )
    connected(member, other)
    assert password_signin_of(client, member).redirect_chain[-1][0] == "/portal/"


# --- Exemptions ----------------------------------------------------------------------------------------


def test_administrators_are_exempt(client, admin, required, contoso_integration):
    response = password_signin_of(client, admin)
    assert response.redirect_chain[-1][0] == REQUIRED_OFFER  # the ordinary offer...
    assert "Not now" in page_text(response)  # ...which they may put off
    assert client.get("/portal/").status_code == 200
    connected(admin, contoso_integration)
    client.post("/signout/")
    assert password_signin_of(Client(), admin, step=1).redirect_chain[-1][0] == "/portal/"


def test_operator_staff_are_exempt(client, contoso, required):
    staff = make_user("oscar", contoso, is_staff=True)
    assert password_signin_of(client, staff).redirect_chain[-1][0] == "/portal/"


# --- The pause -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["licence", "integration"])
def test_it_pauses_by_itself_and_the_pause_is_audited_once(
    client, member, contoso, required, contoso_integration, cause
):
    connected(member, contoso_integration)
    if cause == "licence":
        contoso.revoke_licences(Licence.Product.SSO)
    else:
        contoso_integration.disable()

    assert password_signin_of(client, member).redirect_chain[-1][0] == "/portal/"
    assert not requirement.evaluate(Company.objects.get(pk=contoso.pk), member).applies  # noticed again
    [paused] = events(Action.SSO_REQUIRED_PAUSED)
    assert (paused.company, paused.details, paused.actor) == (contoso, {"reason": cause}, None)

    if cause == "licence":
        contoso.grant_licence(Licence.Product.SSO, contoso.licences.first().valid_until)
    else:
        contoso_integration.enable()
    assert password_signin_of(Client(), member, step=1).redirect_chain[-1][0] == "/sso/required/"
    assert len(events(Action.SSO_REQUIRED_RESUMED)) == 1
    assert len(events(Action.SSO_REQUIRED_PAUSED)) == 1


def test_two_processes_noticing_a_pause_at_once_record_it_once(contoso, required):
    contoso.revoke_licences(Licence.Product.SSO)
    first, second = Company.objects.get(pk=contoso.pk), Company.objects.get(pk=contoso.pk)
    assert requirement.record_pause(first, "licence") is True
    assert requirement.record_pause(second, "licence") is False  # its stale copy lost the UPDATE
    assert len(events(Action.SSO_REQUIRED_PAUSED)) == 1


def test_the_daily_purge_records_a_pause_nobody_signed_in_for(contoso, required):
    contoso.revoke_licences(Licence.Product.SSO)
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    call_command("purge_expired", stdout=io.StringIO())
    assert "Required Microsoft sign-in paused or resumed for 1 companies." in out.getvalue()
    assert len(events(Action.SSO_REQUIRED_PAUSED)) == 1
    assert Company.objects.get(pk=contoso.pk).microsoft_requirement_paused


def test_the_decision_is_cheap(contoso, required, member, northwind, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert not requirement.evaluate(northwind).applies  # no requirement: nothing to read
    with django_assert_num_queries(1):
        assert requirement.evaluate(contoso, member).applies


# --- The administrator's page ----------------------------------------------------------------------------


def test_the_dry_run_shows_who_is_connected_and_who_is_not(admin_client, member, contoso, contoso_integration):
    carol = make_user("carol", contoso)
    connected(carol, contoso_integration)
    overview = page_text(admin_client.get("/company/sso/"))
    assert "Review and require Microsoft sign-in" in overview

    text = page_text(admin_client.get("/company/sso/require/"))
    connected_part = text.split('id="connected"')[1].split("</section>")[0]
    waiting_part = text.split('id="not-connected"')[1].split("</section>")[0]
    exempt_part = text.split('id="exempt"')[1].split("</section>")[0]
    assert "1 member is connected" in connected_part and "carol" in connected_part
    assert "1 member is not connected yet" in waiting_part and "bob" in waiting_part
    assert "no “Not now”" in waiting_part
    assert "alice" in exempt_part and "always get in" in exempt_part
    assert not Company.objects.get(pk=contoso.pk).microsoft_required  # a dry run changes nothing


def test_turning_it_on_and_off_is_audited(admin_client, member, admin, contoso, contoso_integration):
    response = admin_client.post("/company/sso/require/", follow=True)
    assert "Members must now sign in with Microsoft. Administrators are exempt." in page_text(response)
    assert Company.objects.get(pk=contoso.pk).microsoft_required
    [on] = events(Action.SSO_REQUIRED_ON)
    assert (on.actor, on.company, on.details) == (admin, contoso, {"connected": 0, "not_connected": 1})
    text = page_text(admin_client.get("/company/sso/"))
    assert "Administrators are exempt" in text and "Stop requiring Microsoft sign-in" in text

    # A second tab: turning it on again says so and records nothing more.
    response = admin_client.post("/company/sso/require/", follow=True)
    assert "Members must already sign in with Microsoft." in page_text(response)
    assert len(events(Action.SSO_REQUIRED_ON)) == 1

    admin_client.post("/company/sso/require/off/")
    response = admin_client.post("/company/sso/require/off/", follow=True)  # a second tab
    assert "Microsoft sign-in was not required, so nothing changed." in page_text(response)
    assert not Company.objects.get(pk=contoso.pk).microsoft_required
    [off] = events(Action.SSO_REQUIRED_OFF)
    assert off.actor == admin


@pytest.mark.parametrize("missing", ["licence", "integration"])
def test_it_cannot_be_turned_on_without_a_licence_and_an_active_integration(
    admin_client, contoso, contoso_integration, missing
):
    if missing == "licence":
        contoso.revoke_licences(Licence.Product.SSO)
    else:
        contoso_integration.disable()
    assert "Review and require Microsoft sign-in" not in page_text(admin_client.get("/company/sso/"))
    response = admin_client.post("/company/sso/require/", follow=True)
    assert "can be required only while" in page_text(response)
    assert not Company.objects.get(pk=contoso.pk).microsoft_required


def test_the_page_shows_the_pause(admin_client, contoso, required, contoso_integration):
    contoso_integration.disable()
    text = page_text(admin_client.get("/company/sso/"))
    assert "Paused" in text and "No integration is active" in text
    assert [e.details for e in events(Action.SSO_REQUIRED_PAUSED)] == [{"reason": "integration"}]


def test_members_and_outsiders_cannot_change_it(client, member, outsider, contoso, contoso_integration):
    sign_in(client, member)
    assert client.post("/company/sso/require/").status_code == 403
    client.post("/signout/")
    sign_in(client, outsider)
    client.post("/company/sso/require/")
    assert not Company.objects.get(pk=contoso.pk).microsoft_required


# --- Operator staff ---------------------------------------------------------------------------------------


def test_the_command_shows_and_turns_it_off(contoso, required):
    out = io.StringIO()
    call_command("require_microsoft_signin", "contoso ltd", stdout=out)
    assert out.getvalue() == "Required Microsoft sign-in for members of Contoso Ltd is on.\n"

    out = io.StringIO()
    call_command("require_microsoft_signin", "Contoso Ltd", "--off", stdout=out)
    assert out.getvalue() == "Contoso Ltd no longer requires Microsoft sign-in.\n"
    [off] = events(Action.SSO_REQUIRED_OFF)
    assert (off.actor_label, off.company) == ("command line", contoso)

    out = io.StringIO()
    call_command("require_microsoft_signin", "Contoso Ltd", "--off", stdout=out)
    assert "nothing changed" in out.getvalue()
    assert len(events(Action.SSO_REQUIRED_OFF)) == 1


def test_the_command_says_when_it_is_paused(contoso, required):
    contoso.revoke_licences(Licence.Product.SSO)
    out = io.StringIO()
    call_command("require_microsoft_signin", "Contoso Ltd", stdout=out)
    assert "is on, but paused: the company has no valid SSO licence" in out.getvalue()


def test_operator_staff_turn_it_off_in_the_operator_admin(client, contoso, required):
    oscar = make_user("oscar", None, is_staff=True, is_superuser=True)
    sign_in(client, oscar)
    response = client.post(
        "/staff/companies/company/",
        {"action": "stop_requiring_microsoft", "_selected_action": [contoso.pk]},
        follow=True,
    )
    assert not Company.objects.get(pk=contoso.pk).microsoft_required
    assert "1 company no longer requires Microsoft sign-in." in page_text(response)
    [off] = events(Action.SSO_REQUIRED_OFF)
    assert (off.actor, off.company, off.details) == (oscar, contoso, {"via": "staff admin"})
    # The flag itself is not a form field: turning it on is the administrator's, after the dry run.
    assert 'name="microsoft_required"' not in page_text(client.get(f"/staff/companies/company/{contoso.pk}/change/"))


def test_staff_who_may_only_view_companies_cannot_turn_it_off(client, contoso, required):
    from django.contrib.auth.models import Permission

    sam = make_user("sam", None, is_staff=True)
    sam.user_permissions.set(Permission.objects.filter(codename="view_company"))
    sign_in(client, sam)
    assert "stop_requiring_microsoft" not in page_text(client.get("/staff/companies/company/"))
    client.post("/staff/companies/company/", {"action": "stop_requiring_microsoft", "_selected_action": [contoso.pk]})
    assert Company.objects.get(pk=contoso.pk).microsoft_required
    assert not events(Action.SSO_REQUIRED_OFF)
