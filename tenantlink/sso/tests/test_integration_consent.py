"""Flow 2 through the portal's views: an administrator adds a tenant, approves it at Microsoft
(answered here by FakeMicrosoft), and the integration becomes active only when Microsoft itself
confirms it; every error, forged or stale answer, and tenant that is not the company's to claim.
The end-to-end tests do the same against the Entra emulator."""

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
from tenantlink.sso.models import Integration, PendingAuthorization
from tenantlink.sso.tests.conftest import CLIENT_SECRET, CONTOSO, FABRIKAM
from tenantlink.sso.tests.integration_helpers import (
    actions,
    active_integration,
    approved,
    come_back,
    contoso_integration,
    start,
)


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


def test_an_approval_microsoft_confirms_only_after_a_while_waits_for_verify_again(admin_client, fake_microsoft):
    """Microsoft goes on refusing the app's tokens for the tenant (AADSTS700016) for a while after
    an administrator approved it and signed in there: asked again a few times, then the
    integration waits."""
    state = start(admin_client, "contoso.onmicrosoft.com")

    page = come_back(admin_client, fake_microsoft, **approved(state))

    assert fake_microsoft.waits == [1, 2, 3]
    assert "Microsoft says the app was approved but does not confirm it yet" in page
    assert "(Error code: AADSTS700016)" in page and "Consent failed" not in page
    assert '<span class="badge warn">Waiting for verification</span>' in page
    integration = contoso_integration()
    assert (integration.status, integration.failure_reason) == (Integration.Status.PENDING, "approval_propagating")

    fake_microsoft.app_in.add(CONTOSO)  # a few minutes later, Microsoft knows
    to_microsoft = admin_client.post(f"/company/sso/{integration.pk}/verify/")
    response = fake_microsoft.sign_in(admin_client, to_microsoft, preferred_username="ada@contoso.onmicrosoft.com")

    assert "is active" in admin_client.get(response.url).content.decode()
    assert contoso_integration().status == Integration.Status.ACTIVE


def test_an_approval_confirmed_while_asking_again_goes_on_at_once(admin_client, fake_microsoft, monkeypatch):
    monkeypatch.setattr(microsoft_module, "_sleep", lambda seconds: fake_microsoft.app_in.add(CONTOSO))
    state = start(admin_client, "contoso.onmicrosoft.com")

    page = come_back(admin_client, fake_microsoft, **approved(state))

    assert fake_microsoft.waits == [] and "contoso.onmicrosoft.com is active" in page


def test_microsoft_is_asked_nothing_about_a_tenant_before_someone_of_it_signs_in_there(admin_client, fake_microsoft):
    """Whether the app is approved in a tenant tells whether that organization uses the portal:
    not for an administrator who only added its name, nor for an approval of their own writing."""
    state = start(admin_client, "contoso.onmicrosoft.com")
    integration = contoso_integration()
    for to_microsoft in (
        admin_client.post(f"/company/sso/{integration.pk}/verify/"),
        admin_client.get("/sso/consent/callback/", approved(state)),
    ):
        assert urlsplit(to_microsoft.url).path == f"/{CONTOSO}/oauth2/v2.0/authorize"  # only the sign-in there
    assert not [request for request in fake_microsoft.requests if request.url.path.endswith("/token")]
    integration.refresh_from_db()
    assert (integration.status, integration.failure_reason) == (Integration.Status.PENDING, "sign_in_pending")


def test_the_app_gone_from_a_tenant_that_worked_is_said_at_once(admin_client, fake_microsoft):
    integration = active_integration(admin_client, fake_microsoft)
    fake_microsoft.app_in.discard(CONTOSO)  # removed from the tenant at Microsoft

    page = admin_client.post(f"/company/sso/{integration.pk}/verify/", follow=True).content.decode()

    assert fake_microsoft.waits == [] and "Microsoft does not (or no longer) know the app in this tenant" in page
    assert contoso_integration().status == Integration.Status.FAILED


