"""An integration once added, through the portal's views: suspended without a licence, disabled,
enabled, deleted and verified again (Microsoft answered by FakeMicrosoft), the pages without
configuration, and who may touch it at all."""

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import make_user, sign_in
from tenantlink.sso import microsoft as microsoft_module
from tenantlink.sso.models import Connection, Integration
from tenantlink.sso.tests.conftest import CONTOSO
from tenantlink.sso.tests.integration_helpers import (
    actions,
    active_integration,
    approved,
    come_back,
    contoso_integration,
    start,
)


def test_without_a_licence_integrations_are_suspended_not_deleted(admin_client, fake_microsoft, contoso):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(state))
    integration = contoso_integration()
    contoso.revoke_licences(Licence.Product.SSO)

    page = admin_client.get("/company/sso/").content.decode()
    assert "Suspended: no valid licence" in page
    assert "Add integration" not in page
    for path in ("add/", f"{integration.pk}/consent/", f"{integration.pk}/verify/", f"{integration.pk}/enable/"):
        response = admin_client.post(f"/company/sso/{path}", {"tenant": "fabrikam.onmicrosoft.com"}, follow=True)
        assert "no valid single sign-on licence" in response.content.decode(), path
    assert Integration.objects.count() == 1

    contoso.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    assert "Suspended" not in admin_client.get("/company/sso/").content.decode()
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE


def test_disable_and_enable_keep_the_connections(admin_client, fake_microsoft, member):
    integration = active_integration(admin_client, fake_microsoft)
    Connection.objects.create(
        user=member, integration=integration, tid=CONTOSO, oid="2a594cc8-efe5-4524-a2e7-24cf8f56e958"
    )

    # The button asks first: it signs out whoever signed in with Microsoft through it.
    asked = admin_client.get(f"/company/sso/{integration.pk}/disable/").content.decode()
    assert "Disable contoso.onmicrosoft.com?" in asked and "signed out at once" in asked
    assert "1 user's Microsoft connection is kept for when it is enabled again" in asked
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE and not actions().count(Action.SSO_INTEGRATION_DISABLED)

    admin_client.post(f"/company/sso/{integration.pk}/disable/")
    integration.refresh_from_db()
    assert integration.status == Integration.Status.DISABLED
    assert (
        "was not active, so nothing changed"
        in admin_client.get(f"/company/sso/{integration.pk}/disable/", follow=True).content.decode()
    )  # Back to the question, once disabled
    page = admin_client.get("/company/sso/").content.decode()
    assert "Disabled" in page and "Enable" in page

    admin_client.post(f"/company/sso/{integration.pk}/enable/")
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert integration.connections.count() == 1
    assert actions()[-2:] == [Action.SSO_INTEGRATION_DISABLED, Action.SSO_INTEGRATION_ENABLED]

    # A second tab: enabling again says so and records nothing; so does disabling twice.
    page = admin_client.post(f"/company/sso/{integration.pk}/enable/", follow=True).content.decode()
    assert "contoso.onmicrosoft.com was not disabled, so nothing changed." in page
    admin_client.post(f"/company/sso/{integration.pk}/disable/")
    page = admin_client.post(f"/company/sso/{integration.pk}/disable/", follow=True).content.decode()
    assert "contoso.onmicrosoft.com was not active, so nothing changed." in page
    assert actions().count(Action.SSO_INTEGRATION_DISABLED) == 2
    assert actions().count(Action.SSO_INTEGRATION_ENABLED) == 1


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_two_tabs_at_the_same_moment_change_and_record_it_once(admin_client, fake_microsoft, monkeypatch, action):
    """Both tabs read the integration before either writes: the database decides which one
    changed it; the other says nothing changed."""
    integration = active_integration(admin_client, fake_microsoft)
    if action == "enable":
        integration.disable()
    read_by_the_other_tab = Integration.objects.get(pk=integration.pk)
    admin_client.post(f"/company/sso/{integration.pk}/{action}/")
    monkeypatch.setattr("tenantlink.sso.views.integrations._integration", lambda request, pk: read_by_the_other_tab)
    page = admin_client.post(f"/company/sso/{integration.pk}/{action}/", follow=True).content.decode()
    assert f"was not {'active' if action == 'disable' else 'disabled'}, so nothing changed." in page
    recorded = Action.SSO_INTEGRATION_DISABLED if action == "disable" else Action.SSO_INTEGRATION_ENABLED
    assert actions().count(recorded) == 1


