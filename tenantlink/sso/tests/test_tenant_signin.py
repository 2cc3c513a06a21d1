"""Flow 2's last step: an integration that has never worked starts working only after one of its
tenant's own people signed in there for it. The app being approved in a tenant does not say for
which company (it stays approved after a company deletes its integration), and anyone can write
a consent callback saying "approved" for their own state."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Licence
from tenantlink.conftest import make_user, sign_in
from tenantlink.sso.models import Integration
from tenantlink.sso.tests.conftest import AUTHORITY, CONTOSO, FABRIKAM, aad_error
from tenantlink.sso.tests.integration_helpers import active_integration, approved, come_back, start

TO_CONTOSOS_SIGN_IN = f"/{CONTOSO}/oauth2/v2.0/authorize"


@pytest.fixture
def olga(northwind, outsider):
    """Northwind's administrator, in her own browser; Northwind holds a licence too."""
    northwind.grant_licence(Licence.Product.SSO, timezone.now() + timezone.timedelta(days=30))
    browser = Client()
    sign_in(browser, outsider)
    return browser


def state_of(response):
    return parse_qs(urlsplit(response.url).query)["state"][0]


def page_after(client, response):
    assert response.status_code == 302 and response.url == "/company/sso/", response
    return client.get(response.url).content.decode()


def integration_of(company):
    return Integration.objects.get(company=company)


def latest(action):
    return AuditEvent.objects.filter(action=action).latest("id")


@pytest.mark.parametrize("how", ["verify", "own consent callback"])
def test_a_tenant_whose_integration_was_deleted_cannot_be_claimed_without_signing_in_there(
    admin_client, fake_microsoft, contoso, northwind, olga, how
):
    own = active_integration(admin_client, fake_microsoft)
    admin_client.post(f"/company/sso/{own.pk}/delete/")  # the app stays approved in Contoso's tenant
    # Northwind's administrator adds Contoso's tenant and never approves anything at Microsoft:
    # Verify, or a consent callback she writes herself for her own state.
    response = olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    claimed = integration_of(northwind)
    if how == "verify":
        response = olga.post(f"/company/sso/{claimed.pk}/verify/")
    else:
        response = olga.get("/sso/consent/callback/", approved(state_of(response)))
    # Nothing is asked of Microsoft: first someone of the tenant must sign in there.
    assert urlsplit(response.url).path == TO_CONTOSOS_SIGN_IN
    claimed.refresh_from_db()
    page = olga.get("/company/sso/").content.decode()
    if how == "verify":  # nothing new is known
        assert (claimed.status, claimed.failure_reason, claimed.tenant_signed_in_at) == ("pending", "", None)
        assert '<span class="badge warn">Pending consent</span>' in page
    else:  # an answer saying "approved", of her own writing: it waits for the sign-in there
        assert (claimed.status, claimed.failure_reason) == ("pending", "sign_in_pending")
        assert "signs in there once, usually without being asked anything" in page
        assert '<span class="badge warn">Waiting for verification</span>' in page
    # She can sign in at Microsoft only with an account of another tenant: Microsoft would refuse
    # it at Contoso's sign-in, and a token of Fabrikam is not one of Contoso.
    page = page_after(olga, fake_microsoft.sign_in(olga, response, tid=FABRIKAM))
    assert "belongs to another organization (tenant)" in page
    # What failed is the sign-in at the tenant, not an approval: it goes on waiting for one that counts.
    assert '<span class="badge warn">Waiting for verification</span>' in page and "Consent failed" not in page
    claimed.refresh_from_db()
    assert (claimed.status, claimed.failure_reason, claimed.tenant_signed_in_at) == ("pending", "wrong_tenant", None)
    event = latest(Action.SSO_VERIFICATION_FAILED)
    assert (event.details["reason"], event.details["step"], event.company) == (
        "wrong_tenant",
        "tenant_sign_in",
        northwind,
    )
    # "Verify again" only sends her back to Microsoft's sign-in.
    assert urlsplit(olga.post(f"/company/sso/{claimed.pk}/verify/").url).path == TO_CONTOSOS_SIGN_IN
    assert integration_of(northwind).status == Integration.Status.PENDING
    # Contoso can connect its tenant again.
    come_back(admin_client, fake_microsoft, **approved(start(admin_client)))
    assert integration_of(contoso).status == Integration.Status.ACTIVE


