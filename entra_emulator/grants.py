"""The token endpoint: authorization_code, refresh_token and client_credentials grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from urllib.parse import unquote_plus

from starlette.responses import JSONResponse

from . import errors
from .directory import GRAPH_APP_ID, GRAPH_RESOURCE, OIDC_SCOPES, covers, normalize_scope
from .errors import AadError
from .responses import NO_STORE, emulator_of, json_error
from .tokens import (
    EXPIRES_IN,
    b64url,
    client_info,
    graph_app_token_claims,
    graph_user_token_claims,
    id_token_claims,
    sign,
    sign_id_token,
)

GRAPH_DEFAULT_SCOPES = (f"{GRAPH_RESOURCE}/.default", f"{GRAPH_APP_ID}/.default")


def _client_credentials(request, form) -> tuple[str | None, str | None]:
    """Client ID and secret from HTTP Basic (form-encoded parts, RFC 6749 §2.3.1) or the body."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_request("The Authorization header is not valid HTTP Basic.") from None
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        # RFC 6749 §2.3: one authentication method per request, not a choice between two.
        if "client_secret" in form or form.get("client_id", client_id) != client_id:
            raise errors.invalid_request("The client was authenticated by HTTP Basic and by the body: use one method.")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _authenticate(app, secret: str | None, now: float) -> str:
    if not secret:
        raise errors.missing_client_secret()
    matching = [s for s in app.secrets if hmac.compare_digest(s.value.encode(), secret.encode())]
    if not matching:
        raise errors.invalid_client_secret(app.client_id)
    if all(s.expires.timestamp() <= now for s in matching):
        raise errors.expired_client_secret(app.client_id)
    return secret


def _pkce_matches(verifier: str | None, challenge: str, method: str) -> bool:
    if not verifier:
        return False
    computed = b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    return hmac.compare_digest(computed.encode(), challenge.encode())


