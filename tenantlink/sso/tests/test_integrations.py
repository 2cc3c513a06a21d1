"""Flow 2 through the portal's views: an administrator adds a tenant, approves it at Microsoft
(answered here by FakeMicrosoft), and the integration becomes active only when Microsoft itself
confirms it. The end-to-end tests do the same against the Entra emulator."""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.conftest import PASSWORD, code_for, make_user, sign_in
from tenantlink.sso import microsoft as microsoft_module
from tenantlink.sso.models import Connection, Integration, PendingAuthorization
from tenantlink.sso.tests.conftest import AUTHORITY, CLIENT_SECRET, CONTOSO, FABRIKAM


def start(client, tenant="contoso.onmicrosoft.com", name=""):
    """Add an integration; returns the `state` the portal sent to Microsoft."""
    response = client.post("/company/sso/add/", {"tenant": tenant, "display_name": name})
    assert response.status_code == 302, response.content.decode()[:2000]
    location = urlsplit(response.url)
    assert location.path == f"/{CONTOSO if 'contoso' in tenant or tenant == CONTOSO else FABRIKAM}/v2.0/adminconsent"
    return parse_qs(location.query)["state"][0]


def come_back(client, microsoft=None, **params):
    """Microsoft redirects the administrator to the consent callback; returns the page shown.
    Where the portal then asks for a sign-in at the tenant, `microsoft` signs the administrator
    in there (as a Microsoft administrator of the tenant just did when approving)."""
    response = client.get("/sso/consent/callback/", params)
    if microsoft is not None and response.url.startswith(AUTHORITY):
        response = microsoft.sign_in(client, response)
    assert response.status_code == 302 and response.url == "/company/sso/", response
    return client.get(response.url).content.decode()


def approved(state, tenant=CONTOSO):
    return {"admin_consent": "True", "tenant": tenant, "scope": "openid profile email", "state": state}


def contoso_integration():
    return Integration.objects.get(tenant_id=CONTOSO)


def actions():
    return list(AuditEvent.objects.filter(action__startswith="sso.").order_by("id").values_list("action", flat=True))


def test_the_page_shows_the_licence_and_how_consent_works(admin_client, fake_microsoft, contoso):
    page = admin_client.get("/company/sso/").content.decode()
    assert "Your single sign-on licence is valid until" in page
    assert "No tenant is connected yet." in page
    assert "Add integration" in page
    assert "Grant admin consent for your organization" in page


def test_an_administrator_connects_a_tenant(admin_client, fake_microsoft, admin):
    state = start(admin_client, "contoso.onmicrosoft.com")
    integration = contoso_integration()
    assert (integration.status, integration.display_name, integration.created_by) == (
        Integration.Status.PENDING,
        "contoso.onmicrosoft.com",
        admin,
    )

    fake_microsoft.app_in.add(CONTOSO)  # the Microsoft administrator approved
    # The first time, the portal then asks Microsoft to sign someone of that tenant in, there only.
    to_microsoft = admin_client.get("/sso/consent/callback/", approved(state))
    location = urlsplit(to_microsoft.url)
    asked = parse_qs(location.query)
    assert location.path == f"/{CONTOSO}/oauth2/v2.0/authorize"
    assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
    assert contoso_integration().status == Integration.Status.PENDING
    response = fake_microsoft.sign_in(admin_client, to_microsoft, preferred_username="ada@contoso.onmicrosoft.com")
    page = admin_client.get(response.url).content.decode()

    assert "contoso.onmicrosoft.com is active: Microsoft confirmed the approval." in page
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert integration.consent_completed_at and integration.last_verified_at and integration.tenant_signed_in_at
    assert actions() == [
        Action.SSO_INTEGRATION_ADDED,
        Action.SSO_CONSENT_STARTED,
        Action.SSO_CONSENT_SUCCEEDED,
        Action.SSO_VERIFIED,
    ]
    assert all(
        event.details["tenant"] == CONTOSO and event.actor == admin
        for event in AuditEvent.objects.filter(action__startswith="sso.")
    )
    # Who signed in at the tenant, for the record.
    assert AuditEvent.objects.get(action=Action.SSO_VERIFIED).details["microsoft_username"] == (
        "ada@contoso.onmicrosoft.com"
    )


