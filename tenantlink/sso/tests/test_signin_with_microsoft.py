"""Flow 4 through the portal's views, with Microsoft answered by FakeMicrosoft: signing in with
Microsoft alone, every refusal, the callback's form posts, and sessions that end with their
connection. The end-to-end tests repeat the story against the Entra emulator in a browser."""

import datetime
import re
import time
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.flows import SigninRefusal, signin_completing
from tenantlink.accounts.models import User
from tenantlink.accounts.sessions import SessionStore
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company, Licence
from tenantlink.conftest import PASSWORD, sign_in
from tenantlink.sso.models import Connection, Integration
from tenantlink.sso.tests.conftest import FABRIKAM, aad_error
from tenantlink.sso.tests.microsoft_signin_helpers import (
    connected,
    microsoft_answers,
    microsoft_signin,
    page_text,
    to_microsoft,
)
from tenantlink.sso.views.signin import STILL_AT_MICROSOFT

STILL = "You may still be signed in at Microsoft in this browser"


def test_a_microsoft_sign_in_does_not_count_for_changing_the_second_factor(
    client, member, contoso_integration, fake_microsoft
):
    """Whoever holds the Microsoft account must not replace the portal's own second factor."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    for path in ("/profile/authenticator/", "/profile/recovery-codes/"):
        assert client.get(path).url.startswith("/profile/confirm-password/"), path


def test_a_microsoft_sign_in_does_not_forgive_wrong_passwords(
    client, member, contoso_integration, fake_microsoft, settings
):
    """Else whoever holds the Microsoft account could guess the portal password that guards the
    second factor without end, signing in with Microsoft again before each pause."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    for _guess in range(settings.THROTTLE_ACCOUNT_FAILURES - 1):
        assert client.post("/profile/confirm-password/", {"password": "a guess"}).status_code == 200
    client.post("/signout/")
    microsoft_signin(client, fake_microsoft)
    client.post("/profile/confirm-password/", {"password": "another guess"})  # the last one allowed
    response = client.post("/profile/confirm-password/", {"password": PASSWORD})
    assert "too many attempts" in page_text(response)  # paused: even the right password waits
    assert client.get("/profile/authenticator/").url.startswith("/profile/confirm-password/")


def test_operator_staff_do_not_use_microsoft_sign_in(client, member, contoso_integration, fake_microsoft):
    User.objects.filter(pk=member.pk).update(is_staff=True)
    connected(member, contoso_integration)
    response = microsoft_signin(client, fake_microsoft)
    assert response.url == "/signin/"
    assert "Operator staff sign in with username, password and second factor" in page_text(client.get("/signin/"))
    Connection.objects.all().delete()
    sign_in(client, member)
    assert "Sign in with Microsoft" not in page_text(client.get("/profile/settings/"))


def test_a_next_address_too_long_to_be_ours_falls_back(client, member, contoso_integration, fake_microsoft):
    connected(member, contoso_integration)
    _path, params = to_microsoft(client.post("/sso/signin/", {"next": "/portal/" + "x" * 600}))
    assert microsoft_answers(client, fake_microsoft, params).url == "/portal/"


def test_a_user_signs_in_with_microsoft_alone(client, member, contoso_integration, fake_microsoft):
    connection = connected(member, contoso_integration)
    started = timezone.now()
    response = microsoft_signin(client, fake_microsoft)
    assert response.url == "/portal/"
    assert f"Welcome, {member.get_full_name()}" in page_text(client.get("/portal/"))
    assert client.session["signin_method"] == "microsoft"
    assert response.cookies["tl_last_signin"].value == "microsoft"
    connection.refresh_from_db()
    member.refresh_from_db()
    assert connection.last_signin_at >= started and member.last_login >= started
    event = AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED, target_user=member).latest("id")
    assert event.details["method"] == "microsoft"
    # The sign-in page shows the Microsoft button first in this browser from now on.
    client.post("/signout/")
    text = page_text(client.get("/signin/"))
    assert text.index("Sign in with Microsoft") < text.index('name="username"')


