"""Flows 3–5 through the portal's views, with Microsoft answered by FakeMicrosoft: the offer after
a password sign-in, connecting, signing in with Microsoft alone, every refusal, disconnecting,
and sessions that end with their connection. The end-to-end tests repeat the story against the
Entra emulator in a browser."""

import datetime
import re
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.flows import SigninRefusal, signin_completing
from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import PASSWORD, code_for, get_under_prefix, make_user, sign_in, signed_in_browser
from tenantlink.sso.models import Connection, DeclinedOffer, Integration
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM

BEN_OID = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


def to_microsoft(response):
    """The authorization request the portal sent the browser to; its parameters."""
    assert response.status_code == 302, response
    location = urlsplit(response.url)
    return location.path, {name: values[0] for name, values in parse_qs(location.query).items()}


def microsoft_answers(client, fake_microsoft, params, **claims):
    """Microsoft signs the person in and sends them back with a code for an ID token."""
    fake_microsoft.codes["the-code"] = fake_microsoft.id_token(nonce=params["nonce"], **claims)
    return client.get("/sso/callback/", {"code": "the-code", "state": params["state"]})


def connect(client, fake_microsoft, **claims):
    path, params = to_microsoft(client.post("/sso/connect/", {"next": "/portal/"}))
    return microsoft_answers(client, fake_microsoft, params, **claims)


def microsoft_signin(client, fake_microsoft, **claims):
    path, params = to_microsoft(client.post("/sso/signin/"))
    assert path == "/organizations/oauth2/v2.0/authorize"
    return microsoft_answers(client, fake_microsoft, params, **claims)


def password_signin_of(client, user, step=0):
    client.post("/signin/", {"username": user.username, "password": PASSWORD})
    return client.post("/signin/verify/", {"code": code_for(user, step)}, follow=True)


def connected(member, contoso_integration, oid=BEN_OID):
    return Connection.objects.create(
        user=member, integration=contoso_integration, tid=CONTOSO, oid=oid, username="ben@contoso.onmicrosoft.com"
    )


def page_text(response):
    return response.content.decode()


def test_after_a_password_sign_in_the_user_is_offered_microsoft(client, member, contoso_integration):
    response = password_signin_of(client, member)
    assert response.redirect_chain[-1][0] == "/sso/offer/?next=%2Fportal%2F"
    text = page_text(response)
    assert "Sign in with Microsoft?" in text and "Not now" in text and "t ask again" in text


def test_under_a_script_prefix_my_profile_is_not_interrupted_by_the_offer(client, member, contoso_integration):
    client.post("/signin/", {"username": member.username, "password": PASSWORD})
    client.post("/signin/verify/", {"code": code_for(member)})
    profile, portal = get_under_prefix(client, "/profile/", "/portal/")
    assert profile.status_code == 200
    assert portal.status_code == 302 and portal.url == "/app/sso/offer/?next=%2Fapp%2Fportal%2F"


def test_no_offer_without_an_active_integration_or_a_licence(client, member, contoso_integration, contoso):
    contoso_integration.disable()
    assert password_signin_of(client, member).redirect_chain[-1][0] == "/portal/"
    contoso_integration.enable()
    contoso.revoke_licences(Licence.Product.SSO)
    assert password_signin_of(Client(), member, step=1).redirect_chain[-1][0] == "/portal/"


def test_dont_ask_again_is_remembered(client, member, contoso_integration):
    password_signin_of(client, member)
    client.post("/sso/offer/decline/", {"next": "/portal/"})
    assert DeclinedOffer.objects.filter(user=member).exists()
    assert password_signin_of(Client(), member, step=1).redirect_chain[-1][0] == "/portal/"
    # ...but My Profile still offers it.
    assert "Enable" in page_text(client.get("/profile/settings/"))