def test_a_made_up_answer_to_the_sign_in_at_a_tenant_tells_nothing_of_the_tenant(fake_microsoft, northwind, olga):
    """Microsoft, asked to redeem a code for a tenant, answers "application not found" where the
    app is not approved and "no such code" where it is: for an administrator who only added the
    tenant's name, the two must read alike, in the page and in the audit log."""
    olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    claimed = integration_of(northwind)
    seen = []
    for approved_there in (False, True):
        if not approved_there:  # what Microsoft answers for a tenant without the app
            fake_microsoft.fail_with(aad_error(400, "unauthorized_client", 700016, "Application not found."))
        state = state_of(olga.post(f"/company/sso/{claimed.pk}/verify/"))
        page = page_after(olga, olga.get("/sso/callback/", {"code": "a-made-up-code", "state": state}))
        fake_microsoft.fail_with(None)
        claimed.refresh_from_db()
        event = latest(Action.SSO_VERIFICATION_FAILED)
        seen.append(
            (re.search(r'<div role="status">.*?</div>', page, re.S).group(0), claimed.failure_code, event.details)
        )
    assert seen[0] == seen[1] and "AADSTS" not in str(seen)


def test_a_guest_of_the_tenant_cannot_claim_it(admin_client, fake_microsoft, northwind, olga):
    fake_microsoft.app_in.add(CONTOSO)  # approved there for some other purpose
    response = olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    to_microsoft = olga.get("/sso/consent/callback/", approved(state_of(response)))
    # Olga was invited to Contoso's tenant as a guest: her token there is of Contoso's tenant, and
    # names her home organization as the one that signed her in.
    guest = {"idp": f"https://sts.windows.net/{FABRIKAM}/", "preferred_username": "olga@fabrikam.example"}
    page = page_after(olga, fake_microsoft.sign_in(olga, to_microsoft, **guest))
    assert "is a guest in this tenant" in page
    assert '<span class="badge warn">Waiting for verification</span>' in page
    claimed = integration_of(northwind)
    assert (claimed.status, claimed.failure_reason, claimed.tenant_signed_in_at) == ("pending", "guest", None)
    event = latest(Action.SSO_VERIFICATION_FAILED)
    assert (event.details["reason"], event.details["microsoft_username"]) == ("guest", "olga@fabrikam.example")
    # Nor one whose organization merely mentions the tenant.
    for idp in (
        f"https://evil.example/{CONTOSO}/",
        f"https://sts.windows.net/{FABRIKAM}/{CONTOSO}/",
        f"http://sts.windows.net/{CONTOSO}/",
        f"https://evil.example\\@sts.windows.net/{CONTOSO}/",
        7,
    ):
        to_microsoft = olga.post(f"/company/sso/{claimed.pk}/verify/")
        fake_microsoft.sign_in(olga, to_microsoft, idp=idp)
        assert integration_of(northwind).status == Integration.Status.PENDING
    # A member's token may name the tenant itself as the one that signed them in.
    to_microsoft = olga.post(f"/company/sso/{claimed.pk}/verify/")
    fake_microsoft.sign_in(olga, to_microsoft, idp=f"https://sts.windows.net/{CONTOSO}/")
    assert integration_of(northwind).status == Integration.Status.ACTIVE


@pytest.mark.parametrize(
    ("answer", "reason", "words"),
    [
        ({"error": "access_denied", "error_subcode": "cancel"}, "tenant_sign_in", "did not sign you in at the tenant"),
        (
            {"error": "invalid_request", "error_description": "AADSTS50105: not assigned."},
            "tenant_sign_in",
            "did not sign you in at the tenant, so the integration does not work yet. Choose “Verify again”",
        ),
        ({"code": ""}, "bad_answer", "an answer that could not be understood"),
    ],
)
def test_a_sign_in_at_the_tenant_that_does_not_happen_activates_nothing(
    admin_client, fake_microsoft, answer, reason, words
):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = admin_client.get("/sso/consent/callback/", approved(state))
    page = page_after(admin_client, admin_client.get("/sso/callback/", {"state": state_of(to_microsoft), **answer}))
    assert words in page and "The approval at Microsoft was cancelled" not in page
    if "error_description" in answer:
        assert "(Error code: AADSTS50105)" in page
    integration = Integration.objects.get()
    # The approval itself did happen: the integration waits for a sign-in there that counts.
    assert (integration.status, integration.failure_reason) == (Integration.Status.PENDING, reason)
    assert integration.consent_completed_at
    assert '<span class="badge warn">Waiting for verification</span>' in page and "Consent failed" not in page
    # "Verify again" asks for the sign-in again, and then it works.
    fake_microsoft.sign_in(admin_client, admin_client.post(f"/company/sso/{integration.pk}/verify/"))
    assert Integration.objects.get().status == Integration.Status.ACTIVE