def test_delete_says_how_many_connections_go_and_removes_them(admin_client, fake_microsoft, member, contoso):
    integration = active_integration(admin_client, fake_microsoft)
    carol = make_user("carol", contoso)
    for user, oid in (
        (member, "15550e69-065f-4d2c-b54d-9fd19885ed4c"),
        (carol, "38d28601-c6aa-424e-b88a-441c835164d1"),
    ):
        Connection.objects.create(user=user, integration=integration, tid=CONTOSO, oid=oid)
    assert "2 of 3 active users (67%)" in admin_client.get("/company/sso/").content.decode()

    confirmation = admin_client.get(f"/company/sso/{integration.pk}/delete/").content.decode()
    assert "2 users' Microsoft connections are removed." in confirmation
    # Deleting here leaves the app approved at Microsoft: the page says where to remove it.
    assert "Enterprise applications → Tenantlink → Properties → Delete" in confirmation

    page = admin_client.post(f"/company/sso/{integration.pk}/delete/", follow=True).content.decode()
    assert "contoso.onmicrosoft.com is deleted; 2 Microsoft connections were removed." in page
    assert not Integration.objects.exists() and not Connection.objects.exists()
    assert User.objects.filter(pk__in=[member.pk, carol.pk], is_active=True).count() == 2
    assert AuditEvent.objects.get(action=Action.SSO_INTEGRATION_DELETED).details["removed_connections"] == 2
    # Each person's own history says their connection went, who removed it and why.
    removals = AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED).order_by("target_label")
    assert [(e.target_user, e.actor_label, e.company_id, e.details["reason"]) for e in removals] == [
        (member, "alice", contoso.pk, "integration_deleted"),
        (carol, "alice", contoso.pk, "integration_deleted"),
    ]
    detail = admin_client.get(f"/company/audit/{removals[1].pk}/").content.decode()
    assert "The integration was deleted" in detail and "38d28601-c6aa-424e-b88a-441c835164d1" in detail


def test_deleting_one_nobody_connected_through_says_so(admin_client, fake_microsoft):
    integration = active_integration(admin_client, fake_microsoft)
    confirmation = admin_client.get(f"/company/sso/{integration.pk}/delete/").content.decode()
    assert "Nobody has connected a Microsoft account through it." in confirmation
    assert "0 users" not in confirmation and "They sign in with their username" not in confirmation


def test_two_tabs_deleting_at_the_same_moment_delete_and_record_it_once(
    admin_client, fake_microsoft, monkeypatch, member
):
    """Both tabs read the integration before either deletes it: the second finds it gone."""
    integration = active_integration(admin_client, fake_microsoft)
    Connection.objects.create(
        user=member, integration=integration, tid=CONTOSO, oid="15550e69-065f-4d2c-b54d-9fd19885ed4c"
    )
    read_by_the_other_tab = Integration.objects.get(pk=integration.pk)
    admin_client.post(f"/company/sso/{integration.pk}/delete/", follow=True)  # its message read
    monkeypatch.setattr("tenantlink.sso.views.integrations._integration", lambda request, pk: read_by_the_other_tab)

    page = admin_client.post(f"/company/sso/{integration.pk}/delete/", follow=True).content.decode()

    assert "contoso.onmicrosoft.com was already deleted. Nothing changed." in page
    assert "is deleted" not in page
    [event] = AuditEvent.objects.filter(action=Action.SSO_INTEGRATION_DELETED)
    assert event.details["removed_connections"] == 1
    assert AuditEvent.objects.filter(action=Action.SSO_DISCONNECTED, target_user=member).count() == 1