@pytest.mark.parametrize(
    ("claims", "account"),
    [
        ({"preferred_username": None}, "Ben Berg"),
        ({"preferred_username": None, "name": None}, BEN_OID),
        ({"name": None}, "ben@contoso.onmicrosoft.com"),
    ],
)
def test_an_account_microsoft_sends_without_a_name_or_username_is_still_named(
    client, member, contoso_integration, fake_microsoft, claims, account
):
    """Microsoft need not send `preferred_username` (nor `name`): the pages and the email name
    the account by what there is, and by its object ID when there is nothing else."""
    sign_in(client, member)
    connect(client, fake_microsoft, **claims)
    assert f"Your portal account is now connected to {account}." in page_text(client.get("/portal/"))
    assert f"Connected to the Microsoft account {account} since" in page_text(client.get("/profile/settings/"))
    assert f"account {account}." in page_text(client.get("/profile/microsoft/disconnect/"))
    assert f"the Microsoft account {account} was connected" in mail.outbox[-1].body
    admin = make_user("ada", member.company, User.Role.ADMINISTRATOR)
    assert f"<dd>{account}</dd>" in page_text(signed_in_browser(admin).get(f"/company/users/{member.pk}/"))


def test_connecting_stores_the_identity_and_tells_the_user(client, member, contoso_integration, fake_microsoft):
    sign_in(client, member)
    path, params = to_microsoft(client.post("/sso/connect/", {"next": "/portal/"}))
    # One active integration: Microsoft is asked for that tenant only, with PKCE and select_account.
    assert path == f"/{CONTOSO}/oauth2/v2.0/authorize"
    assert params["scope"] == "openid profile email"
    assert params["prompt"] == "select_account"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["response_mode"] == "query"

    response = microsoft_answers(client, fake_microsoft, params)
    assert response.url == "/portal/"
    connection = Connection.objects.get(user=member)
    assert (str(connection.tid), str(connection.oid), connection.username) == (
        CONTOSO,
        BEN_OID,
        "ben@contoso.onmicrosoft.com",
    )
    assert "now connected to Ben Berg (ben@contoso.onmicrosoft.com)" in page_text(client.get("/portal/"))
    assert AuditEvent.objects.filter(action=Action.SSO_CONNECTED, target_user=member).exists()
    assert mail.outbox[-1].to == [member.email] and "was connected" in mail.outbox[-1].body
    # This browser shows "Sign in with Microsoft" first from now on.
    client.post("/signout/")
    text = page_text(client.get("/signin/"))
    assert text.index("Sign in with Microsoft") < text.index('name="username"')
    # The code verifier is sent with the code.
    token_requests = [
        parse_qs(request.content.decode()) for request in fake_microsoft.requests if request.method == "POST"
    ]
    assert token_requests[-1]["grant_type"] == ["authorization_code"]
    assert len(token_requests[-1]["code_verifier"][0]) >= 43


def test_with_several_integrations_any_work_account_may_answer(
    client, member, contoso_integration, contoso, fake_microsoft
):
    Integration.objects.create(company=contoso, tenant_id=FABRIKAM, display_name="F", status=Integration.Status.ACTIVE)
    sign_in(client, member)
    path, params = to_microsoft(client.post("/sso/connect/"))
    assert path == "/organizations/oauth2/v2.0/authorize"
    microsoft_answers(client, fake_microsoft, params, tid=FABRIKAM)
    assert Connection.objects.get(user=member).integration.tenant_id.hex == FABRIKAM.replace("-", "")


def test_an_account_of_a_tenant_the_company_has_not_connected_is_refused(
    client, member, contoso_integration, contoso, fake_microsoft
):
    Integration.objects.create(
        company=contoso, tenant_id=FABRIKAM, display_name="F", status=Integration.Status.DISABLED
    )
    sign_in(client, member)
    # With one active integration the token must come from that tenant.
    assert connect(client, fake_microsoft, tid=FABRIKAM).url == "/portal/"
    assert not Connection.objects.exists()
    assert "does not belong to a Microsoft organization that your company has connected" in page_text(
        client.get("/portal/")
    )


def test_a_microsoft_account_connected_elsewhere_stays_where_it_is(
    client, member, contoso_integration, contoso, fake_microsoft
):
    other = make_user("carol", contoso)
    connected(other, contoso_integration)
    sign_in(client, member)
    connect(client, fake_microsoft)
    assert Connection.objects.get(oid=BEN_OID).user == other
    assert not Connection.objects.filter(user=member).exists()
    assert "already connected to another portal account" in page_text(client.get("/portal/"))