def test_after_approving_at_microsoft_signing_out_offers_to_sign_out_there_too(admin_client, fake_microsoft):
    """The administrator signed in at Microsoft to approve: Microsoft keeps that sign-in."""
    come_back(admin_client, fake_microsoft, **approved(start(admin_client)))
    admin_client.post("/signout/")
    assert "You may still be signed in at Microsoft in this browser" in admin_client.get("/signin/").content.decode()


def test_the_tenant_in_the_callback_is_never_trusted(admin_client, fake_microsoft):
    state = start(admin_client)
    # A callback that claims success for Contoso: Microsoft has no app there, so nothing is active.
    page = come_back(admin_client, fake_microsoft, **approved(state))
    integration = contoso_integration()
    # As after a real approval that has not yet reached all of Microsoft's servers: it waits.
    assert (integration.status, integration.failure_reason) == (Integration.Status.PENDING, "approval_propagating")
    assert "does not confirm it yet" in page and "If it still fails then, approve it again." in page
    assert "AADSTS700016" in page
    event = AuditEvent.objects.get(action=Action.SSO_VERIFICATION_FAILED)
    assert (event.details["code"], event.details["reason"]) == ("AADSTS700016", "approval_propagating")


def test_a_claimed_other_tenant_changes_nothing_about_which_tenant_is_checked(admin_client, fake_microsoft):
    state = start(admin_client)
    fake_microsoft.app_in.add(FABRIKAM)
    come_back(admin_client, fake_microsoft, **approved(state, tenant=FABRIKAM))
    assert contoso_integration().status == Integration.Status.PENDING
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
    # Nothing is said of the tenant until someone of it signs in there (here: Microsoft lets Olga).
    if how == "verify":
        to_microsoft = olga.post(f"/company/sso/{claimed.pk}/verify/")
    else:
        to_microsoft = olga.get("/sso/consent/callback/", approved(parse_qs(urlsplit(response.url).query)["state"][0]))
    assert "already connected to another company" not in olga.get("/company/sso/").content.decode()
    page = olga.get(fake_microsoft.sign_in(olga, to_microsoft).url).content.decode()
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
    from tenantlink.sso import consent

    northwind.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    olga = Client()
    sign_in(olga, outsider)
    start(admin_client)
    olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    fake_microsoft.app_in.add(CONTOSO)
    # Someone of the tenant signed in for each (a guest of Contoso's working at Northwind, say),
    # and each asked "does another company have it?" before the other had saved its answer.
    Integration.objects.update(tenant_signed_in_at=timezone.now())
    monkeypatch.setattr(consent, "_held_by_another_company", lambda integration: False)
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


@pytest.mark.parametrize("answer", ["Microsoft down", "no admin_consent"])
def test_a_new_approval_that_cannot_be_confirmed_leaves_a_working_integration_as_it_was(
    admin_client, fake_microsoft, answer
):
    """A second administrator (or a stale tab) approves again while it works; then Microsoft has a
    hiccup, or its answer says nothing of an approval. That says nothing about the tenant."""
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(state))
    integration = contoso_integration()
    response = admin_client.post(f"/company/sso/{integration.pk}/consent/")
    state = parse_qs(urlsplit(response.url).query)["state"][0]

    if answer == "Microsoft down":
        fake_microsoft.fail_with(httpx.Response(503, json={"error": "temporarily_unavailable"}))
        page = come_back(admin_client, **approved(state))
        words, action = "Microsoft could not be reached", Action.SSO_VERIFICATION_FAILED
    else:
        page = come_back(admin_client, state=state, tenant=CONTOSO)
        words, action = "Microsoft gave an answer that could not be understood", Action.SSO_CONSENT_FAILED

    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE and not integration.failure_reason
    assert words in page and '<span class="badge ok">Active</span>' in page
    assert actions()[-1] == action


