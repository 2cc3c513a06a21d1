"""Emails come in the recipient's language: their own choice, else the language they last signed
in with, else the portal's default — never the language of the person (or process) whose action
sends them."""

import io

from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from tenantlink.accounts.models import User
from tenantlink.conftest import make_user, sign_in
from tenantlink.sso.models import Connection, Integration
from tenantlink.sso.tests.conftest import CONTOSO
from tenantlink.sso.tests.microsoft_signin_helpers import BEN_OID, microsoft_signin

REMOVED = {
    "en": "Microsoft sign-in was removed from your Tenantlink account",
    "sv": "Inloggning med Microsoft har tagits bort från ditt konto på Tenantlink",
    "fi": "Microsoft-kirjautuminen poistettiin Tenantlink-tililtäsi",
}


def browser(language):
    return Client(headers={"accept-language": language})


def swedish_administrator(contoso):
    return make_user("astrid", contoso, User.Role.ADMINISTRATOR, language="sv")


def connected(user, integration):
    return Connection.objects.create(
        user=user, integration=integration, tid=CONTOSO, oid=BEN_OID, username="ben@contoso.onmicrosoft.com"
    )


def test_a_member_disconnected_by_an_administrator_is_told_in_the_language_he_uses(
    member, contoso, contoso_integration
):
    sign_in(browser("fi"), member)  # Bob leaves the language to his browser, which asks for Finnish
    connected(member, contoso_integration)

    sign_in(administrator := browser("sv"), swedish_administrator(contoso))
    administrator.post(f"/company/users/{member.pk}/microsoft/disconnect/")

    assert mail.outbox[-1].subject == REMOVED["fi"]
    assert "Microsoft-tilin ben@contoso.onmicrosoft.com" in mail.outbox[-1].body


def test_a_member_who_never_signed_in_is_told_in_the_portals_language(member, contoso, contoso_integration):
    connected(member, contoso_integration)

    sign_in(administrator := browser("sv"), swedish_administrator(contoso))
    administrator.post(f"/company/users/{member.pk}/microsoft/disconnect/")

    assert mail.outbox[-1].subject == REMOVED["en"]


def test_a_members_own_choice_wins_over_the_language_he_last_used(member, contoso, contoso_integration):
    sign_in(browser("fi"), member)
    User.objects.filter(pk=member.pk).update(language="sv")
    connected(member, contoso_integration)

    sign_in(administrator := browser("en"), make_user("ann", contoso, User.Role.ADMINISTRATOR))
    administrator.post(f"/company/users/{member.pk}/microsoft/disconnect/")

    assert mail.outbox[-1].subject == REMOVED["sv"]


def test_a_microsoft_sign_in_remembers_the_language_too(client, member, contoso_integration, fake_microsoft):
    connected(member, contoso_integration)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fi"

    assert microsoft_signin(client, fake_microsoft).url == "/portal/"

    member.refresh_from_db()
    assert member.last_language == "fi"


def test_the_leaver_check_writes_to_an_administrator_in_the_language_she_uses(
    admin, member, contoso_integration, fake_microsoft
):
    sign_in(browser("fi"), admin)
    fake_microsoft.app_in.add(CONTOSO)
    fake_microsoft.roles_in.add(CONTOSO)
    fake_microsoft.accounts[BEN_OID] = False  # Bob was disabled at Microsoft
    Integration.objects.filter(pk=contoso_integration.pk).update(leaver_check=Integration.LeaverCheck.ON)
    connected(member, contoso_integration)

    translation.deactivate()  # the runner is a process of its own, in no one's language
    call_command("check_leavers", stdout=io.StringIO())

    [notice] = mail.outbox
    assert notice.subject == "Tenantlink: yrityksestä Contoso Ltd lähteneiden pääsy poistettiin"
    assert "Microsoft-tili on poistettu käytöstä" in notice.body
