"""Steps of flow 2 through the portal's views, shared by its test modules: adding a tenant, Microsoft
sending the administrator back to the consent callback, and an integration made active that way."""

from urllib.parse import parse_qs, urlsplit

from tenantlink.audit.models import AuditEvent
from tenantlink.sso.models import Integration
from tenantlink.sso.tests.conftest import AUTHORITY, CONTOSO, FABRIKAM


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


def active_integration(client, fake_microsoft):
    state = start(client)
    fake_microsoft.app_in.add(CONTOSO)
    come_back(client, fake_microsoft, **approved(state))
    return contoso_integration()