def test_a_sign_in_whose_tenant_another_company_took_meanwhile_counts_for_nothing(
    admin_client, fake_microsoft, contoso, admin, northwind, olga
):
    fake_microsoft.app_in.add(CONTOSO)
    response = olga.post("/company/sso/add/", {"tenant": CONTOSO, "display_name": "Not ours"})
    to_microsoft = olga.get("/sso/consent/callback/", approved(state_of(response)))
    # While someone of Contoso's tenant signs in for Northwind, Contoso connects its tenant.
    own = Integration.objects.create(company=contoso, tenant_id=CONTOSO, display_name="Contoso", status="active")
    page = page_after(
        olga, fake_microsoft.sign_in(olga, to_microsoft, preferred_username="ben@contoso.onmicrosoft.com")
    )
    assert "already connected to another company" in page
    claimed = integration_of(northwind)
    assert (claimed.status, claimed.tenant_signed_in_at) == (Integration.Status.FAILED, None)
    assert latest(Action.SSO_VERIFICATION_FAILED).details["microsoft_username"] == "ben@contoso.onmicrosoft.com"
    # When Contoso deletes its integration later, that sign-in does not let Northwind's work.
    own.delete()
    assert urlsplit(olga.post(f"/company/sso/{claimed.pk}/verify/").url).path == TO_CONTOSOS_SIGN_IN
    claimed.refresh_from_db()
    assert (claimed.status, claimed.tenant_signed_in_at) == (Integration.Status.FAILED, None)  # until a new one


def test_the_sign_in_at_the_tenant_is_the_administrators_own_and_works_once(admin_client, fake_microsoft, contoso):
    state = start(admin_client)
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = admin_client.get("/sso/consent/callback/", approved(state))
    # Another administrator of the company, in another browser, cannot finish it.
    colleague = Client()
    sign_in(colleague, make_user("amir", contoso, role=User.Role.ADMINISTRATOR))
    response = fake_microsoft.sign_in(colleague, to_microsoft)
    assert "does not belong to a sign-in started in this browser" in colleague.get(response.url).content.decode()
    assert Integration.objects.get().status == Integration.Status.PENDING
    # The administrator's own browser can, once.
    fake_microsoft.sign_in(admin_client, to_microsoft)
    assert Integration.objects.get().status == Integration.Status.ACTIVE
    Integration.objects.update(status=Integration.Status.PENDING, tenant_signed_in_at=None)
    response = fake_microsoft.sign_in(admin_client, to_microsoft)
    assert "does not belong to a sign-in started in this browser" in admin_client.get(response.url).content.decode()
    assert Integration.objects.get().status == Integration.Status.PENDING


def test_another_user_of_the_same_browser_cannot_finish_it(client, fake_microsoft, contoso, admin):
    sign_in(client, admin)
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = client.get("/sso/consent/callback/", approved(start(client)))
    client.post("/signout/")
    sign_in(client, make_user("amir", contoso, role=User.Role.ADMINISTRATOR))
    response = fake_microsoft.sign_in(client, to_microsoft)  # signing out ended what the browser started
    assert "does not belong to a sign-in started in this browser" in client.get(response.url).content.decode()
    assert Integration.objects.get().status == Integration.Status.PENDING


@pytest.mark.parametrize("change", ["demoted", "licence ended"])
def test_what_changed_while_at_microsoft_is_respected(admin_client, fake_microsoft, contoso, admin, change):
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = admin_client.get("/sso/consent/callback/", approved(start(admin_client)))
    if change == "demoted":
        User.objects.filter(pk=admin.pk).update(role=User.Role.MEMBER)
        assert fake_microsoft.sign_in(admin_client, to_microsoft).status_code == 403
    else:
        contoso.revoke_licences(Licence.Product.SSO)
        page = page_after(admin_client, fake_microsoft.sign_in(admin_client, to_microsoft))
        assert "no valid single sign-on licence" in page
    assert Integration.objects.get().status == Integration.Status.PENDING
    assert Integration.objects.get().tenant_signed_in_at is None


def test_verify_again_of_a_working_integration_needs_no_sign_in(admin_client, fake_microsoft):
    integration = active_integration(admin_client, fake_microsoft)
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.DISABLED)
    response = admin_client.post(f"/company/sso/{integration.pk}/verify/")
    assert response.url == "/company/sso/" and not response.url.startswith(AUTHORITY)
    assert "Microsoft confirms contoso.onmicrosoft.com." in admin_client.get(response.url).content.decode()
