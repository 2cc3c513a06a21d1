"""Steps of flows 3–5 through the portal's views, shared by their test modules: to Microsoft (answered by
FakeMicrosoft) and back, a password sign-in, and a Microsoft connection made directly."""

from urllib.parse import parse_qs, urlsplit

from tenantlink.conftest import PASSWORD, code_for
from tenantlink.sso.models import Connection
from tenantlink.sso.tests.conftest import CONTOSO

BEN_OID = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


def to_microsoft(response):
    """The authorization request the portal sent the browser to; its parameters."""
    assert response.status_code == 302, response
    location = urlsplit(response.url)
    return location.path, {name: values[0] for name, values in parse_qs(location.query).items()}


def microsoft_answers(client, fake_microsoft, params, **claims):
    """Microsoft signs the person in and sends them back with a code for an ID token."""
    fake_microsoft.codes["the-code"] = fake_microsoft.id_token(nonce=params["nonce"], **claims)
    return client.get("/sso/callback/", {"code": "the-code", "state": params["state"]})


def microsoft_signin(client, fake_microsoft, **claims):
    path, params = to_microsoft(client.post("/sso/signin/"))
    assert path == "/organizations/oauth2/v2.0/authorize"
    return microsoft_answers(client, fake_microsoft, params, **claims)


def password_signin_of(client, user, step=0):
    client.post("/signin/", {"username": user.username, "password": PASSWORD})
    return client.post("/signin/verify/", {"code": code_for(user, step)}, follow=True)


def connected(member, contoso_integration, oid=BEN_OID):
    return Connection.objects.create(
        user=member, integration=contoso_integration, tid=CONTOSO, oid=oid, username="ben@contoso.onmicrosoft.com"
    )


def page_text(response):
    return response.content.decode()
