"""The Single sign-on pages say what is true of each integration and licence: deleting one that
never worked does not claim the app stays approved or suggest disabling it, a revoked licence
reads as revoked (and when), and an integration the licence stops is not shown as working."""

import datetime
import re

import pytest
from django.utils import timezone

from tenantlink.companies.models import Licence
from tenantlink.conftest import signed_in_browser
from tenantlink.sso.models import Integration
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM

STAYS_APPROVED = "The app stays approved in your Microsoft tenant."
DISABLE_INSTEAD = "disable the integration: the connections are kept"


def integration_of(contoso, status, **fields):
    return Integration.objects.create(
        company=contoso, tenant_id=CONTOSO, display_name="Contoso", status=status, **fields
    )


def delete_page(admin_client, integration):
    return admin_client.get(f"/company/sso/{integration.pk}/delete/").content.decode()


def status_of(page):
    """The Status fact of the integration's card, tags kept."""
    return re.search(r"<dt>Status</dt>\s*<dd>(.*?)</dd>", page, re.S).group(1)


def test_deleting_an_integration_whose_approval_failed_says_nothing_stays_approved(admin_client, contoso):
    failed = integration_of(contoso, Integration.Status.FAILED, failure_reason="declined", failure_code="AADSTS65004")

    page = delete_page(admin_client, failed)

    assert STAYS_APPROVED not in page and DISABLE_INSTEAD not in page
    assert "Microsoft never confirmed that the app is approved in your tenant" in page


def test_deleting_an_integration_approved_but_not_working_yet_says_the_app_stays(admin_client, contoso):
    waiting = integration_of(
        contoso, Integration.Status.PENDING, failure_reason="sign_in_pending", consent_completed_at=timezone.now()
    )

    page = delete_page(admin_client, waiting)

    assert STAYS_APPROVED in page and DISABLE_INSTEAD not in page


def test_deleting_an_active_integration_suggests_disabling_it_instead(admin_client, contoso):
    page = delete_page(admin_client, integration_of(contoso, Integration.Status.ACTIVE))

    assert STAYS_APPROVED in page and DISABLE_INSTEAD in page


def test_deleting_a_disabled_integration_suggests_leaving_it_disabled(admin_client, contoso):
    page = delete_page(admin_client, integration_of(contoso, Integration.Status.DISABLED))

    assert DISABLE_INSTEAD not in page
    assert "The integration is disabled already." in page and STAYS_APPROVED in page


def test_a_revoked_licence_reads_as_revoked_and_says_when(admin_client, contoso):
    contoso.licences.update(valid_until=timezone.now() + datetime.timedelta(days=365))  # ran to a later date
    contoso.revoke_licences(Licence.Product.SSO)
    contoso.licences.update(revoked_at=datetime.datetime(2026, 3, 5, 12, tzinfo=datetime.UTC))

    page = admin_client.get("/company/sso/").content.decode()

    assert '<span class="badge bad">Revoked</span>' in page
    assert "it was revoked on 5 March 2026" in page
    assert "it was valid until" not in page


def test_an_expired_licence_says_until_when_it_was_valid(admin_client, contoso):
    contoso.licences.update(valid_until=datetime.datetime(2026, 3, 5, 12, tzinfo=datetime.UTC))

    page = admin_client.get("/company/sso/").content.decode()

    assert '<span class="badge bad">Expired</span>' in page
    assert "(it was valid until 5 March 2026)" in page


def test_a_licence_that_starts_later_says_when(admin_client, contoso):
    starts = timezone.now() + datetime.timedelta(days=10)
    contoso.licences.update(valid_from=starts, valid_until=starts + datetime.timedelta(days=365))

    page = admin_client.get("/company/sso/").content.decode()

    assert "not valid yet: it starts on" in page and "it was valid until" not in page


@pytest.mark.parametrize("licence", ["revoked", "expired"])
def test_an_active_integration_without_a_licence_is_not_shown_as_working(admin_client, contoso, licence):
    integration_of(contoso, Integration.Status.ACTIVE)
    if licence == "revoked":
        contoso.revoke_licences(Licence.Product.SSO)
    else:
        contoso.licences.update(valid_until=timezone.now() - datetime.timedelta(days=1))

    status = status_of(admin_client.get("/company/sso/").content.decode())

    assert "badge ok" not in status and "Active" not in status
    assert "Suspended: no valid licence" in status


def test_with_a_licence_an_active_integration_is_shown_active(admin_client, contoso):
    integration_of(contoso, Integration.Status.ACTIVE)

    status = status_of(admin_client.get("/company/sso/").content.decode())

    assert '<span class="badge ok">Active</span>' in status and "Suspended" not in status


def test_the_administrators_portal_page_leads_to_single_sign_on_and_a_members_does_not(admin_client, member):
    page = admin_client.get("/portal/").content.decode()
    card = page.split("<h2>Single sign-on</h2>")[1].split("</section>")[0]
    assert 'href="/company/sso/"' in card and "Manage integrations" in card
    assert "Manage integrations" not in signed_in_browser(member).get("/portal/").content.decode()


def test_each_integrations_buttons_say_which_integration_they_act_on(admin_client, contoso, fake_microsoft):
    """Screen readers list a page's buttons by their words: with two integrations, "Verify again"
    twice says nothing of which is which, so each button names its integration (out of sight)."""
    integration_of(contoso, Integration.Status.ACTIVE, leaver_check=Integration.LeaverCheck.ON)
    Integration.objects.create(
        company=contoso, tenant_id=FABRIKAM, display_name="Fabrikam", status=Integration.Status.FAILED
    )
    page = admin_client.get("/company/sso/").content.decode()

    seen = []
    for card in page.split('<li class="integration"')[1:]:
        card = card.split("\n    </li>")[0]
        name = re.search(r"<h3>(.*?)</h3>", card).group(1)
        buttons = re.findall(r'<button[^>]*>(.*?)</button>|<a class="button[^>]*>(.*?)</a>', card, re.S)
        words = [" ".join(re.sub(r"<[^>]+>", "", "".join(button)).split()) for button in buttons]
        assert all(word.endswith(f" · {name}") for word in words), words
        seen += words
    assert {"Retry consent · Fabrikam", "Verify again · Contoso", "Turn off the leaver check · Contoso"} <= set(seen)


def test_one_whose_approval_never_came_back_offers_retry_consent_only(admin_client, contoso, fake_microsoft):
    """No Verify again (nothing to verify), no adoption bar and no leaver check (nobody connected)."""
    Integration.objects.create(
        company=contoso,
        tenant_id=FABRIKAM,
        display_name="Fabrikam",
        status=Integration.Status.FAILED,
        failure_reason="declined",
    )
    card = admin_client.get("/company/sso/").content.decode().split('<li class="integration"')[1].split("</li>")[0]
    assert "Retry consent" in card and "Verify again" not in card
    assert "Connected users" not in card and "Leaver check" not in card
