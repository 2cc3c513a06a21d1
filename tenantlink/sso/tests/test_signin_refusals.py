"""What a person reads after Microsoft did not sign them in, and which button the sign-in page
puts first afterwards: a "no" of their own reads as cancelled, leaving Microsoft's "Need admin
approval" page says that an administrator must approve the portal, and once Microsoft sign-in
does not work for the company the password form comes first again."""

import html
import re

import pytest

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import sign_in
from tenantlink.sso.tests.conftest import FABRIKAM, aad_error
from tenantlink.sso.tests.microsoft_signin_helpers import connected, microsoft_signin, to_microsoft
from tenantlink.sso.views.signin import LAST_METHOD_COOKIE

CANCELLED = "Signing in at Microsoft was cancelled. Nothing was changed."
ADMINISTRATOR_MUST_APPROVE = "your organization's Microsoft administrator has to approve it first"

# Cancel on Microsoft's permissions page: the person declined to consent (see ENTRA.md).
DECLINED = {
    "error": "access_denied",
    "error_description": "AADSTS65004: User declined to consent to access the app.",
    "error_subcode": "cancel",
}
# "Return to the application without granting consent" on the "Need admin approval" page.
LEFT_APPROVAL_PAGE = {"error": "access_denied", "error_subcode": "cancel"}


def messages_on(response):
    box = re.search(r'<ul class="messages"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    items = re.findall(r"<li[^>]*>(.*?)</li>", box.group(1), re.S) if box else []
    return [html.unescape(re.sub(r"\s+", " ", item)).strip() for item in items]


def back_from_microsoft(client, answer, start="/sso/signin/"):
    _path, sent = to_microsoft(client.post(start))
    return client.get("/sso/callback/", {**answer, "state": sent["state"]})


def test_declining_the_permissions_at_microsoft_reads_as_cancelled(client, contoso_integration):
    response = back_from_microsoft(client, DECLINED)

    assert response.url == "/signin/"
    assert messages_on(client.get("/signin/")) == [CANCELLED]
    refused = AuditEvent.objects.get(action=Action.SIGNIN_FAILED)
    assert (refused.details["reason"], refused.details["code"]) == ("cancelled", "AADSTS65004")


def test_declining_the_permissions_when_connecting_reads_as_cancelled(client, member, contoso_integration):
    sign_in(client, member)

    back_from_microsoft(client, DECLINED, start="/sso/connect/")

    assert messages_on(client.get("/portal/")) == [CANCELLED]


@pytest.mark.parametrize("code", [54005, 70008])
def test_an_answer_that_came_too_late_or_twice_says_to_start_again(client, fake_microsoft, contoso_integration, code):
    fake_microsoft.fail_with(aad_error(400, "invalid_grant", code))

    response = back_from_microsoft(client, {"code": "a-code-microsoft-no-longer-takes"})

    assert response.url == "/signin/"
    assert messages_on(client.get("/signin/")) == [
        "Microsoft's answer came too late or a second time, so it no longer counts. Nothing was changed. "
        f"Please start again. (Error code: AADSTS{code})"
    ]
    assert AuditEvent.objects.get(action=Action.SIGNIN_FAILED).details["reason"] == "code_expired"


def test_leaving_the_need_admin_approval_page_says_an_administrator_must_approve(client, contoso_integration):
    back_from_microsoft(client, LEFT_APPROVAL_PAGE)

    [message] = messages_on(client.get("/signin/"))
    assert message.startswith(CANCELLED)
    assert ADMINISTRATOR_MUST_APPROVE in message and "ask your company's administrator" in message


def test_an_administrator_who_left_the_approval_page_is_told_how_to_grant_it(admin_client, contoso_integration):
    back_from_microsoft(admin_client, LEFT_APPROVAL_PAGE, start="/sso/connect/")

    [message] = messages_on(admin_client.get("/portal/"))
    assert ADMINISTRATOR_MUST_APPROVE in message and "Grant admin consent for your organization" in message


def password_first(page):
    text = page.content.decode()
    return text.index('name="username"') < text.index('id="microsoft-signin"')


@pytest.mark.parametrize("change", ["disabled", "deleted", "licence", "other_tenant"])
def test_after_microsoft_sign_in_is_refused_for_the_company_the_password_comes_first(
    client, member, contoso, contoso_integration, fake_microsoft, change
):
    connected(member, contoso_integration)
    client.cookies[LAST_METHOD_COOKIE] = "microsoft"  # this browser signed in with Microsoft before
    assert not password_first(client.get("/signin/"))
    claims = {}
    if change == "disabled":
        contoso_integration.disable()
    elif change == "deleted":
        contoso_integration.delete()
    elif change == "licence":
        contoso.revoke_licences(Licence.Product.SSO)
    else:
        claims = {"tid": FABRIKAM}

    response = microsoft_signin(client, fake_microsoft, **claims)

    assert response.url == "/signin/"
    assert response.cookies[LAST_METHOD_COOKIE].value == "password"
    assert password_first(client.get("/signin/"))


def test_a_refusal_of_one_person_keeps_microsoft_first_for_the_others(
    client, member, contoso_integration, fake_microsoft
):
    client.cookies[LAST_METHOD_COOKIE] = "microsoft"

    response = microsoft_signin(client, fake_microsoft)  # nobody is connected to this account yet

    assert response.url == "/signin/" and LAST_METHOD_COOKIE not in response.cookies
    assert not password_first(client.get("/signin/"))


def test_when_microsoft_sign_in_is_not_configured_the_password_comes_first(client, settings):
    client.cookies[LAST_METHOD_COOKIE] = "microsoft"
    settings.ENTRA_CONFIGURATION_PROBLEM = "ENTRA_CLIENT_ID is not set."

    response = client.post("/sso/signin/")

    assert response.url == "/signin/"
    assert response.cookies[LAST_METHOD_COOKIE].value == "password"


def test_turning_microsoft_sign_in_off_in_a_session_opened_with_it_puts_the_password_first(
    client, member, contoso_integration, fake_microsoft
):
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)
    client.cookies[LAST_METHOD_COOKIE] = "microsoft"  # as the sign-in left it

    response = client.post("/profile/microsoft/disconnect/")  # the session opened with it ends

    assert response.url == "/signin/"
    assert response.cookies[LAST_METHOD_COOKIE].value == "password"
    assert password_first(client.get("/signin/"))
