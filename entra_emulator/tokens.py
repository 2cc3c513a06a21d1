"""Signing keys, the JWKS document, and the ID and access tokens the emulator issues.

Keys are RSA-2048 with a self-signed certificate, like Microsoft's; the ``kid`` is the
certificate's SHA-1 thumbprint in base64url (Microsoft's ``kid`` equals its ``x5t``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .directory import GRAPH_APP_ID, GRAPH_RESOURCE, App, Tenant, User, short_scope

TOKEN_LIFETIME = 3600
EXPIRES_IN = 3599
GRAPH_AUDIENCES = (GRAPH_RESOURCE, GRAPH_APP_ID)
# Microsoft always publishes more than one key; clients must pick by kid.
PUBLISHED_KEYS = 2


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.windows.net")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=5 * 365))
            .sign(key, hashes.SHA256())
        )
        # x5t is defined as the SHA-1 thumbprint (RFC 7517); it is an identifier, not a signature.
        thumbprint = certificate.fingerprint(hashes.SHA1())  # noqa: S303
        return cls(key, certificate, b64url(thumbprint))

    def jwk(self, issuer: str) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "cloud_instance_name": "microsoftonline.com",
            "issuer": issuer,
        }


class KeyRing:
    """The current signing key plus the previous one(s) that stay published after a rotation."""

    def __init__(self, keys: list[SigningKey] | None = None):
        self.keys = list(keys) if keys else [SigningKey.generate() for _ in range(PUBLISHED_KEYS)]

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    @property
    def published(self) -> list[SigningKey]:
        return self.keys[-PUBLISHED_KEYS:]

    def rotate(self) -> SigningKey:
        self.keys = self.published[1:] + [SigningKey.generate()]
        return self.current

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self.published if k.kid == kid), None)

    def jwks(self, issuer: str) -> dict:
        return {"keys": [k.jwk(issuer) for k in self.published]}


def pairwise_sub(client_id: str, tid: str, oid: str) -> str:
    """Stable per (app, tenant, user), unrelated across apps: Microsoft's pairwise ``sub``."""
    return b64url(hashlib.sha256(f"{client_id}|{tid}|{oid}".encode()).digest())


def client_info(tid: str, oid: str) -> str:
    return b64url(json.dumps({"uid": oid, "utid": tid}, separators=(",", ":")).encode())


def service_principal_oid(tid: str, client_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tid), f"service-principal:{client_id}"))


def _opaque(length: int = 32) -> str:
    return b64url(secrets.token_bytes(length))


def _common_claims(issuer: str, tid: str, now: int) -> dict:
    return {
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "aio": _opaque(60),
        "rh": f"1.A{_opaque(40)}AA.",
        "tid": tid,
        "uti": _opaque(16),
    }


def id_token_claims(
    *, issuer: str, tenant: Tenant, user: User, app: App, scopes, nonce: str | None, sid: str, now: int
) -> dict:
    claims = {"aud": app.client_id, **_common_claims(issuer, tenant.id, now)}
    claims.update(sub=pairwise_sub(app.client_id, tenant.id, user.oid), ver="2.0", sid=sid)
    if nonce:
        claims["nonce"] = nonce
    if "profile" in scopes:
        claims.update(oid=user.oid, name=user.display_name, preferred_username=user.upn)
    if "email" in scopes and user.mail:
        claims["email"] = user.mail
    if user.guest_idp:  # Microsoft: the issuer, unless the account is not of this tenant (guests)
        claims["idp"] = user.guest_idp
    return claims


def graph_user_token_claims(*, issuer: str, tenant: Tenant, user: User, app: App, scopes, now: int) -> dict:
    """A delegated Graph access token. Real Graph tokens are meant for Graph only; clients must
    not parse them, so only the emulator's own ``/v1.0/me`` reads these."""
    claims = {"aud": GRAPH_RESOURCE, **_common_claims(issuer, tenant.id, now)}
    claims.update(
        app_displayname=app.display_name,
        appid=app.client_id,
        appidacr="1",
        idtyp="user",
        name=user.display_name,
        oid=user.oid,
        scp=" ".join(short_scope(s) for s in scopes if s != "offline_access"),
        sub=pairwise_sub(GRAPH_APP_ID, tenant.id, user.oid),
        unique_name=user.upn,
        upn=user.upn,
        ver="1.0",
    )
    return claims