def test_back_to_microsoft_after_signing_in_lands_on_the_portal_again(
    client, member, contoso_integration, fake_microsoft
):
    connected(member, contoso_integration)
    _path, params = to_microsoft(client.post("/sso/signin/"))
    assert microsoft_answers(client, fake_microsoft, params).url == "/portal/"
    signed_in = AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED).count()

    # Back: Microsoft answers once more, with the state that was used.
    again = microsoft_answers(client, fake_microsoft, params)

    assert again.url == "/portal/"
    assert 'class="messages"' not in page_text(client.get("/portal/"))
    assert AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED).count() == signed_in
    assert not AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).exists()
    # Not in another browser, nor with another used state of this one.
    for browser, state in ((Client(), params["state"]), (client, "another-state")):
        fake_microsoft.codes["the-code"] = fake_microsoft.id_token(nonce=params["nonce"])
        refused = browser.get("/sso/callback/", {"code": "the-code", "state": state}, follow=True)
        assert "does not belong to a sign-in started in this browser" in page_text(refused)


def test_the_session_key_changes_at_a_microsoft_sign_in(client, member, contoso_integration, fake_microsoft):
    connected(member, contoso_integration)
    client.get("/signin/")
    _path, params = to_microsoft(client.post("/sso/signin/"))
    before = client.session.session_key
    microsoft_answers(client, fake_microsoft, params)
    assert client.session.session_key != before


def test_an_email_equal_to_a_users_address_signs_in_as_nobody(client, member, contoso_integration, fake_microsoft):
    """nOAuth: addresses are set by whoever runs a tenant, so they never identify anyone."""
    response = microsoft_signin(
        client,
        fake_microsoft,
        oid="38d28601-c6aa-424e-b88a-441c835164d1",
        email=member.email,
        preferred_username=member.email,
    )
    assert response.url == "/signin/"
    assert "_auth_user_id" not in client.session
    assert "No portal account is connected to this Microsoft account" in page_text(client.get("/signin/"))


def test_a_sign_in_refused_by_another_rule_signs_nobody_in(client, member, contoso_integration, fake_microsoft):
    """accounts' signin_completing: any app's rule may refuse a sign-in, Microsoft's too."""

    def refuse(sender, method, **kwargs):
        return SigninRefusal("test_rule", "/signin/?refused", {}) if method == "microsoft" else None

    connected(member, contoso_integration)
    signin_completing.connect(refuse, dispatch_uid="test-refusal")
    try:
        assert microsoft_signin(client, fake_microsoft).url == "/signin/?refused"
    finally:
        signin_completing.disconnect(dispatch_uid="test-refusal")
    assert "_auth_user_id" not in client.session
    [refused] = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED)
    assert refused.details == {"method": "microsoft", "reason": "test_rule"}
    assert not AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED).exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("deactivated", "Your portal account is deactivated"),
        ("licence", "single sign-on licence is not valid"),
        ("disabled", "Microsoft sign-in is switched off for your organization"),
        ("deleted", "Your Microsoft organization is not connected to this portal"),
        ("other_tenant", "Your Microsoft organization is not connected to this portal"),
        ("tenant_not_approved_yet", "Your Microsoft organization is not connected to this portal"),
        # Moved to another company without the operator admin (which removes such connections):
        # Contoso's tenant still does not sign in a Northwind user.
        ("moved_to_another_company", "No portal account is connected to this Microsoft account"),
        ("personal", "Personal Microsoft accounts cannot be used"),
    ],
)
def test_each_refusal_explains_itself_and_is_audited(
    client, member, contoso_integration, contoso, fake_microsoft, change, words
):
    connected(member, contoso_integration)
    claims = {}
    if change == "deactivated":
        User.objects.filter(pk=member.pk).update(is_active=False)
    elif change == "licence":
        contoso.revoke_licences(Licence.Product.SSO)
    elif change == "disabled":
        contoso_integration.disable()
    elif change == "deleted":
        contoso_integration.delete()
    elif change == "other_tenant":
        claims = {"tid": FABRIKAM}
    elif change == "tenant_not_approved_yet":  # nobody can connect through it yet: not "connect it first"
        Connection.objects.all().delete()
        Integration.objects.filter(pk=contoso_integration.pk).update(status=Integration.Status.PENDING)
    elif change == "moved_to_another_company":
        northwind = Company.objects.create(name="Northwind Traders")
        northwind.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30))
        User.objects.filter(pk=member.pk).update(company=northwind)
    elif change == "personal":
        claims = {"tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}
    response = microsoft_signin(client, fake_microsoft, **claims)
    assert response.url == "/signin/"
    assert "_auth_user_id" not in client.session
    assert words in page_text(client.get("/signin/"))
    event = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).latest("id")
    assert event.details["method"] == "microsoft"