def test_connecting_needs_a_recent_sign_in(client, member, contoso_integration, fake_microsoft, settings):
    sign_in(client, member)
    session = client.session
    session["signed_in_at"] -= settings.RECENT_SIGNIN_WINDOW + 1
    session.save()
    # A password confirmation alone is not enough: connecting needs a fresh full sign-in.
    session = client.session
    session["reauthenticated_at"] = session["signed_in_at"] + settings.RECENT_SIGNIN_WINDOW
    session.save()
    response = client.post("/sso/connect/")
    assert response.url == "/signin/?next=%2Fprofile%2Fsettings%2F"
    assert "_auth_user_id" not in client.session
    assert not Connection.objects.exists()


def test_a_microsoft_sign_in_does_not_count_for_changing_the_second_factor(
    client, member, contoso_integration, fake_microsoft
):
    """Whoever holds the Microsoft account must not replace the portal's own second factor."""
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    for path in ("/profile/authenticator/", "/profile/recovery-codes/"):
        assert client.get(path).url.startswith("/profile/confirm-password/"), path


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


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"error": "access_denied", "error_subcode": "cancel"}, "cancelled"),
        (
            {
                "error": "consent_required",
                "error_description": "AADSTS65001: The user or administrator has not consented.",
            },
            "must finish the single sign-on integration",
        ),
        (
            {"error": "access_denied", "error_description": "AADSTS50105: not assigned"},
            "has not given your account access",
        ),
        (
            {
                "error": "access_denied",
                "error_description": "AADSTS53003: Access has been blocked by Conditional Access",
            },
            "(Conditional Access) did not let this sign-in through",
        ),
        ({"error": "temporarily_unavailable"}, "Try again in a few minutes."),
        (
            {"error": "server_error", "error_description": "AADSTS90033: A transient error"},
            "Try again in a few minutes.",
        ),
    ],
)
def test_errors_from_microsoft_explain_themselves(client, member, contoso_integration, params, words):
    sign_in(client, member)
    _path, sent = to_microsoft(client.post("/sso/connect/"))
    client.get("/sso/callback/", {**params, "state": sent["state"]})
    assert words in page_text(client.get("/portal/"))
    assert not Connection.objects.exists()


def test_a_state_is_bound_to_its_browser_and_works_once(client, member, contoso_integration, fake_microsoft):
    sign_in(client, member)
    _path, params = to_microsoft(client.post("/sso/connect/"))
    fake_microsoft.codes["the-code"] = fake_microsoft.id_token(nonce=params["nonce"])

    stranger = Client()
    stranger.get("/sso/callback/", {"code": "the-code", "state": params["state"]})
    assert not Connection.objects.exists()

    client.get("/sso/callback/", {"code": "the-code", "state": params["state"]})
    assert Connection.objects.count() == 1
    Connection.objects.all().delete()
    fake_microsoft.codes["the-code"] = fake_microsoft.id_token(nonce=params["nonce"])
    client.get("/sso/callback/", {"code": "the-code", "state": params["state"]})  # replayed
    assert not Connection.objects.exists()
    assert "does not belong to a sign-in started in this browser" in page_text(client.get("/profile/settings/"))


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
    elif change == "personal":
        claims = {"tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}
    response = microsoft_signin(client, fake_microsoft, **claims)
    assert response.url == "/signin/"
    assert "_auth_user_id" not in client.session
    assert words in page_text(client.get("/signin/"))
    event = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).latest("id")
    assert event.details["method"] == "microsoft"


def test_a_broken_token_signs_in_nobody(client, member, contoso_integration, fake_microsoft):
    connected(member, contoso_integration)
    response = microsoft_signin(client, fake_microsoft, aud="someone-else")
    assert response.url == "/signin/"
    assert "_auth_user_id" not in client.session
    assert "did not pass the portal's security checks" in page_text(client.get("/signin/")).replace("&#x27;", "'")


