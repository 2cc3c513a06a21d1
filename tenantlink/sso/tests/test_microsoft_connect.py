"""Flow 3 through the portal's views, with Microsoft answered by FakeMicrosoft: the offer after a
password sign-in, and connecting a Microsoft account (every refusal and error on the way). The
end-to-end tests repeat the story against the Entra emulator in a browser."""

from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.test import Client

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import PASSWORD, code_for, get_under_prefix, make_user, sign_in, signed_in_browser
from tenantlink.sso.models import Connection, DeclinedOffer, Integration
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM, aad_error
from tenantlink.sso.tests.microsoft_signin_helpers import (
    BEN_OID,
    connected,
    microsoft_answers,
    page_text,
    password_signin_of,
    to_microsoft,
)


def connect(client, fake_microsoft, **claims):
    path, params = to_microsoft(client.post("/sso/connect/", {"next": "/portal/"}))
    return microsoft_answers(client, fake_microsoft, params, **claims)


def test_after_a_password_sign_in_the_user_is_offered_microsoft(client, member, contoso_integration):
    response = password_signin_of(client, member)
    assert response.redirect_chain[-1][0] == "/sso/offer/?next=%2Fportal%2F"
    text = page_text(response)
    assert "Sign in with Microsoft?" in text and "Not now" in text and "t ask again" in text


def test_a_head_request_after_signing_in_does_not_use_up_the_offer(client, member, contoso_integration):
    """A prefetch or a link checker with the session's cookie: the person's own GET still asks."""
    client.post("/signin/", {"username": member.username, "password": PASSWORD})
    client.post("/signin/verify/", {"code": code_for(member)})
    client.head("/portal/")
    response = client.get("/portal/")
    assert response.status_code == 302 and response.url == "/sso/offer/?next=%2Fportal%2F"


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


def test_connecting_after_dont_ask_again_brings_the_offer_back_once_an_administrator_disconnects(
    client, member, contoso_integration, fake_microsoft, admin
):
    password_signin_of(client, member)
    client.post("/sso/offer/decline/", {"next": "/portal/"})
    connect(client, fake_microsoft)  # from My Profile, later
    assert Connection.objects.filter(user=member).exists() and not DeclinedOffer.objects.exists()

    signed_in_browser(admin).post(f"/company/users/{member.pk}/microsoft/disconnect/")

    assert password_signin_of(Client(), member, step=1).redirect_chain[-1][0] == "/sso/offer/?next=%2Fportal%2F"


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


@pytest.mark.django_db(transaction=True)  # the connection's foreign key is checked at COMMIT
def test_an_integration_deleted_as_microsoft_answers_is_not_called_a_taken_account(
    client, member, contoso_integration, fake_microsoft, monkeypatch
):
    from tenantlink.sso import flows

    sign_in(client, member)
    _path, params = to_microsoft(client.post("/sso/connect/", {"next": "/portal/"}))
    found = flows.active_integrations

    def deleted_meanwhile(company):  # the callback found the integration; the administrator deletes it
        integrations = found(company)
        Integration.objects.filter(pk=contoso_integration.pk).delete()
        return integrations

    monkeypatch.setattr(flows, "active_integrations", deleted_meanwhile)
    microsoft_answers(client, fake_microsoft, params)

    assert not Connection.objects.exists()
    text = page_text(client.get("/portal/"))
    assert "does not belong to a Microsoft organization that your company has connected" in text
    assert "already connected to another portal account" not in text
    assert AuditEvent.objects.get(action=Action.SSO_CONNECT_FAILED).details["reason"] == "tenant_not_integrated"


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
    assert response.url == "/signin/?next=%2Fprofile%2Fsettings%2F&username=bob"
    assert "_auth_user_id" not in client.session
    assert not Connection.objects.exists()
    page = page_text(client.get(response.url))
    assert "For your security, sign in again with your password and code" in page
    assert 'name="username" value="bob"' in page  # only the password and code left to type
    assert "You are not signed in, so what you sent was not saved" not in page  # it was read, and refused


@pytest.mark.parametrize(
    ("meanwhile", "words"),
    [
        ("the sign-in grew old", "connecting needs a recent sign-in"),
        ("made operator staff", "Operator staff sign in with username, password and second factor"),
        ("a personal account answered", "Personal Microsoft accounts cannot be used"),
    ],
)
def test_what_is_checked_again_when_microsoft_answers_connects_nothing_and_says_why(
    client, member, contoso_integration, contoso, fake_microsoft, settings, meanwhile, words
):
    # Two integrations: Microsoft is asked at /organizations, where a personal account may answer.
    Integration.objects.create(company=contoso, tenant_id=FABRIKAM, display_name="F", status=Integration.Status.ACTIVE)
    sign_in(client, member)
    _path, params = to_microsoft(client.post("/sso/connect/", {"next": "/profile/settings/"}))
    claims = {}
    if meanwhile == "the sign-in grew old":  # while the user was at Microsoft
        session = client.session
        session["signed_in_at"] -= settings.RECENT_SIGNIN_WINDOW + 1
        session.save()
    elif meanwhile == "made operator staff":
        User.objects.filter(pk=member.pk).update(is_staff=True)
    else:
        claims = {"tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}
    response = microsoft_answers(client, fake_microsoft, params, **claims)
    assert not Connection.objects.exists()
    assert words in page_text(client.get(response.url, follow=True))
    assert AuditEvent.objects.filter(action=Action.SSO_CONNECT_FAILED, target_user=member).exists()


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


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        ("invalid_grant", 50105, "has not given your account access"),
        ("invalid_grant", 53003, "(Conditional Access) did not let this sign-in through"),
        ("temporarily_unavailable", 50196, "Try again in a few minutes."),
    ],
)
def test_the_same_errors_when_the_code_is_redeemed_explain_themselves_alike(
    client, member, contoso_integration, fake_microsoft, error, code, words
):
    """Microsoft may refuse the person only when the portal redeems the code."""
    sign_in(client, member)
    _path, sent = to_microsoft(client.post("/sso/connect/"))
    fake_microsoft.fail_with(aad_error(400, error, code))
    client.get("/sso/callback/", {"code": "a-code", "state": sent["state"]})
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
    # Replayed (as Back to Microsoft does): nothing done, and back where the first answer led.
    replayed = client.get("/sso/callback/", {"code": "the-code", "state": params["state"]}, follow=True)
    assert not Connection.objects.exists()
    assert replayed.redirect_chain[-1][0] == "/profile/settings/"
    assert "does not belong to a sign-in started in this browser" not in page_text(replayed)


def test_the_profile_says_nothing_without_a_licence(client, member, contoso_integration, contoso):
    contoso.revoke_licences(Licence.Product.SSO)
    sign_in(client, member)
    assert "Microsoft" not in page_text(client.get("/profile/settings/"))


def test_integrations_count_their_connected_users(admin_client, member, contoso_integration):
    connected(member, contoso_integration)
    assert "1 of 2 active users (50%)" in page_text(admin_client.get("/company/sso/"))