async def token(request):
    emulator = emulator_of(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    ref = request.path_params["tenant"]
    try:
        tenant = emulator.resolve_authority(ref, error="invalid_request")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
            raise errors.unsupported_grant_type(grant_type)
        client_id, secret = _client_credentials(request, form)
        if not client_id:
            raise errors.missing_parameter("client_id")
        app = emulator.directory.find_app(client_id)
        if grant_type == "client_credentials":
            if tenant is None:
                raise errors.no_tenant_for_client_credentials()
            # Without a service principal the app simply does not exist in that tenant.
            if app is None or app.client_id not in tenant.service_principals:
                raise errors.app_not_found(client_id, tenant.display_name)
        elif app is None:
            raise errors.app_not_found(client_id, tenant.display_name if tenant else ref)
        secret = _authenticate(app, secret, emulator.now())
        if grant_type == "client_credentials":
            body = _client_credentials_grant(emulator, form, tenant, app)
        elif grant_type == "authorization_code":
            body = _authorization_code_grant(emulator, form, tenant, app, secret)
        else:
            body = _refresh_token_grant(emulator, form, tenant, app, secret)
    except AadError as error:
        return json_error(request, error)
    return JSONResponse(body, headers=NO_STORE)


def _client_credentials_grant(emulator, form, tenant, app) -> dict:
    scope = form.get("scope", "").strip()
    if not scope:
        raise errors.missing_parameter("scope")
    if len(scope.split()) != 1 or not scope.endswith("/.default"):
        raise errors.client_credentials_scope(scope)
    if scope.lower() not in GRAPH_DEFAULT_SCOPES:
        raise errors.unknown_resource(scope.removesuffix("/.default"), tenant.display_name)
    now = int(emulator.now())
    claims = graph_app_token_claims(issuer=emulator.issuer(tenant.id), tenant=tenant, app=app, now=now)
    return {
        "token_type": "Bearer",
        "expires_in": EXPIRES_IN,
        "ext_expires_in": EXPIRES_IN,
        "access_token": sign(claims, emulator.keys.current),
    }


def _authorization_code_grant(emulator, form, tenant, app, secret) -> dict:
    value = form.get("code")
    if not value:
        raise errors.missing_parameter("code")
    code = emulator.codes.get(value)
    if code is None:
        raise errors.malformed_grant()
    if code.client_id != app.client_id or (tenant is not None and tenant.id != code.tid):
        raise errors.invalid_grant()
    if code.redeemed:
        raise errors.code_redeemed()
    # Any redemption attempt by the rightful client uses the code up, successful or not.
    code.redeemed = True
    if code.expires < emulator.now():
        raise errors.code_expired()
    redirect_uri = form.get("redirect_uri")
    if not redirect_uri:
        raise errors.missing_parameter("redirect_uri")
    if redirect_uri != code.redirect_uri:
        raise errors.reply_address_mismatch(redirect_uri, code.redirect_uri)
    if code.code_challenge and not _pkce_matches(
        form.get("code_verifier"), code.code_challenge, code.code_challenge_method
    ):
        raise errors.pkce_mismatch()
    return _user_tokens(
        emulator, form, app, code.tid, code.oid, code.scopes, code.nonce, code.sid, secret, code.auth_time
    )


def _refresh_token_grant(emulator, form, tenant, app, secret) -> dict:
    value = form.get("refresh_token")
    if not value:
        raise errors.missing_parameter("refresh_token")
    grant = emulator.refresh_tokens.get(value)
    if grant is None:
        raise errors.malformed_grant()
    if grant.client_id != app.client_id or (tenant is not None and tenant.id != grant.tid):
        raise errors.invalid_grant()
    scopes = grant.scopes
    if form.get("scope", "").strip():
        scopes = [normalize_scope(s) for s in form["scope"].split()]
        if not covers(grant.scopes, scopes):
            raise errors.consent_required(app.client_id, app.display_name, error="invalid_grant")
    return _user_tokens(emulator, form, app, grant.tid, grant.oid, scopes, None, grant.sid, secret, grant.auth_time)


def _user_tokens(emulator, form, app, tid, oid, scopes, nonce, sid, secret, auth_time=None) -> dict:
    tenant = emulator.directory.find_tenant(tid)
    user = tenant.find_user(oid) if tenant else None
    if user is None:
        raise errors.invalid_grant()
    if not user.enabled:
        raise errors.user_disabled(error="invalid_grant")
    # Revoked meanwhile (enterprise application deleted, grant removed): as Microsoft, refuse.
    if not tenant.has_consent(app.client_id, oid, scopes):
        raise errors.consent_required(app.client_id, app.display_name, error="invalid_grant")

    now = int(emulator.now())
    # Like Microsoft's static permissions: the Graph token carries the app's consented Graph
    # permissions even when only OpenID scopes were asked for.
    graph_scopes = [s for s in scopes if s not in OIDC_SCOPES]
    if not graph_scopes:
        required = [normalize_scope(s) for s in app.required_scopes]
        graph_scopes = [s for s in required if s not in OIDC_SCOPES and tenant.has_consent(app.client_id, oid, [s])]
    oidc = [s for s in scopes if s in OIDC_SCOPES and s != "offline_access"]
    access_claims = graph_user_token_claims(
        issuer=emulator.issuer(tid), tenant=tenant, user=user, app=app, scopes=oidc + graph_scopes, now=now
    )
    body = {
        "token_type": "Bearer",
        "scope": " ".join(oidc + graph_scopes),
        "expires_in": EXPIRES_IN,
        "ext_expires_in": EXPIRES_IN,
        "access_token": sign(access_claims, emulator.keys.current),
    }
    if "offline_access" in scopes:
        body["refresh_token"] = emulator.issue_refresh_token(app.client_id, tid, oid, scopes, sid, auth_time)
    if "openid" in scopes:
        claims = id_token_claims(
            issuer=emulator.issuer(tid), tenant=tenant, user=user, app=app, scopes=scopes, nonce=nonce, sid=sid, now=now
        )
        if auth_time is not None:  # asked for with max_age (OIDC: then required)
            claims["auth_time"] = auth_time
        body["id_token"] = sign_id_token(
            claims,
            emulator.keys,
            emulator.faults.take_token_faults(),
            client_secret=secret,
            wrong_tenant=str(uuid.uuid5(uuid.UUID(tid), "other")),
            now=now,
        )
    if form.get("client_info") == "1":
        body["client_info"] = client_info(tid, oid)
    return body
