"""A Microsoft for the portal's own tests: the platform's app registration configured, and every
call to Microsoft answered by FakeMicrosoft through httpx's mock transport (end-to-end tests use
the Entra emulator instead). Failures are one line each: `microsoft.fail_with(...)`; Graph's own
with `microsoft.graph_answers` (whole $batch answers, in turn) and `microsoft.item_answers`
(per user inside a batch)."""

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tenantlink.sso import graph
from tenantlink.sso import microsoft as microsoft_module
from tenantlink.sso.models import Integration

AUTHORITY = "https://login.microsoftonline.com"
CLIENT_ID = "4f6b2a8e-3c1d-4e5f-9a7b-8c2d1e0f3a6b"
CLIENT_SECRET = "unit-test-client-secret-7c1e0b-2f9a4d81"
CONTOSO = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"
FABRIKAM = "c2e8b5f1-6a3d-4f97-8b2e-5d1c9a7e4f30"


def aad_error(status, error, code, description="Something went wrong."):
    """A JSON error the way Microsoft's token and discovery endpoints write it."""
    return httpx.Response(
        status,
        json={
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-01-01 00:00:00Z",
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "0",
            "correlation_id": "0",
        },
    )


# Made once: RSA key generation takes a moment.
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key, kid):
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())), "kid": kid, "use": "sig"}