def test_a_refused_account_is_named_and_the_next_try_lets_the_person_choose_another(
    client, member, contoso_integration, fake_microsoft
):
    _path, params = to_microsoft(client.post("/sso/signin/"))
    assert "prompt" not in params  # someone signed in at Microsoft goes straight through
    microsoft_answers(client, fake_microsoft, params, preferred_username="cleo@contoso.onmicrosoft.com")

    text = page_text(client.get("/signin/"))
    assert "No portal account is connected to this Microsoft account" in text
    assert "Microsoft signed you in as cleo@contoso.onmicrosoft.com" in text
    _path, params = to_microsoft(client.post("/sso/signin/"))
    assert params["prompt"] == "select_account"  # Microsoft's account picker, not cleo again
    _path, params = to_microsoft(client.post("/sso/signin/"))
    assert "prompt" not in params  # once


def test_signing_out_after_microsoft_offers_to_sign_out_at_microsoft_too(
    client, member, contoso_integration, fake_microsoft, settings
):
    """Microsoft keeps its own sign-in in the browser: on a shared computer, the next person's Sign
    in with Microsoft would go straight through as the person who signed out of the portal."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    client.post("/signout/")

    text = page_text(client.get("/signin/"))
    assert "You have signed out." in text
    assert STILL in text
    assert STILL in page_text(client.get("/signin/"))  # until the person signs in or out at Microsoft
    _path, params = to_microsoft(client.post("/sso/signin/"))
    assert "prompt" not in params  # single sign-on as before: straight through for whoever stayed
    assert STILL not in page_text(client.get("/signin/"))

    microsoft_answers(client, fake_microsoft, params)
    client.post("/signout/")
    assert STILL in page_text(client.get("/signin/"))
    response = client.post("/sso/signout/")
    back = quote(f"{settings.SITE_URL}/sso/callback/", safe="")  # a registered redirect URI, as Microsoft requires
    assert (
        response.url == f"{settings.ENTRA_AUTHORITY}/organizations/oauth2/v2.0/logout?post_logout_redirect_uri={back}"
    )
    # Microsoft signs the browser out and sends it back with no answer at all.
    text = page_text(client.get("/sso/callback/", follow=True))
    assert "You have signed out at Microsoft too." in text and STILL not in text
    client.post("/signout/")  # nobody came back from Microsoft since
    assert STILL not in page_text(client.get("/signin/"))


def test_a_session_that_ended_by_itself_offers_it_too(client, member, contoso_integration, fake_microsoft, settings):
    """Left idle on a shared computer: the portal's session ends, Microsoft's does not."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    session = client.session
    session["last_seen"] = int(time.time()) - settings.SESSION_IDLE_LIFETIME - 1
    session.save()
    assert client.get("/portal/").url.startswith("/signin/")
    assert STILL in page_text(client.get("/signin/"))


def test_microsofts_sign_out_is_forgotten_only_once_microsoft_sends_the_browser_back(
    client, member, contoso_integration, fake_microsoft
):
    """Someone who leaves Microsoft's sign-out unfinished is still signed in there."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    client.post("/signout/")
    key = client.cookies["sessionid"].value
    response = client.post("/sso/signout/")
    assert "tl_at_microsoft" not in response.cookies  # kept: not signed out there yet
    # The session is left alone, as another tab may be signing in with it at this moment.
    assert "sessionid" not in response.cookies and SessionStore(key).load().get(STILL_AT_MICROSOFT)
    client.get("/signin/")  # ... and left Microsoft's page without finishing
    sign_in(client, member)
    client.post("/signout/")
    assert STILL in page_text(client.get("/signin/"))


def test_a_made_up_answer_from_microsoft_does_not_count_as_a_trip_there(client, member, contoso_integration):
    """A link to the callback with a state of nobody's: no round trip the portal began."""
    sign_in(client, member)
    client.get("/sso/callback/", {"state": "made-up", "code": "x"})
    client.post("/signout/")
    assert STILL not in page_text(client.get("/signin/"))


