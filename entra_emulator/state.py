"""The emulator's run-time state: the directory, signing keys, faults, browser sessions,
sign-ins in progress, authorization codes and refresh tokens.

All request handlers are ``async`` and run on one event loop, and none of them awaits while it
changes this state, so no locking is needed.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import errors
from .directory import MULTI_TENANT_ALIASES, Directory, Tenant
from .faults import FaultBook
from .tokens import KeyRing

CODE_LIFETIME = 600  # Microsoft: "about 10 minutes"
SIGN_IN_LIFETIME = 3600
SSO_COOKIE = "ESTSAUTH"


@dataclass
class SignIn:
    """An authorization or admin-consent request between its arrival and the redirect back."""

    id: str
    kind: str  # "authorize" or "adminconsent"
    authority: str  # the tenant segment of the URL as the app sent it
    tenant_id: str | None  # None for common / organizations
    client_id: str
    redirect_uri: str
    response_mode: str
    state: str | None
    scopes: list[str]
    created: float
    app_roles: list[str] = field(default_factory=list)  # Graph application permissions asked for
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: str | None = None
    login_hint: str | None = None
    domain_hint: str | None = None
    client_info: bool = False
    max_age: int | None = None  # OIDC: seconds since the person last typed a password here
    account: tuple[str, str] | None = None  # (tid, oid) once the person is known


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    tid: str
    oid: str
    scopes: list[str]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    sid: str
    expires: float
    redeemed: bool = False
    auth_time: int | None = None  # in the ID token when the app sent max_age


@dataclass
class RefreshToken:
    client_id: str
    tid: str
    oid: str
    scopes: list[str]
    sid: str
    auth_time: int | None = None


@dataclass
class SsoSession:
    """What the browser's SSO cookie points at; accounts are most recent first, each with when
    its password was last typed (OIDC's auth_time)."""

    sid: str = field(default_factory=lambda: str(uuid.uuid4()))
    accounts: list[tuple[str, str]] = field(default_factory=list)
    authenticated_at: dict[tuple[str, str], int] = field(default_factory=dict)

    def fresh_enough(self, account: tuple[str, str], max_age: int | None, now: float) -> bool:
        """Whether the account's last password entry is within `max_age` seconds (OIDC)."""
        return max_age is None or now - self.authenticated_at.get(account, 0) <= max_age


class Emulator:
    def __init__(self, directory_data: dict, public_url: str):
        self.public_url = public_url.rstrip("/")
        self._initial_directory = copy.deepcopy(directory_data)
        self.directory = Directory.from_dict(directory_data)
        self.keys = KeyRing()
        self._initial_keys = list(self.keys.keys)
        self.faults = FaultBook()
        self.clock_offset = 0.0
        self.sign_ins: dict[str, SignIn] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.sessions: dict[str, SsoSession] = {}

    def reset(self) -> None:
        """Back to the state at start: directory as loaded, original keys, nothing in flight."""
        self.directory = Directory.from_dict(copy.deepcopy(self._initial_directory))
        self.keys = KeyRing(self._initial_keys)
        self.faults.clear()
        self.clock_offset = 0.0
        self.sign_ins.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.sessions.clear()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    # --- Issuers and tenants ---

    def issuer(self, tid: str) -> str:
        return f"{self.public_url}/{tid}/v2.0"

    @property
    def issuer_template(self) -> str:
        return self.issuer("{tenantid}")

    def resolve_authority(self, ref: str, error: str = "invalid_tenant") -> Tenant | None:
        """The tenant a URL names, ``None`` for the multi-tenant aliases; raises AADSTS90002."""
        if ref.lower() in MULTI_TENANT_ALIASES:
            return None
        tenant = self.directory.find_tenant(ref)
        if tenant is None:
            raise errors.tenant_not_found(ref, error=error)
        return tenant

    # --- Sign-ins in progress ---

    def start_sign_in(self, **fields) -> SignIn:
        self._expire()
        sign_in = SignIn(id=secrets.token_urlsafe(24), created=self.now(), **fields)
        self.sign_ins[sign_in.id] = sign_in
        return sign_in

    def find_sign_in(self, sign_in_id: str) -> SignIn | None:
        self._expire()
        return self.sign_ins.get(sign_in_id or "")

    def _expire(self) -> None:
        now = self.now()
        for key in [k for k, s in self.sign_ins.items() if s.created + SIGN_IN_LIFETIME < now]:
            del self.sign_ins[key]
        for key in [k for k, c in self.codes.items() if c.expires + CODE_LIFETIME < now]:
            del self.codes[key]  # kept a while after expiry so a late redemption gets AADSTS70008

    # --- Browser SSO sessions ---

    def session_of(self, request) -> SsoSession | None:
        return self.sessions.get(request.cookies.get(SSO_COOKIE, ""))

    def remember_account(self, request, tid: str, oid: str, typed_password: bool) -> tuple[str, SsoSession]:
        """Adds the account to the browser's session (creating one); returns the cookie value."""
        key = request.cookies.get(SSO_COOKIE, "")
        session = self.sessions.get(key)
        if session is None:
            key = secrets.token_urlsafe(32)
            session = self.sessions[key] = SsoSession()
        session.accounts = [(tid, oid)] + [a for a in session.accounts if a != (tid, oid)]
        if typed_password:
            session.authenticated_at[(tid, oid)] = int(self.now())
        return key, session

    def end_session(self, request) -> None:
        self.sessions.pop(request.cookies.get(SSO_COOKIE, ""), None)

    # --- Codes and refresh tokens ---

    def issue_code(self, sign_in: SignIn, session: SsoSession) -> str:
        code = "1.A" + secrets.token_urlsafe(96)
        tid, oid = sign_in.account
        self.codes[code] = AuthorizationCode(
            client_id=sign_in.client_id,
            redirect_uri=sign_in.redirect_uri,
            tid=tid,
            oid=oid,
            scopes=list(sign_in.scopes),
            nonce=sign_in.nonce,
            code_challenge=sign_in.code_challenge,
            code_challenge_method=sign_in.code_challenge_method,
            sid=session.sid,
            expires=self.now() + CODE_LIFETIME,
            auth_time=session.authenticated_at.get(sign_in.account) if sign_in.max_age is not None else None,
        )
        return code

    def issue_refresh_token(self, client_id: str, tid: str, oid: str, scopes, sid: str, auth_time=None) -> str:
        token = "1.A" + secrets.token_urlsafe(160)
        self.refresh_tokens[token] = RefreshToken(client_id, tid, oid, list(scopes), sid, auth_time)
        return token