class FakeMicrosoft:
    def __init__(self):
        self.tenants = {
            CONTOSO: "contoso.onmicrosoft.com",
            FABRIKAM: "fabrikam.onmicrosoft.com",
            microsoft_module.PERSONAL_ACCOUNTS_TENANT: "consumers",  # personal Microsoft accounts
        }
        self.app_in = set()  # tenants where an administrator approved the app
        self.waits = []  # seconds the portal waited for Microsoft to confirm an approval
        self.requests = []
        self.failure = None
        self.published = [public_jwk(SIGNING_KEY, "key-1")]
        self.codes = {}  # authorization code → the ID token it is redeemed for, once
        self.roles_in = set()  # tenants that granted the application permission User.Read.All
        self.accounts = {}  # Graph: object ID → accountEnabled; users not here are deleted (404)
        self.graph_answers = []  # httpx.Responses for the next $batch requests, in turn
        self.item_answers = {}  # object ID → (status, headers) for that user's next batch item

    def id_token(self, nonce="the-nonce", tid=CONTOSO, key=SIGNING_KEY, kid="key-1", headers=None, **changes):
        """An ID token as Microsoft issues it; `changes` replace claims (None removes one)."""
        now = int(time.time())
        claims = {
            "ver": "2.0",
            "iss": f"{AUTHORITY}/{tid}/v2.0",
            "aud": CLIENT_ID,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": tid,
            "oid": "15550e69-065f-4d2c-b54d-9fd19885ed4c",
            "sub": "pairwise-" + uuid.uuid4().hex,
            "name": "Ben Berg",
            "preferred_username": "ben@contoso.onmicrosoft.com",
            "nonce": nonce,
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **(headers or {})})

    def sign_in(self, client, to_microsoft, **claims):
        """The browser, sent to Microsoft's sign-in by the portal (`to_microsoft`, its redirect):
        someone signs in there and comes back to the portal's callback with a code for an ID token
        of the tenant the portal asked for, with `claims`. Returns the callback's response."""
        location = urlsplit(to_microsoft.url)
        params = {name: values[0] for name, values in parse_qs(location.query).items()}
        code = "code-" + uuid.uuid4().hex
        tenant = self._tenant(location.path.split("/")[1]) or CONTOSO
        self.codes[code] = self.id_token(nonce=params["nonce"], **{"tid": tenant, **claims})
        return client.get("/sso/callback/", {"code": code, "state": params["state"]})

    def fail_with(self, failure):
        """Answer every request with `failure`: an httpx.Response, or an exception to raise."""
        self.failure = failure

    def _tenant(self, value):
        for tid, domain in self.tenants.items():
            if value in (tid, domain):
                return tid
        return None

    def __call__(self, request):
        self.requests.append(request)
        if isinstance(self.failure, Exception):
            raise self.failure
        if self.failure is not None:
            return self.failure
        if request.url.path.startswith("/v1.0/"):  # at graph.microsoft.com, or wherever a test sends it
            return self.graph(request)
        parts = urlsplit(str(request.url)).path.strip("/").split("/")
        name, rest = parts[0], "/".join(parts[1:])
        if rest == "v2.0/.well-known/openid-configuration":
            return self.discovery(name)
        if rest == "discovery/v2.0/keys":
            return httpx.Response(200, json={"keys": self.published})
        if rest == "oauth2/v2.0/token":
            return self.token(name, parse_qs(request.content.decode()))
        return httpx.Response(404, text="Not found")

    def discovery(self, name):
        tid = self._tenant(name)
        if name == "organizations":
            tid = "{tenantid}"
        elif tid is None:
            return aad_error(400, "invalid_tenant", 90002, f"Tenant '{name}' not found.")
        base = f"{AUTHORITY}/{name}"
        return httpx.Response(
            200,
            json={
                "issuer": f"{AUTHORITY}/{tid}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def token(self, name, form):
        tid = self._tenant(name)
        if tid is None and name != "organizations":
            return aad_error(400, "invalid_request", 90002, f"Tenant '{name}' not found.")
        if form.get("client_secret") != [CLIENT_SECRET]:
            return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("grant_type") == ["authorization_code"]:
            id_token = self.codes.pop(form.get("code", [""])[0], None)
            if id_token is None:
                return aad_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
            return httpx.Response(200, json={"token_type": "Bearer", "id_token": id_token, "access_token": "x.y.z"})
        if tid not in self.app_in:
            return aad_error(400, "unauthorized_client", 700016, "Application not found in the directory.")
        claims = {"aud": "https://graph.microsoft.com", "tid": tid, "idtyp": "app"}
        if tid in self.roles_in:
            claims["roles"] = ["User.Read.All"]
        access_token = jwt.encode(claims, SIGNING_KEY, algorithm="RS256")
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": access_token})

    def graph(self, request):
        """Graph's $batch of GET /users/{id}?$select=id,accountEnabled, answered from `accounts`."""
        if self.graph_answers:
            return self.graph_answers.pop(0)
        claims = jwt.decode(
            request.headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False}
        )
        responses = []
        for item in json.loads(request.content)["requests"]:
            oid = item["url"].split("/")[2].split("?")[0]
            if "User.Read.All" not in claims.get("roles", []):
                status, headers, body = 403, {}, {"error": {"code": "Authorization_RequestDenied"}}
            elif oid in self.item_answers:
                (status, headers), body = self.item_answers.pop(oid), {"error": {"code": "TooManyRequests"}}
            elif oid in self.accounts:
                status, headers, body = 200, {}, {"id": oid, "accountEnabled": self.accounts[oid]}
            else:
                status, headers, body = 404, {}, {"error": {"code": "Request_ResourceNotFound"}}
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return httpx.Response(200, json={"responses": responses[::-1]})  # any order, as at Graph


@pytest.fixture
def fake_microsoft(settings, monkeypatch):
    """Single sign-on configured, and Microsoft answered by a FakeMicrosoft."""
    settings.ENTRA_AUTHORITY = AUTHORITY
    settings.ENTRA_CLIENT_ID = CLIENT_ID
    settings.ENTRA_CLIENT_SECRET = CLIENT_SECRET
    settings.ENTRA_CONFIGURATION_PROBLEM = ""
    fake = FakeMicrosoft()
    monkeypatch.setattr(microsoft_module, "_client", httpx.Client(transport=httpx.MockTransport(fake)))
    monkeypatch.setattr(graph, "_app_tokens", type(graph._app_tokens)())
    monkeypatch.setattr(microsoft_module, "_documents", {})
    monkeypatch.setattr(microsoft_module, "_failed", {})
    # Waits for Microsoft to catch up with an approval are written down, not waited.
    monkeypatch.setattr(microsoft_module, "_sleep", fake.waits.append)
    return fake


def json_body(response):
    return json.loads(response.content)


@pytest.fixture
def contoso_integration(contoso, admin, fake_microsoft):
    """Contoso Ltd's integration of the Contoso tenant, active, and Microsoft answered by a fake."""
    return Integration.objects.create(
        company=contoso, tenant_id=CONTOSO, display_name="Contoso", status=Integration.Status.ACTIVE, created_by=admin
    )


# --- The leaver check (test_leaver_*.py) ---------------------------------------------------------


@pytest.fixture
def integration(contoso, fake_microsoft):
    fake_microsoft.app_in.add(CONTOSO)
    return Integration.objects.create(
        company=contoso, tenant_id=CONTOSO, display_name="Contoso", status=Integration.Status.ACTIVE
    )


@pytest.fixture
def checked(integration, fake_microsoft, admin):
    """The leaver check on: Microsoft granted User.Read.All in Contoso."""
    fake_microsoft.roles_in.add(CONTOSO)
    Integration.objects.filter(pk=integration.pk).update(leaver_check=Integration.LeaverCheck.ON)
    integration.refresh_from_db()
    return integration


@pytest.fixture
def no_waiting(monkeypatch):
    """Retry-After is obeyed without the test waiting: the waits are written down instead."""
    waits = []
    monkeypatch.setattr(graph, "_sleep", waits.append)
    return waits