def test_the_tenant_in_the_callback_is_never_trusted(admin_client, fake_microsoft):
    state = start(admin_client)
    # A callback that claims success for Contoso: Microsoft has no app there, so nothing is active.
    page = come_back(admin_client, fake_microsoft, **approved(state))
    assert contoso_integration().status == Integration.Status.FAILED
    assert "does not (or no longer) know the app" in page
    assert "Grant admin consent for your organization" in page
    assert "AADSTS700016" in page
    assert AuditEvent.objects.get(action=Action.SSO_VERIFICATION_FAILED).details["code"] == "AADSTS700016"


def test_a_claimed_other_tenant_changes_nothing_about_which_tenant_is_checked(admin_client, fake_microsoft):
    state = start(admin_client)
    fake_microsoft.app_in.add(FABRIKAM)
    come_back(admin_client, fake_microsoft, **approved(state, tenant=FABRIKAM))
    assert contoso_integration().status == Integration.Status.FAILED
    assert str(fake_microsoft.requests[-1].url).endswith(f"/{CONTOSO}/oauth2/v2.0/token")


@pytest.mark.parametrize(
    ("params", "reason", "code", "words"),
    [
        (
            {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent."},
            "declined",
            "AADSTS65004",
            "declined the permissions",
        ),
        ({"error": "access_denied", "error_subcode": "cancel"}, "cancelled", "access_denied", "cancelled"),
        (
            {
                "error": "access_denied",
                "error_description": "AADSTS50020: User account from identity provider does not exist in tenant.",
            },
            "wrong_tenant",
            "AADSTS50020",
            "belongs to another organization",
        ),
        (
            {
                "error": "consent_required",
                "error_description": "AADSTS65001: The user or administrator has not consented.",
            },
            "approval_required",
            "AADSTS65001",
            "must approve the app for the whole organization",
        ),
        ({"error": "invalid_request"}, "refused", "invalid_request", "Microsoft refused the request."),
        # Microsoft failing for now: try again later, not "refused".
        ({"error": "server_error"}, "unavailable", "server_error", "Try again in a few minutes."),
        ({"error": "temporarily_unavailable"}, "unavailable", "temporarily_unavailable", "Try again in a few minutes."),
    ],
)
def test_each_error_from_microsoft_explains_itself(admin_client, fake_microsoft, params, reason, code, words):
    state = start(admin_client)
    page = come_back(admin_client, state=state, **params)

    integration = contoso_integration()
    assert (integration.status, integration.failure_reason, integration.failure_code) == (
        Integration.Status.FAILED,
        reason,
        code,
    )
    assert words in page
    event = AuditEvent.objects.get(action=Action.SSO_CONSENT_FAILED)
    assert (event.outcome, event.details["code"], event.details["error"]) == (Outcome.FAILURE, code, params["error"])
    assert not fake_microsoft.requests[1:]  # no verification after an error: only the discovery at "add"


def test_a_failed_consent_can_be_retried(admin_client, fake_microsoft):
    state = start(admin_client)
    come_back(admin_client, state=state, error="access_denied", error_subcode="cancel")
    integration = contoso_integration()
    assert "Retry consent" in admin_client.get("/company/sso/").content.decode()

    response = admin_client.post(f"/company/sso/{integration.pk}/consent/")
    new_state = parse_qs(urlsplit(response.url).query)["state"][0]
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(new_state))
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE and not integration.failure_reason


