"""The people and the app of the demo directory, and a small scripted "browser" that walks the
emulator's pages over HTTP the way a person would."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx

CLIENT_ID = "4f6b2a8e-3c1d-4e5f-9a7b-8c2d1e0f3a6b"
SECRET = "tenantlink-demo-secret"
REDIRECT_URI = "http://127.0.0.1:8000/sso/callback/"
CONSENT_REDIRECT_URI = "http://127.0.0.1:8000/sso/consent/callback/"
PASSWORD = "Entra-demo-1"
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
# Asks for the app's configured permissions; the only way to ask for application permissions.
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
# What the portal asks for, at admin consent and at sign-in: no Graph permission, no offline_access.
PORTAL_SCOPES = "openid profile email"

# An app of the tests' own that reads the signed-in user's profile from Graph: the demo app is
# registered without any Graph permission. It shares the demo app's redirect URIs.
GRAPH_READER = {
    "client_id": "9d3e6b1a-7c42-4f08-b5e1-2a6c8d0f4b93",
    "display_name": "Profile Reader",
    "secrets": [{"value": "profile-reader-secret", "expires": "2099-12-31T00:00:00Z"}],
    "redirect_uris": [REDIRECT_URI, CONSENT_REDIRECT_URI],
    "required_scopes": ["openid", "profile", "email", GRAPH_USER_READ],
}

CONTOSO = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"
FABRIKAM = "c2e8b5f1-6a3d-4f97-8b2e-5d1c9a7e4f30"


@dataclass(frozen=True)
class Person:
    upn: str
    oid: str
    tid: str
    name: str
    mail: str | None = None


ADA = Person(
    "ada@contoso.onmicrosoft.com", "2a594cc8-efe5-4524-a2e7-24cf8f56e958", CONTOSO, "Ada Admin", "ada@contoso.example"
)
BEN = Person(
    "ben@contoso.onmicrosoft.com", "15550e69-065f-4d2c-b54d-9fd19885ed4c", CONTOSO, "Ben Berg", "ben@contoso.example"
)
CLEO = Person("cleo@contoso.onmicrosoft.com", "38d28601-c6aa-424e-b88a-441c835164d1", CONTOSO, "Cleo Carter")
FRANK = Person(
    "frank@fabrikam.onmicrosoft.com",
    "e5458d83-4f64-4e40-afb0-e68987aa858c",
    FABRIKAM,
    "Frank Fischer",
    "frank@fabrikam.example",
)
FIONA = Person(
    "fiona@fabrikam.onmicrosoft.com",
    "d29cd951-130a-439d-b067-a58441d12a6c",
    FABRIKAM,
    "Fiona Falk",
    "fiona@fabrikam.example",
)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def claims_of(jwt_text: str) -> dict:
    payload = jwt_text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(jwt_text: str) -> dict:
    head = jwt_text.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def redirect_params(response: httpx.Response, to: str | None = None) -> dict:
    """The parameters the emulator sent back to the app in a query-mode redirect."""
    assert response.status_code == 302, f"expected a redirect, got {response.status_code}: {response.text[:500]}"
    location = response.headers["location"]
    if to:
        assert location.startswith(to), location
    parts = urlsplit(location)
    return dict(parse_qsl(parts.fragment or parts.query, keep_blank_values=True))


def form_post_params(response: httpx.Response) -> tuple[str, dict]:
    assert response.status_code == 200, response.text[:500]
    action = html.unescape(re.search(r'<form method="POST" name="hiddenform" action="([^"]*)"', response.text)[1])
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)" />', response.text)
    return action, {html.unescape(k): html.unescape(v) for k, v in fields}


class Browser:
    """An HTTP client with a cookie jar, following no redirects, that fills in the pages."""

    def __init__(self, base_url: str, verify=True):
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10, verify=verify)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()

    def get(self, url: str, **params) -> httpx.Response:
        # httpx would replace a query already in the URL with an empty params dict.
        return self.client.get(url, params=params or None)

    def authorize(self, tenant: str = "organizations", **params) -> httpx.Response:
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "state-1",
            "nonce": "nonce-1",
            **params,
        }
        return self.get(f"/{tenant}/oauth2/v2.0/authorize", **{k: v for k, v in query.items() if v is not None})

    def admin_consent(self, tenant: str, **params) -> httpx.Response:
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": CONSENT_REDIRECT_URI,
            "state": "consent-state",
            "scope": PORTAL_SCOPES,
            **params,
        }
        return self.get(f"/{tenant}/v2.0/adminconsent", **{k: v for k, v in query.items() if v is not None})

    # --- The pages ---

    @staticmethod
    def _ctx(page: httpx.Response) -> str:
        match = re.search(r'name="ctx" value="([^"]+)"', page.text)
        assert match, f"not one of the emulator's sign-in pages: {page.status_code} {page.text[:500]}"
        return match[1]

    @staticmethod
    def _action(page: httpx.Response, ending: str) -> str:
        match = re.search(rf'action="([^"]*{re.escape(ending)})"', page.text)
        assert match, f"no form posting to …{ending} on the page: {page.text[:800]}"
        return html.unescape(match[1])

    def sign_in(self, page: httpx.Response, person: Person | str, password: str = PASSWORD) -> httpx.Response:
        upn = person.upn if isinstance(person, Person) else person
        return self.client.post(
            self._action(page, "/login"), data={"ctx": self._ctx(page), "username": upn, "password": password}
        )

    def pick(self, page: httpx.Response, person: Person) -> httpx.Response:
        return self.client.post(
            self._action(page, "/login"), data={"ctx": self._ctx(page), "account": f"{person.tid}:{person.oid}"}
        )

    def accept(self, page: httpx.Response, on_behalf_of_organization: bool = False) -> httpx.Response:
        data = {"ctx": self._ctx(page)}
        if on_behalf_of_organization:
            data["on_behalf_of_organization"] = "1"
        return self.client.post(self._action(page, "/consent/accept"), data=data)

    def decline(self, page: httpx.Response) -> httpx.Response:
        return self.client.post(self._action(page, "/consent/decline"), data={"ctx": self._ctx(page)})

    def leave_without_approval(self, page: httpx.Response) -> httpx.Response:
        return self.client.post(self._action(page, "/adminapproval/return"), data={"ctx": self._ctx(page)})

    # --- Whole journeys ---

    def sign_in_through(self, person: Person, tenant: str = "organizations", **params) -> dict:
        """authorize → sign-in page → consent page if asked → the redirect's parameters."""
        response = self.authorize(tenant, **params)
        if response.status_code == 200 and 'name="password"' in response.text:
            response = self.sign_in(response, person)
        if response.status_code == 200 and "Permissions requested" in response.text:
            response = self.accept(response)
        return redirect_params(response)

    def grant_admin_consent(self, admin: Person, **params) -> dict:
        page = self.admin_consent(admin.tid, **params)
        consent = self.sign_in(page, admin)
        assert "Permissions requested" in consent.text, consent.text[:500]
        return redirect_params(self.accept(consent), to=CONSENT_REDIRECT_URI)


