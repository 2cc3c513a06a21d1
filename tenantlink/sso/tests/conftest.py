"""A Microsoft for the portal's own tests: the platform's app registration configured, and every
call to Microsoft answered by FakeMicrosoft through httpx's mock transport (end-to-end tests use
the Entra emulator instead). Failures are one line each: `microsoft.fail_with(...)`."""

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tenantlink.sso import microsoft as microsoft_module

AUTHORITY = "https://login.microsoftonline.com"
CLIENT_ID = "4f6b2a8e-3c1d-4e5f-9a7b-8c2d1e0f3a6b"
CLIENT_SECRET = "unit-test-client-secret-7c1e0b"
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


class FakeMicrosoft:
    def __init__(self):
        self.tenants = {CONTOSO: "contoso.onmicrosoft.com", FABRIKAM: "fabrikam.onmicrosoft.com"}
        self.app_in = set()  # tenants where an administrator approved the app
        self.requests = []
        self.failure = None

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
        parts = urlsplit(str(request.url)).path.strip("/").split("/")
        name, rest = parts[0], "/".join(parts[1:])
        if rest == "v2.0/.well-known/openid-configuration":
            return self.discovery(name)
        if rest == "discovery/v2.0/keys":
            return httpx.Response(200, json={"keys": [{"kty": "RSA", "kid": "key-1", "n": "AQAB", "e": "AQAB"}]})
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
            },
        )

    def token(self, name, form):
        tid = self._tenant(name)
        if tid is None:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{name}' not found.")
        if form.get("client_secret") != [CLIENT_SECRET]:
            return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if tid not in self.app_in:
            return aad_error(400, "unauthorized_client", 700016, "Application not found in the directory.")
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0.eyJ0.c2ln"})


@pytest.fixture
def fake_microsoft(settings, monkeypatch):
    """Single sign-on configured, and Microsoft answered by a FakeMicrosoft."""
    settings.ENTRA_AUTHORITY = AUTHORITY
    settings.ENTRA_CLIENT_ID = CLIENT_ID
    settings.ENTRA_CLIENT_SECRET = CLIENT_SECRET
    settings.ENTRA_CONFIGURATION_PROBLEM = ""
    fake = FakeMicrosoft()
    monkeypatch.setattr(microsoft_module, "_client", httpx.Client(transport=httpx.MockTransport(fake)))
    return fake


def json_body(response):
    return json.loads(response.content)