@pytest.mark.parametrize("how", ["verify", "own consent callback"])
def test_a_tenant_another_company_connected_cannot_be_claimed(
    admin_client, fake_microsoft, contoso, outsider, northwind, how
):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(state))  # Contoso connected its tenant
    northwind.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    olga = Client()
    sign_in(olga, outsider)
    # Northwind's administrator adds Contoso's tenant but never approves anything at Microsoft.
    response = olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    claimed = Integration.objects.get(company=northwind)
    if how == "verify":
        page = olga.post(f"/company/sso/{claimed.pk}/verify/", follow=True).content.decode()
    else:
        page = come_back(olga, fake_microsoft, **approved(parse_qs(urlsplit(response.url).query)["state"][0]))
    assert "This tenant is already connected to another company in the portal" in page
    claimed.refresh_from_db()
    assert (claimed.status, claimed.failure_reason) == (Integration.Status.FAILED, "tenant_taken")
    # Contoso's own integration works on, and can be verified again.
    own = Integration.objects.get(company=contoso)
    admin_client.post(f"/company/sso/{own.pk}/verify/")
    own.refresh_from_db()
    assert own.status == Integration.Status.ACTIVE


def test_two_companies_verifying_one_tenant_at_the_same_moment_cannot_both_win(
    admin_client, fake_microsoft, contoso, outsider, northwind, monkeypatch
):
    from tenantlink.sso import flows

    northwind.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    olga = Client()
    sign_in(olga, outsider)
    start(admin_client)
    olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    fake_microsoft.app_in.add(CONTOSO)
    # Someone of the tenant signed in for each (a guest of Contoso's working at Northwind, say),
    # and each asked "does another company have it?" before the other had saved its answer.
    Integration.objects.update(tenant_signed_in_at=timezone.now())
    monkeypatch.setattr(flows, "_held_by_another_company", lambda integration: False)
    for browser, company in ((admin_client, contoso), (olga, northwind)):
        browser.post(f"/company/sso/{Integration.objects.get(company=company).pk}/verify/")
    statuses = dict(Integration.objects.values_list("company__name", "status"))
    assert statuses == {"Contoso Ltd": Integration.Status.ACTIVE, "Northwind Traders": Integration.Status.FAILED}
    assert Integration.objects.get(company=northwind).failure_reason == "tenant_taken"


@pytest.mark.parametrize("status", [Integration.Status.ACTIVE, Integration.Status.DISABLED])
def test_cancelling_a_new_approval_leaves_a_working_integration_as_it_was(admin_client, fake_microsoft, status):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(state))
    integration = contoso_integration()
    Integration.objects.filter(pk=integration.pk).update(status=status)

    response = admin_client.post(f"/company/sso/{integration.pk}/consent/")
    page = come_back(admin_client, state=parse_qs(urlsplit(response.url).query)["state"][0], error="access_denied")
    assert "The approval at Microsoft was cancelled" in page
    integration.refresh_from_db()
    assert integration.status == status and not integration.failure_reason
    assert actions()[-1] == Action.SSO_CONSENT_FAILED


@pytest.mark.parametrize("state", [None, "", "made-up-state", "x" * 500])
def test_a_forged_callback_activates_nothing(admin_client, fake_microsoft, state):
    start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    params = {"admin_consent": "True", "tenant": CONTOSO}
    if state is not None:
        params["state"] = state
    page = come_back(admin_client, **params)
    assert "does not belong to a set-up started in this browser" in page
    assert contoso_integration().status == Integration.Status.PENDING
    event = AuditEvent.objects.get(action=Action.SSO_CONSENT_FAILED)
    assert (event.outcome, event.details["reason"]) == (Outcome.DENIED, "state")


def test_a_state_works_once(admin_client, fake_microsoft):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(state))
    Integration.objects.update(status=Integration.Status.PENDING)
    page = come_back(admin_client, fake_microsoft, **approved(state))
    assert "does not belong to a set-up started in this browser" in page
    assert contoso_integration().status == Integration.Status.PENDING


def test_an_expired_state_activates_nothing(admin_client, fake_microsoft):
    state = start(admin_client)
    PendingAuthorization.objects.update(expires_at=timezone.now())
    fake_microsoft.app_in.add(CONTOSO)
    assert "does not belong" in come_back(admin_client, fake_microsoft, **approved(state))
    assert contoso_integration().status == Integration.Status.PENDING