def graph_app_token_claims(*, issuer: str, tenant: Tenant, app: App, now: int) -> dict:
    """An app-only Graph access token (client credentials), for the app's service principal.

    ``roles`` lists the application permissions granted in the tenant (by admin consent with
    ``/.default``); Microsoft leaves the claim out when none were granted. App-only tokens never
    carry ``scp``."""
    oid = service_principal_oid(tenant.id, app.client_id)
    claims = {"aud": GRAPH_RESOURCE, **_common_claims(issuer, tenant.id, now)}
    claims.update(
        app_displayname=app.display_name, appid=app.client_id, appidacr="1", idtyp="app", oid=oid, sub=oid, ver="1.0"
    )
    roles = tenant.app_role_assignments.get(app.client_id)
    if roles:
        claims["roles"] = list(roles)
    return claims


def sign(claims: dict, key: SigningKey) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"typ": "JWT", "kid": key.kid})


def sign_id_token(
    claims: dict, keys: KeyRing, faults: list[str], *, client_secret: str | None, wrong_tenant: str, now: int
) -> str:
    """Signs an ID token, first breaking it as the active faults ask."""
    claims = dict(claims)
    tid = claims["tid"]
    for fault in faults:
        if fault == "wrong_iss":
            claims["iss"] = claims["iss"].replace(tid, wrong_tenant)
        elif fault == "wrong_aud":
            claims["aud"] = str(uuid.uuid4())
        elif fault in ("missing_aud", "missing_sub", "missing_iat"):
            claims.pop(fault.removeprefix("missing_"), None)
        elif fault == "expired":
            claims.update(iat=now - 2 * TOKEN_LIFETIME, nbf=now - 2 * TOKEN_LIFETIME, exp=now - TOKEN_LIFETIME)
        elif fault == "future_nbf":
            claims.update(nbf=now + TOKEN_LIFETIME, exp=now + 2 * TOKEN_LIFETIME)
        elif fault == "wrong_nonce":
            claims["nonce"] = _opaque(16)
        elif fault == "tid_mismatch":
            claims["tid"] = wrong_tenant
        elif fault == "rotated_kid":
            keys.rotate()

    signing = [f for f in faults if f in ("bad_signature", "alg_none", "hs256_client_secret", "unknown_kid")]
    mode = signing[-1] if signing else None
    if mode == "alg_none":
        # Keeps the current key's kid, so a client that looks the key up first still finds it:
        # only the algorithm is wrong.
        return jwt.encode(claims, None, algorithm="none", headers={"typ": "JWT", "kid": keys.current.kid})
    if mode == "hs256_client_secret":
        with warnings.catch_warnings():  # client secrets are often shorter than HS256 wants
            warnings.simplefilter("ignore")
            return jwt.encode(
                claims, client_secret or "", algorithm="HS256", headers={"typ": "JWT", "kid": keys.current.kid}
            )
    if mode == "unknown_kid":
        return sign(claims, SigningKey.generate())
    token = sign(claims, keys.current)
    if mode == "bad_signature":
        head, body, signature = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
        raw[len(raw) // 2] ^= 0xFF
        token = f"{head}.{body}.{b64url(bytes(raw))}"
    return token


class InvalidToken(Exception):
    pass


def verify_graph_token(token: str, keys: KeyRing, issuer_for, now: float) -> dict:
    """Validates an access token presented to the emulator's Graph endpoints."""
    try:
        header = jwt.get_unverified_header(token)
        key = keys.find(header.get("kid", ""))
        if key is None or header.get("alg") != "RS256":
            raise InvalidToken("Signing key not found.")
        claims = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_AUDIENCES),
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise InvalidToken("Access token validation failure. Invalid audience.") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"Invalid token: {exc}") from None
    if claims.get("iss") != issuer_for(claims.get("tid", "")):
        raise InvalidToken("Invalid issuer.")
    # Time is checked here, on the emulator's clock, which tests may move forward.
    if claims.get("exp", 0) < now:
        raise InvalidToken("Lifetime validation failed, the token is expired.")
    if claims.get("nbf", 0) > now + 300:
        raise InvalidToken("Lifetime validation failed, the token is not yet valid.")
    return claims