def test_a_user_disconnects_in_my_profile(client, member, contoso_integration):
    connected(member, contoso_integration)
    sign_in(client, member)
    assert "Deactivate single sign-on" in page_text(client.get("/profile/settings/"))
    response = client.post("/profile/microsoft/disconnect/", follow=True)
    assert "Microsoft sign-in is off" in page_text(response)
    assert not Connection.objects.exists()
    assert AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED, target_user=member).exists()
    assert "was disconnected" in mail.outbox[-1].body
    # Password sessions go on.
    assert client.get("/portal/").status_code == 200
    # A second tab: nothing more is removed, and the page says why.
    for method in (client.get, client.post):
        response = method("/profile/microsoft/disconnect/", follow=True)
        assert "Your account has no Microsoft connection." in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED).count() == 1


def test_an_administrator_disconnects_a_member(admin_client, member, contoso_integration):
    connected(member, contoso_integration)
    assert "Connected" in page_text(admin_client.get("/company/users/?microsoft=connected"))
    assert member.username not in page_text(admin_client.get("/company/users/?microsoft=not_connected"))
    assert "Disconnect" in page_text(admin_client.get(f"/company/users/{member.pk}/"))
    admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/")
    assert not Connection.objects.exists()
    assert "done by your company's administrator" in mail.outbox[-1].body

    response = admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/", follow=True)  # a second tab
    assert "Bob has no Microsoft connection." in page_text(response)
    assert len(mail.outbox) == 1


SWEDISH_MONTHS = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
]


def test_two_tabs_disconnecting_at_the_same_moment_record_and_tell_it_once(
    admin_client, member, contoso_integration, monkeypatch
):
    connected(member, contoso_integration)
    read_by_the_other_tab = Connection.objects.get(user=member)
    admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/")

    class StaleRead:  # the other tab found the connection before the first one removed it
        def filter(self, **kwargs):
            return self

        def first(self):
            return read_by_the_other_tab

    class OtherTabsView:
        objects = StaleRead()

    monkeypatch.setattr("tenantlink.sso.views.connect.Connection", OtherTabsView)
    response = admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/", follow=True)
    assert "Bob has no Microsoft connection." in page_text(response)
    assert AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED).count() == 1
    assert len(mail.outbox) == 1


def test_the_notice_is_written_in_the_members_language_and_time_zone(admin_client, member, contoso_integration):
    member.language, member.time_zone = "sv", "Asia/Tokyo"
    member.save(update_fields=["language", "time_zone"])
    connected(member, contoso_integration)

    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    before = datetime.datetime.now(tokyo)
    admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/")
    after = datetime.datetime.now(tokyo)

    message = mail.outbox[-1]
    assert message.subject == "Inloggning med Microsoft har tagits bort från ditt konto på Tenantlink"
    when = re.search(r"Den (\d+) (\w+) (\d{4}) (\d\d):\d\d kopplades Microsoft-kontot ben@contoso", message.body)
    assert when and when.group(2) in SWEDISH_MONTHS
    assert int(when.group(4)) in (before.hour, after.hour)  # in the member's time zone, not the administrator's
    assert "Detta gjordes av ditt företags administratör." in message.body
    # The administrator's own pages stay in English.
    assert "Disconnect" not in page_text(admin_client.get(f"/company/users/{member.pk}/"))
    assert "Users" in page_text(admin_client.get("/company/users/"))


def test_another_companys_administrator_cannot_disconnect(client, member, contoso_integration, outsider):
    connected(member, contoso_integration)
    sign_in(client, outsider)
    assert client.post(f"/company/users/{member.pk}/microsoft/disconnect/").status_code == 404
    assert Connection.objects.exists()


@pytest.mark.parametrize("ending", ["disconnected", "disabled", "deleted", "licence", "deactivated"])
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
    else:
        member.deactivate()

    assert client.get("/portal/").url.startswith("/signin/")
    if ending != "deactivated":  # deactivation ends every session, by design
        assert password_session.get("/portal/").status_code == 200


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


def test_the_profile_says_nothing_without_a_licence(client, member, contoso_integration, contoso):
    contoso.revoke_licences(Licence.Product.SSO)
    sign_in(client, member)
    assert "Microsoft" not in page_text(client.get("/profile/settings/"))


def test_integrations_count_their_connected_users(admin_client, member, contoso_integration):
    connected(member, contoso_integration)
    assert "1 of 2 active users (50 %)" in page_text(admin_client.get("/company/sso/"))
