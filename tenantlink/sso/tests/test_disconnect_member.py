"""An administrator disconnects a member's Microsoft account: the Disconnect button on the member's
page opens a page that says what will happen to whom, and only its form removes the connection.
Members may not, and administrators of another company find nothing."""

from django.core import mail

from tenantlink.accounts.tests.company_user_helpers import confirmation
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import sign_in
from tenantlink.sso.models import Connection
from tenantlink.sso.tests.conftest import CONTOSO

BEN_OID = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


def connected(member, integration):
    return Connection.objects.create(
        user=member, integration=integration, tid=CONTOSO, oid=BEN_OID, username="ben@contoso.onmicrosoft.com"
    )


def text(response):
    return response.content.decode()


def test_disconnecting_asks_first_and_says_what_happens_to_whom(admin_client, member, contoso_integration):
    connected(member, contoso_integration)
    user_page = text(admin_client.get(f"/company/users/{member.pk}/"))
    address = f"/company/users/{member.pk}/microsoft/disconnect/"
    assert f'<a class="button danger" href="{address}">Disconnect</a>' in user_page

    page = admin_client.get(address)

    assert page.status_code == 200
    assert "<h1>Disconnect the Microsoft account of Bob?</h1>" in text(page)
    assert (
        "The portal account of Bob (bob) will no longer be connected to the Microsoft account "
        "ben@contoso.onmicrosoft.com, and the sessions they opened with Microsoft end at once."
    ) in text(page)
    assert "They are told by email." in text(page)
    form = confirmation(page)
    assert 'name="csrfmiddlewaretoken"' in form and '<button class="danger" type="submit">Disconnect</button>' in form
    assert f'<a href="/company/users/{member.pk}/">Cancel</a>' in form
    # Only asked so far: the connection is there, nobody was told, nothing was recorded.
    assert Connection.objects.filter(user=member).exists()
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED).exists()

    response = admin_client.post(address, follow=True)
    assert "Microsoft connection is removed" in text(response).replace("&#x27;", "'")
    assert not Connection.objects.exists()


def test_the_page_warns_that_a_required_microsoft_sign_in_asks_them_to_connect_again(
    admin_client, member, contoso, contoso_integration
):
    connected(member, contoso_integration)
    address = f"/company/users/{member.pk}/microsoft/disconnect/"
    warning = "Your company requires Microsoft sign-in"
    assert warning not in text(admin_client.get(address))

    contoso.microsoft_required = True
    contoso.save(update_fields=["microsoft_required"])

    assert warning in text(admin_client.get(address))


def test_for_a_deactivated_member_the_page_says_that_reactivation_comes_first(
    admin_client, member, contoso_integration
):
    # As after the leaver check: deactivated, and disconnected so that a reactivation lasts.
    connected(member, contoso_integration)
    member.deactivate()

    page = text(admin_client.get(f"/company/users/{member.pk}/microsoft/disconnect/"))

    assert "once you reactivate them, they sign in with their username, password and second factor" in page
    assert "They sign in with their username, password and second factor again" not in page


def test_a_member_already_disconnected_gets_no_page_that_asks(admin_client, member, contoso_integration):
    response = admin_client.get(f"/company/users/{member.pk}/microsoft/disconnect/", follow=True)

    assert response.redirect_chain[-1][0] == f"/company/users/{member.pk}/"
    assert "Bob has no Microsoft connection." in text(response)


def test_a_member_cannot_open_the_page(client, admin, member, contoso_integration):
    connected(admin, contoso_integration)
    sign_in(client, member)

    assert client.get(f"/company/users/{admin.pk}/microsoft/disconnect/").status_code == 403
    assert client.post(f"/company/users/{admin.pk}/microsoft/disconnect/").status_code == 403
    assert Connection.objects.filter(user=admin).exists()


def test_another_companys_administrator_finds_nothing(client, member, outsider, contoso_integration):
    connected(member, contoso_integration)
    sign_in(client, outsider)

    response = client.get(f"/company/users/{member.pk}/microsoft/disconnect/")

    assert response.status_code == 404
    assert "Bob" not in text(response) and "ben@contoso" not in text(response)
    assert Connection.objects.filter(user=member).exists()
