"""Flow 5 through the portal's views: a user disconnects their Microsoft account in My Profile, or
an administrator disconnects a member's; the notice the member gets, in their own language and
time zone; and another company's administrator cannot."""

import datetime
import re
import zoneinfo

from django.core import mail
from django.test import Client

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import sign_in
from tenantlink.sso.models import Connection
from tenantlink.sso.tests.microsoft_signin_helpers import connected, microsoft_signin, page_text, password_signin_of


def test_a_user_disconnects_in_my_profile(client, member, contoso_integration):
    connected(member, contoso_integration)
    sign_in(client, member)
    assert "Deactivate single sign-on" in page_text(client.get("/profile/settings/"))
    assert "signed out here at once" not in page_text(client.get("/profile/microsoft/disconnect/"))
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
    # Turned off by choice: the next password sign-in goes to the portal, not to the offer.
    assert password_signin_of(Client(), member, step=1).redirect_chain[-1][0] == "/portal/"


def test_a_session_opened_with_the_account_is_told_first_that_it_ends(
    client, member, contoso_integration, fake_microsoft
):
    connected(member, contoso_integration)
    microsoft_signin(client, fake_microsoft)

    asked = page_text(client.get("/profile/microsoft/disconnect/"))
    assert "You signed in with this Microsoft account, so you are signed out here at once." in asked
    assert client.post("/profile/microsoft/disconnect/").url == "/signin/"


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
    # Not bob's choice: his next password sign-in offers Microsoft again.
    assert password_signin_of(Client(), member).redirect_chain[-1][0] == "/sso/offer/?next=%2Fportal%2F"


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
    when = re.search(
        r"Den (\d+) (\w+) (\d{4}) (\d\d):\d\d \(Asia/Tokyo\) kopplades Microsoft-kontot ben@", message.body
    )
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