def test_a_state_from_another_browser_activates_nothing(admin_client, fake_microsoft, admin):
    state = start(admin_client)
    other_browser = Client()  # the same administrator, another browser (and the phone's next code)
    other_browser.post("/signin/", {"username": admin.username, "password": PASSWORD})
    assert other_browser.post("/signin/verify/", {"code": code_for(admin, 1)}).url == "/portal/"
    fake_microsoft.app_in.add(CONTOSO)
    assert "does not belong" in come_back(other_browser, fake_microsoft, **approved(state))
    assert contoso_integration().status == Integration.Status.PENDING
    # The state was not used up by the attempt: the browser that started can still finish.
    come_back(admin_client, fake_microsoft, **approved(state))
    assert contoso_integration().status == Integration.Status.ACTIVE


def test_a_licence_that_ends_while_at_microsoft_changes_nothing(admin_client, fake_microsoft, contoso):
    state = start(admin_client)
    contoso.revoke_licences(Licence.Product.SSO)
    fake_microsoft.app_in.add(CONTOSO)
    page = come_back(admin_client, fake_microsoft, **approved(state))
    assert "licence ended while you were at Microsoft" in page
    assert contoso_integration().status == Integration.Status.PENDING
    assert len(fake_microsoft.requests) == 1  # nothing asked of Microsoft after the licence ended


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


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "This field is required."),
        ("not a tenant", "neither a tenant ID"),
        ("7f3c2a9e-1d4b-4e8a-9c6f", "neither a tenant ID"),
        ("organizations", "Enter your own organization"),
        ("9188040d-6c67-4c5b-b112-36a304b66dad", "Personal Microsoft accounts cannot be used"),
        ("nosuch.onmicrosoft.com", "Microsoft does not know this tenant ID or domain"),
        ("00000000-1111-2222-3333-444444444444", "Microsoft does not know this tenant ID or domain"),
    ],
)
def test_a_bad_tenant_gets_a_clear_message_and_creates_nothing(admin_client, fake_microsoft, typed, words):
    response = admin_client.post("/company/sso/add/", {"tenant": typed})
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not Integration.objects.exists()


def test_a_name_that_turns_the_text_around_is_refused_and_kept_to_correct(admin_client, fake_microsoft):
    response = admin_client.post("/company/sso/add/", {"tenant": "contoso.onmicrosoft.com", "display_name": "HQ\u202e"})
    assert response.status_code == 200
    assert "characters that turn the direction of the text" in response.content.decode()
    assert 'value="contoso.onmicrosoft.com"' in response.content.decode()
    assert not Integration.objects.exists()