def test_an_approval_microsoft_cannot_be_asked_to_confirm_waits_for_verify_again(admin_client, fake_microsoft):
    state = start(admin_client)
    fake_microsoft.fail_with(httpx.Response(503, json={"error": "temporarily_unavailable"}))

    page = come_back(admin_client, fake_microsoft, **approved(state))

    assert "Microsoft could not be reached or did not answer in time. Try again in a few minutes." in page
    assert '<span class="badge warn">Waiting for verification</span>' in page and "Consent failed" not in page
    integration = contoso_integration()
    assert (integration.status, integration.failure_reason) == (Integration.Status.PENDING, "unavailable")
    assert integration.consent_completed_at  # the approval is kept
    # Microsoft back: Verify again goes on to the sign-in at the tenant, and the integration works.
    fake_microsoft.fail_with(None)
    fake_microsoft.app_in.add(CONTOSO)
    fake_microsoft.sign_in(admin_client, admin_client.post(f"/company/sso/{integration.pk}/verify/"))
    assert contoso_integration().status == Integration.Status.ACTIVE


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


def test_a_forged_callback_puts_no_words_of_its_own_in_the_audit_log(admin_client, fake_microsoft):
    """A link anyone can write, lured to: the log keeps a tenant ID it names, not its text."""
    start(admin_client)
    lure = "Call +1 555 0100 to restore your access"
    for tenant in (lure, CONTOSO.upper()):
        come_back(admin_client, admin_consent="True", tenant=tenant, state="made-up-state")
    reported = AuditEvent.objects.filter(action=Action.SSO_CONSENT_FAILED).order_by("id")
    assert [event.details["reported_tenant"] for event in reported] == ["", CONTOSO]
    assert lure not in admin_client.get("/company/audit/").content.decode()


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


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "This field is required."),
        ("not a tenant", "neither a tenant ID"),
        ("7f3c2a9e-1d4b-4e8a-9c6f", "neither a tenant ID"),
        ("organizations", "“organizations” stands for every organization at Microsoft"),
        ("Common", "“common” stands for every organization at Microsoft"),
        ("consumers", "Personal Microsoft accounts cannot be used"),
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
    first = start(admin_client, CONTOSO, name="Contoso HQ")
    # The trip to Microsoft abandoned: adding it again is a new trip for the same integration.
    again = start(admin_client, "contoso.onmicrosoft.com")
    assert again != first and Integration.objects.get().display_name == "Contoso HQ"  # none typed: kept
    again = start(admin_client, "contoso.onmicrosoft.com", name="Contoso Head Office")
    assert Integration.objects.get().display_name == "Contoso Head Office"
    fake_microsoft.app_in.add(CONTOSO)
    come_back(admin_client, fake_microsoft, **approved(again))
    for pasted in ("contoso.onmicrosoft.com", " Contoso.onmicrosoft.com. ", f"{{{CONTOSO.upper()}}}"):
        response = admin_client.post("/company/sso/add/", {"tenant": pasted})
        assert "This tenant is already in your list (Contoso Head Office, Active)." in response.content.decode()

    outsider.company.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    other_admin = Client()
    sign_in(other_admin, outsider)
    start(other_admin, "contoso.onmicrosoft.com")
    assert Integration.objects.filter(tenant_id=CONTOSO).count() == 2


def test_adding_again_a_tenant_deleted_meanwhile_says_so(admin_client, fake_microsoft, monkeypatch):
    from tenantlink.sso.forms import AddIntegrationForm

    start(admin_client, CONTOSO, name="Contoso HQ")
    checked = AddIntegrationForm.clean

    def deleted_by_a_colleague_meanwhile(form):
        cleaned = checked(form)
        Integration.objects.all().delete()
        return cleaned

    monkeypatch.setattr(AddIntegrationForm, "clean", deleted_by_a_colleague_meanwhile)

    response = admin_client.post("/company/sso/add/", {"tenant": "contoso.onmicrosoft.com"}, follow=True)

    assert "Contoso HQ was already deleted. Nothing changed." in response.content.decode()
    assert not Integration.objects.exists()


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
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = admin_client.get(f"/sso/consent/callback/?state={state}&admin_consent=True")
    signed_in = fake_microsoft.sign_in(admin_client, to_microsoft)  # the code redeemed with the secret
    pages += [to_microsoft, signed_in, admin_client.get(signed_in.url)]
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