def test_verify_again_notices_that_the_app_was_removed(admin_client, fake_microsoft):
    integration = active_integration(admin_client, fake_microsoft)
    fake_microsoft.app_in.clear()
    page = admin_client.post(f"/company/sso/{integration.pk}/verify/", follow=True).content.decode()
    integration.refresh_from_db()
    assert integration.status == Integration.Status.FAILED
    assert "does not (or no longer) know the app" in page


def test_verify_again_while_microsoft_is_down_keeps_a_working_integration(admin_client, fake_microsoft):
    integration = active_integration(admin_client, fake_microsoft)
    fake_microsoft.fail_with(httpx.Response(503, text="busy"))
    page = admin_client.post(f"/company/sso/{integration.pk}/verify/", follow=True).content.decode()
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert "Microsoft could not be reached" in page
    assert AuditEvent.objects.filter(action=Action.SSO_VERIFICATION_FAILED, details__code="HTTP 503").exists()


def test_without_configuration_the_pages_say_so(admin_client, settings):
    settings.ENTRA_CONFIGURATION_PROBLEM = "ENTRA_CLIENT_ID is not set."
    page = admin_client.get("/company/sso/").content.decode()
    assert "Single sign-on with Microsoft is not configured on this installation." in page
    assert "ENTRA_CLIENT_ID" not in page
    assert "Add integration" not in page
    response = admin_client.get("/company/sso/add/", follow=True)
    assert "not configured on this installation" in response.content.decode()
    # Nothing else is affected.
    assert admin_client.get("/company/users/").status_code == 200


def integration_urls(integration):
    return [
        ("get", "/company/sso/"),
        ("get", "/company/sso/add/"),
        ("post", "/company/sso/add/"),
        ("post", f"/company/sso/{integration.pk}/consent/"),
        ("post", f"/company/sso/{integration.pk}/verify/"),
        ("post", f"/company/sso/{integration.pk}/disable/"),
        ("post", f"/company/sso/{integration.pk}/enable/"),
        ("get", f"/company/sso/{integration.pk}/delete/"),
        ("post", f"/company/sso/{integration.pk}/delete/"),
    ]


def test_members_are_not_allowed_and_other_companies_find_nothing(admin_client, fake_microsoft, member, outsider):
    integration = active_integration(admin_client, fake_microsoft)
    member_client, outsider_client = Client(), Client()
    sign_in(member_client, member)
    sign_in(outsider_client, outsider)
    for method, url in integration_urls(integration):
        assert getattr(member_client, method)(url, {"tenant": CONTOSO}).status_code == 403, url
        if str(integration.pk) in url:
            assert getattr(outsider_client, method)(url, {"tenant": CONTOSO}).status_code == 404, url
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    # Nobody signed in is sent to sign in.
    assert Client().get("/company/sso/").url.startswith("/signin/")


def test_an_integration_disabled_or_deleted_while_microsoft_answers_stays_so(admin_client, fake_microsoft, monkeypatch):
    integration = active_integration(admin_client, fake_microsoft)
    real = microsoft_module.confirm_app_in_tenant

    def meanwhile_disabled(tenant_id, **options):
        Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.DISABLED)
        return real(tenant_id, **options)

    monkeypatch.setattr(microsoft_module, "confirm_app_in_tenant", meanwhile_disabled)
    admin_client.post(f"/company/sso/{integration.pk}/verify/")
    integration.refresh_from_db()
    assert integration.status == Integration.Status.DISABLED

    def meanwhile_deleted(tenant_id, **options):
        Integration.objects.filter(pk=integration.pk).delete()
        return real(tenant_id, **options)

    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.ACTIVE)
    monkeypatch.setattr(microsoft_module, "confirm_app_in_tenant", meanwhile_deleted)
    admin_client.post(f"/company/sso/{integration.pk}/verify/")
    assert not Integration.objects.exists()