def test_microsoft_unreachable_while_adding_keeps_the_form(admin_client, fake_microsoft):
    fake_microsoft.fail_with(httpx.ConnectTimeout("slow"))
    response = admin_client.post("/company/sso/add/", {"tenant": "contoso.onmicrosoft.com", "display_name": "HQ"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Microsoft could not be reached or did not answer in time" in page
    assert 'value="contoso.onmicrosoft.com"' in page and 'value="HQ"' in page
    assert not Integration.objects.exists()


def test_one_tenant_appears_once_per_company_but_two_companies_may_add_it(
    admin_client, fake_microsoft, outsider, client
):
    # (Only one of them can have it working: test_a_tenant_another_company_connected_cannot_be_claimed.)
    start(admin_client, CONTOSO, name="Contoso HQ")
    for pasted in ("contoso.onmicrosoft.com", " Contoso.onmicrosoft.com. ", f"{{{CONTOSO.upper()}}}"):
        response = admin_client.post("/company/sso/add/", {"tenant": pasted})
        assert "This tenant is already in your list (Contoso HQ, Pending consent)." in response.content.decode()

    outsider.company.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    other_admin = Client()
    sign_in(other_admin, outsider)
    start(other_admin, "contoso.onmicrosoft.com")
    assert Integration.objects.filter(tenant_id=CONTOSO).count() == 2


def active_integration(client, fake_microsoft):
    state = start(client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(client, fake_microsoft, **approved(state))
    return contoso_integration()


def test_disable_and_enable_keep_the_connections(admin_client, fake_microsoft, member):
    integration = active_integration(admin_client, fake_microsoft)
    Connection.objects.create(
        user=member, integration=integration, tid=CONTOSO, oid="2a594cc8-efe5-4524-a2e7-24cf8f56e958"
    )

    admin_client.post(f"/company/sso/{integration.pk}/disable/")
    integration.refresh_from_db()
    assert integration.status == Integration.Status.DISABLED
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
    assert "2 of 3 active users (67 %)" in admin_client.get("/company/sso/").content.decode()

    confirmation = admin_client.get(f"/company/sso/{integration.pk}/delete/").content.decode()
    assert "2 users' Microsoft connections are removed." in confirmation
    # Deleting here leaves the app approved at Microsoft: the page says where to remove it.
    assert "Enterprise applications → Tenantlink → Properties → Delete" in confirmation

    page = admin_client.post(f"/company/sso/{integration.pk}/delete/", follow=True).content.decode()
    assert "contoso.onmicrosoft.com is deleted; 2 Microsoft connections were removed." in page
    assert not Integration.objects.exists() and not Connection.objects.exists()
    assert User.objects.filter(pk__in=[member.pk, carol.pk], is_active=True).count() == 2
    assert AuditEvent.objects.get(action=Action.SSO_INTEGRATION_DELETED).details["removed_connections"] == 2


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


def test_another_administrators_state_cannot_be_used(admin_client, fake_microsoft, contoso):
    """Bound to the administrator, not just the browser: a colleague signing in in the same
    browser after the first administrator cannot finish the first one's consent."""
    state = start(admin_client)
    colleague = make_user("carla", contoso, User.Role.ADMINISTRATOR)
    admin_client.post("/signout/")
    sign_in(admin_client, colleague)
    fake_microsoft.app_in.add(CONTOSO)
    assert "does not belong" in come_back(admin_client, fake_microsoft, **approved(state))
    assert contoso_integration().status == Integration.Status.PENDING


def test_no_secret_reaches_a_page_a_log_line_or_the_audit_log(admin_client, fake_microsoft, caplog):
    caplog.set_level("DEBUG")
    pages = [admin_client.get("/company/sso/add/")]
    state = start(admin_client)
    pages.append(admin_client.get(f"/sso/consent/callback/?state={state}&admin_consent=True", follow=True))
    fake_microsoft.fail_with(httpx.ReadTimeout("slow"))
    integration = contoso_integration()
    pages.append(admin_client.post(f"/company/sso/{integration.pk}/verify/", follow=True))
    pages.append(admin_client.get("/company/audit/"))
    pages.append(admin_client.get("/company/audit/export.csv"))
    for response in pages:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert CLIENT_SECRET.encode() not in body
        assert CLIENT_SECRET not in str(response.headers)
    assert CLIENT_SECRET not in str(list(AuditEvent.objects.values()))
    assert "Microsoft POST" in caplog.text  # the calls were logged...
    assert CLIENT_SECRET not in caplog.text  # ...without the secret


def test_an_integration_disabled_or_deleted_while_microsoft_answers_stays_so(admin_client, fake_microsoft, monkeypatch):
    integration = active_integration(admin_client, fake_microsoft)
    real = microsoft_module.confirm_app_in_tenant

    def meanwhile_disabled(tenant_id):
        Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.DISABLED)
        return real(tenant_id)

    monkeypatch.setattr(microsoft_module, "confirm_app_in_tenant", meanwhile_disabled)
    admin_client.post(f"/company/sso/{integration.pk}/verify/")
    integration.refresh_from_db()
    assert integration.status == Integration.Status.DISABLED

    def meanwhile_deleted(tenant_id):
        Integration.objects.filter(pk=integration.pk).delete()
        return real(tenant_id)

    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.ACTIVE)
    monkeypatch.setattr(microsoft_module, "confirm_app_in_tenant", meanwhile_deleted)
    admin_client.post(f"/company/sso/{integration.pk}/verify/")
    assert not Integration.objects.exists()