def test_a_refused_microsoft_sign_in_offers_it_too(client, member, contoso_integration, fake_microsoft):
    """Microsoft signed the person in, the portal did not: they are signed in at Microsoft only."""
    _path, params = to_microsoft(client.post("/sso/signin/"))
    microsoft_answers(client, fake_microsoft, params, preferred_username="cleo@contoso.onmicrosoft.com")
    assert STILL in page_text(client.get("/signin/"))


def test_the_microsoft_button_shown_first_has_the_focus(client, member, contoso_integration, fake_microsoft):
    """For the keyboard: Enter signs in with Microsoft, not the empty password form below it."""
    client.cookies["tl_last_signin"] = "microsoft"
    page = client.get("/signin/").content.decode()
    assert re.search(r'<button [^>]*id="microsoft-signin" autofocus>', page)


def test_someone_else_signing_in_with_a_password_meanwhile_does_not_hide_it(
    client, member, contoso_integration, fake_microsoft, admin
):
    """The shared computer: ben used Microsoft, ada her password after him; Microsoft still has ben."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    client.post("/signout/")
    sign_in(client, admin)
    client.post("/signout/")
    assert STILL in page_text(client.get("/signin/"))


def test_signing_out_after_a_password_sign_in_says_nothing_of_microsoft(client, member, contoso_integration):
    sign_in(client, member)
    client.post("/signout/")
    assert STILL not in page_text(client.get("/signin/"))
    assert "Sign out at Microsoft" not in page_text(client.get("/signin/"))
    # Nor does an address with no answer from Microsoft, typed or followed from elsewhere.
    assert "signed out at Microsoft" not in page_text(client.get("/sso/callback/", follow=True))


def test_made_up_answers_from_one_address_are_paused_before_they_keep_microsoft_busy(
    client, member, contoso_integration, fake_microsoft, settings
):
    """Each answer costs a call to Microsoft, and a made-up code fails only there: counted for the
    address as wrong passwords are, so that one client cannot keep the portal's calls busy."""
    settings.THROTTLE_ADDRESS_FAILURES = 3
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)  # a good answer is given back: it never counts
    client.post("/signout/")
    for _made_up in range(3):
        _path, params = to_microsoft(client.post("/sso/signin/"))
        client.get("/sso/callback/", {"code": "made-up", "state": params["state"]})
    asked = len(fake_microsoft.requests)

    _path, params = to_microsoft(client.post("/sso/signin/"))
    response = microsoft_answers(client, fake_microsoft, params)  # even a real one, for now

    assert response.url == "/signin/" and "_auth_user_id" not in client.session
    assert "Too many answers from Microsoft that did not work came from your network" in page_text(
        client.get("/signin/")
    )
    assert len(fake_microsoft.requests) == asked  # Microsoft not asked
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, target_label="address:127.0.0.1").exists()


def test_answers_that_fail_for_the_portals_own_reasons_pause_no_address(
    client, member, contoso_integration, fake_microsoft, settings
):
    """An expired client secret fails every answer: counted, it would pause whole offices' sign-ins."""
    settings.THROTTLE_ADDRESS_FAILURES = 3
    connected(member, contoso_integration)
    fake_microsoft.fail_with(aad_error(401, "invalid_client", 7000215, "Invalid client secret provided."))
    for _answer in range(4):
        _path, params = to_microsoft(client.post("/sso/signin/"))
        microsoft_answers(client, fake_microsoft, params)
    fake_microsoft.fail_with(None)  # the operator renews the secret

    assert microsoft_signin(client, fake_microsoft).url == "/portal/"


def test_a_broken_token_signs_in_nobody(client, member, contoso_integration, fake_microsoft):
    connected(member, contoso_integration)
    response = microsoft_signin(client, fake_microsoft, aud="someone-else")
    assert response.url == "/signin/"
    assert "_auth_user_id" not in client.session
    assert "did not pass the portal's security checks" in page_text(client.get("/signin/")).replace("&#x27;", "'")