class Emulator:
    """The running emulator process, seen from the tests: its URL and its control API."""

    def __init__(self, url: str, ca_file: str | None = None):
        self.url = url
        self.ca_file = ca_file
        # One SSL context for all clients: building one per client costs ~50 ms.
        self.verify = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self.http = httpx.Client(base_url=url, timeout=10, verify=self.verify)

    def browser(self) -> Browser:
        return Browser(self.url, verify=self.verify)

    def reset(self) -> None:
        self.http.post("/_emulator/reset").raise_for_status()

    def control(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.request(method, f"/_emulator/{path}", json=body)

    def fault(self, **spec) -> None:
        self.control("POST", "faults", spec).raise_for_status()

    def token(self, tenant: str = "organizations", auth=None, **form) -> httpx.Response:
        return self.http.post(f"/{tenant}/oauth2/v2.0/token", data=form, auth=auth)

    def redeem(self, code: str, tenant: str = "organizations", **form) -> httpx.Response:
        body = {
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "code": code,
            "redirect_uri": REDIRECT_URI,
            **form,
        }
        return self.token(tenant, **{k: v for k, v in body.items() if v is not None})

    def client_credentials(self, tenant: str, **form) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": GRAPH_DEFAULT,
            **form,
        }
        return self.token(tenant, **body)

    def id_token_for(self, browser: Browser, person: Person, **params) -> str:
        """A full sign-in and code redemption; returns the ID token."""
        code = browser.sign_in_through(person, **params)["code"]
        response = self.redeem(code)
        assert response.status_code == 200, response.text
        return response.json()["id_token"]


def aad_json_error(response, status=400):
    """The body of a JSON error in Microsoft's shape, checked field by field."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    assert f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: {body['correlation_id']}" in body["error_description"]
    return body