@pytest.mark.parametrize("ending", ["disconnected", "disabled", "deleted", "licence", "deactivated", "made staff"])
def test_sessions_opened_with_microsoft_end_with_their_connection(
    client, member, contoso_integration, contoso, fake_microsoft, ending
):
    connection = connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    password_session = Client()
    sign_in(password_session, member)
    assert client.get("/portal/").status_code == 200

    if ending == "disconnected":
        connection.delete()
    elif ending == "disabled":
        contoso_integration.disable()
    elif ending == "deleted":
        contoso_integration.delete()
    elif ending == "licence":
        contoso.revoke_licences(Licence.Product.SSO)
    elif ending == "made staff":  # operator access never rests on a customer's tenant
        User.objects.filter(pk=member.pk).update(is_staff=True)
    else:
        member.deactivate()

    assert client.get("/portal/").url.startswith("/signin/")
    if ending != "deactivated":  # deactivation ends every session, by design
        assert password_session.get("/portal/").status_code == 200
        # Told why, with the password form first: the Microsoft button would only be refused now.
        text = page_text(client.get("/signin/"))
        assert "Your Microsoft sign-in is no longer available for this portal account" in text
        assert text.index('name="username"') < text.index('id="microsoft-signin"')


@pytest.mark.parametrize(
    "gap",
    [
        "integration disabled and enabled",
        "licence revoked and granted again",
        "licence revoked and restored in the operator admin",
        "licence restored, revoked and restored again",
        "licence revoked and restored in the second of the sign-in",
        "licence's end moved into the past and back in the operator admin",
        "licence lapsed and its end moved on in the operator admin",
    ],
)
def test_a_session_idle_while_microsoft_sign_in_was_off_does_not_come_back_with_it(
    client, member, contoso_integration, contoso, fake_microsoft, gap
):
    connected(member, contoso_integration)
    licence = contoso.licences.get()
    Licence.objects.filter(pk=licence.pk).update(valid_from=timezone.now() - datetime.timedelta(days=2))
    microsoft_signin(client, fake_microsoft)
    assert client.get("/portal/").status_code == 200
    session = client.session  # signed in a minute ago; it has made no request since
    session["signed_in_at"] -= 60
    session.save()

    licence.refresh_from_db()
    if gap.startswith("integration"):
        assert contoso_integration.disable() and contoso_integration.enable()
    elif gap == "licence revoked and granted again":
        contoso.revoke_licences(Licence.Product.SSO)
        contoso.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30))
    elif gap.startswith("licence's end moved"):
        until = licence.valid_until
        licence.valid_until = timezone.now() - datetime.timedelta(days=1)
        licence.save()
        licence.valid_until = until
        licence.save()
    elif gap.startswith("licence lapsed"):  # its end passed 30 s after the sign-in; then extended
        Licence.objects.filter(pk=licence.pk).update(valid_until=timezone.now() - datetime.timedelta(seconds=30))
        licence.refresh_from_db()
        licence.valid_until = timezone.now() + datetime.timedelta(days=30)
        licence.save()
    else:  # the operator admin's check box, saved
        if gap.startswith("licence restored"):  # an earlier revocation, restored before the sign-in
            Licence.objects.filter(pk=licence.pk).update(revoked_at=timezone.now() - datetime.timedelta(days=1))
            licence.refresh_from_db()
        for revoked in (True, False):
            licence.revoked = revoked
            licence.save()
        if gap.endswith("second of the sign-in"):  # signed in in the very second of the revocation
            session = client.session
            session["signed_in_at"] = int(licence.revoked_at.timestamp())
            session.save()

    response = client.get("/portal/", follow=True)
    assert "Your Microsoft sign-in is no longer available for this portal account" in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_SESSION_ENDED, target_user=member).count() == 1
    microsoft_signin(client, fake_microsoft)  # signing in with Microsoft again works at once
    assert client.get("/portal/").status_code == 200


def test_the_sign_in_page_offers_microsoft_only_when_configured(client, settings):
    assert "Sign in with Microsoft" not in page_text(client.get("/signin/"))  # unit tests: not configured
    settings.ENTRA_CONFIGURATION_PROBLEM = ""
    assert "Sign in with Microsoft" in page_text(client.get("/signin/"))


def test_a_form_post_answer_too_long_for_a_url_is_refused_with_a_message(client):
    response = client.post("/sso/callback/", {"code": "c" * 3000, "state": "s" * 1000}, follow=True)
    assert response.redirect_chain == [("/signin/", 302)]
    assert "Microsoft gave an answer that could not be understood" in page_text(response)
    assert AuditEvent.objects.get(action=Action.SIGNIN_FAILED).details["reason"] == "bad_answer"


def test_a_form_post_answer_is_sent_on_as_a_get(client):
    response = client.post("/sso/callback/", {"code": "c", "state": "s"})
    assert response.status_code == 303 and response.url == "/sso/callback/?code=c&state=s"
