"""The browser side: authorize, the sign-in / consent / "need admin approval" pages, admin
consent, and logout.

An authorization or admin-consent request becomes a ``SignIn`` held by the emulator; every page
carries its id (``ctx``, as Microsoft's pages do) and every step ends in ``_continue``, which
decides what the person sees next or sends the result back to the app.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse
from starlette.routing import Route

from . import errors
from .directory import GRAPH_RESOURCE, OIDC_SCOPES, normalize_scope
from .errors import AadError
from .responses import NO_STORE, emulator_of, error_page, error_to_app, render, to_app, with_query
from .state import SSO_COOKIE, SsoSession
from .tokens import client_info

PROMPTS = ("login", "none", "consent", "select_account")
RESPONSE_MODES = ("query", "fragment", "form_post")
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    f"{GRAPH_RESOURCE}/User.Read": "Sign you in and read your profile",
}
APP_ROLE_DESCRIPTIONS = {"User.Read.All": "Read all users' full profiles"}


async def _form(request) -> dict:
    """The form's text fields (an uploaded file in a multipart body is ignored)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


async def _params(request) -> dict:
    """The request's parameters, from the query and a POST's form; AadError when one is given
    twice, as Microsoft refuses it rather than pick one (two `redirect_uri`, two `prompt`)."""
    items = request.query_params.multi_items()
    if request.method == "POST":  # its text fields (an uploaded file in a multipart body is ignored)
        items += [(name, value) for name, value in (await request.form()).multi_items() if isinstance(value, str)]
    params = dict(items)
    names = [name for name, _ in items]
    if len(names) != len(params):
        raise errors.duplicated_parameter(next(name for name in names if names.count(name) > 1))
    return params


def _requested_app(emulator, params: dict, ref: str):
    """The tenant, the app and its redirect URI, checked before anything can be sent back to the
    app: these failures are shown on the emulator's own page, as Microsoft does."""
    tenant = emulator.resolve_authority(ref)
    client_id = params.get("client_id")
    if not client_id:
        raise errors.missing_parameter("client_id")
    app = emulator.directory.find_app(client_id)
    if app is None:
        raise errors.app_not_found(client_id, tenant.display_name if tenant else ref)
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise errors.missing_parameter("redirect_uri")
    if redirect_uri not in app.redirect_uris:
        raise errors.redirect_uri_mismatch(redirect_uri, app.client_id)
    return tenant, app


def _asks_for_default(value: str) -> bool:
    return any(normalize_scope(s) == f"{GRAPH_RESOURCE}/.default" for s in value.split())


def _scopes(value: str, app, tenant, ref: str) -> list[str]:
    scopes, named = [], set()
    for scope in (normalize_scope(s) for s in value.split()):
        if scope.startswith(GRAPH_RESOURCE + "/"):
            named.add(scope)
        if scope == f"{GRAPH_RESOURCE}/.default":
            expanded = [normalize_scope(s) for s in app.required_scopes]
        elif scope in OIDC_SCOPES or scope.startswith(GRAPH_RESOURCE + "/"):
            expanded = [scope]
        else:
            raise errors.unknown_resource(scope.rsplit("/", 1)[0], tenant.display_name if tenant else ref)
        scopes.extend(s for s in expanded if s not in scopes)
    if f"{GRAPH_RESOURCE}/.default" in named and len(named) > 1:
        raise errors.mixed_default_scope(value)
    return scopes


async def authorize(request):
    emulator = emulator_of(request)
    ref = request.path_params["tenant"]
    try:
        params = await _params(request)
        tenant, app = _requested_app(emulator, params, ref)
    except AadError as error:
        return error_page(request, error)

    redirect_uri, state = params["redirect_uri"], params.get("state")
    response_mode = params.get("response_mode") or "query"
    method = params.get("code_challenge_method") or "plain"  # Microsoft: missing means plain
    try:
        if response_mode not in RESPONSE_MODES:
            response_mode = "query"
            raise errors.invalid_request(f"Invalid response_mode '{params['response_mode']}'.")
        if not params.get("response_type"):
            raise errors.missing_parameter("response_type")
        if params["response_type"] != "code":
            raise errors.unsupported_response_type(params["response_type"])
        if not params.get("scope", "").strip():
            raise errors.missing_parameter("scope")
        scopes = _scopes(params["scope"], app, tenant, ref)
        if params.get("prompt") and params["prompt"] not in PROMPTS:
            raise errors.invalid_prompt(params["prompt"])
        if params.get("code_challenge"):
            if method not in ("S256", "plain"):
                raise errors.invalid_code_challenge_method(method)
            # RFC 7636: an S256 challenge is 43 characters (unpadded base64url of a SHA-256
            # hash); a plain one is the verifier itself, 43 to 128 characters.
            size = len(params["code_challenge"])
            if (method == "S256" and size != 43) or not 43 <= size <= 128:
                raise errors.invalid_code_challenge_size()
    except AadError as error:
        return error_to_app(request, redirect_uri, response_mode, error, state)

    sign_in = emulator.start_sign_in(
        kind="authorize",
        authority=ref,
        tenant_id=tenant.id if tenant else None,
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        response_mode=response_mode,
        state=state,
        scopes=scopes,
        nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge") or None,
        code_challenge_method=method if params.get("code_challenge") else None,
        prompt=params.get("prompt") or None,
        login_hint=params.get("login_hint") or None,
        domain_hint=params.get("domain_hint") or None,
        client_info=params.get("client_info") == "1",
        max_age=_max_age(params.get("max_age")),
    )
    return _start(request, sign_in)


def _max_age(value) -> int | None:
    """OIDC's max_age: a whole number of seconds; anything else is left out, as if not sent."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10 else None


async def admin_consent(request):
    emulator = emulator_of(request)
    ref = request.path_params["tenant"]
    try:
        params = await _params(request)
        tenant, app = _requested_app(emulator, params, ref)
    except AadError as error:
        return error_page(request, error)
    try:
        # Required at the v2.0 endpoint; ".../.default" asks for the app's configured permissions.
        if not params.get("scope", "").strip():
            raise errors.missing_parameter("scope")
        scopes = _scopes(params["scope"], app, tenant, ref)
    except AadError as error:
        return error_to_app(request, params["redirect_uri"], "query", error, params.get("state"))
    # Application permissions are static: only "/.default" asks for those the app is registered with.
    app_roles = app.graph_app_roles if _asks_for_default(params["scope"]) else []
    sign_in = emulator.start_sign_in(
        kind="adminconsent",
        authority=ref,
        tenant_id=tenant.id if tenant else None,
        client_id=app.client_id,
        redirect_uri=params["redirect_uri"],
        response_mode="query",
        state=params.get("state"),
        scopes=scopes,
        app_roles=app_roles,
        prompt="select_account",
        login_hint=params.get("login_hint") or None,
    )
    return _sign_in_page(request, sign_in)


def _session_accounts(request, sign_in) -> list[tuple[str, str]]:
    """Accounts signed in in this browser that fit the request (tenant, login_hint, domain_hint)."""
    emulator = emulator_of(request)
    session = emulator.session_of(request)
    fitting = []
    for tid, oid in session.accounts if session else []:
        tenant = emulator.directory.find_tenant(tid)
        user = tenant.find_user(oid) if tenant else None
        if user is None or (sign_in.tenant_id and sign_in.tenant_id != tid):
            continue
        if not session.fresh_enough((tid, oid), sign_in.max_age, emulator.now()):
            continue  # OIDC max_age: the password is asked for again
        if sign_in.login_hint and sign_in.login_hint.lower() != user.upn.lower():
            continue
        hinted = sign_in.domain_hint and emulator.directory.find_tenant(sign_in.domain_hint)
        if hinted and hinted.id != tid:
            continue
        fitting.append((tid, oid))
    return fitting


def _start(request, sign_in):
    """Single sign-on where the browser's session allows it, otherwise the sign-in page."""
    candidates = _session_accounts(request, sign_in)
    if sign_in.prompt == "none":
        if not candidates:
            return _fail(request, sign_in, errors.login_required())
        if len(candidates) > 1 and not sign_in.login_hint:
            return _fail(request, sign_in, errors.account_selection_required())
    elif sign_in.prompt in ("login", "select_account") or len(candidates) != 1:
        return _sign_in_page(request, sign_in)
    sign_in.account = candidates[0]
    return _continue(request, sign_in)


def _continue(request, sign_in):
    """The person is known: check them against the tenant and the app, then consent, then code."""
    emulator = emulator_of(request)
    directory = emulator.directory
    tenant = directory.find_tenant(sign_in.account[0])
    user = tenant.find_user(sign_in.account[1]) if tenant else None
    app = directory.find_app(sign_in.client_id)
    if user is None or app is None:
        sign_in.account = None
        return _sign_in_page(request, sign_in)
    if not user.enabled:
        if sign_in.prompt == "none":
            return _fail(request, sign_in, errors.user_disabled("interaction_required"))
        sign_in.account = None
        return _sign_in_page(request, sign_in, error=errors.user_disabled(), username=user.upn)
    if sign_in.tenant_id and sign_in.tenant_id != tenant.id:
        wanted = directory.find_tenant(sign_in.tenant_id)
        return _fail(
            request,
            sign_in,
            errors.account_not_in_tenant(
                tenant.id,
                wanted.display_name if wanted else sign_in.tenant_id,
                app.client_id,
                app.display_name,
            ),
        )

    if sign_in.kind == "adminconsent":
        if not _may_grant_admin_consent(user, sign_in):
            return render("approval.html", sign_in=sign_in, app=app, tenant=tenant, user=user)
        return _consent_page(sign_in, app, tenant, user)

    if not tenant.is_assigned(app.client_id, user.oid):
        return _fail(request, sign_in, errors.user_not_assigned(user.oid, app.client_id, app.display_name))
    if sign_in.prompt == "consent" or not tenant.has_consent(app.client_id, user.oid, sign_in.scopes):
        if sign_in.prompt == "none":
            return _fail(request, sign_in, errors.consent_required(app.client_id, app.display_name))
        if tenant.user_consent_allowed or user.admin:
            return _consent_page(sign_in, app, tenant, user)
        return render("approval.html", sign_in=sign_in, app=app, tenant=tenant, user=user)

    # The session was created by this very request when the person just typed a password.
    key = getattr(request.state, "sso_key", None) or request.cookies.get(SSO_COOKIE, "")
    session = emulator.sessions.get(key) or SsoSession()
    code = emulator.issue_code(sign_in, session)
    emulator.sign_ins.pop(sign_in.id, None)
    return to_app(
        sign_in.redirect_uri,
        sign_in.response_mode,
        {
            "code": code,
            "client_info": client_info(tenant.id, user.oid) if sign_in.client_info else None,
            "state": sign_in.state,
            "session_state": session.sid,
        },
    )


def _may_grant_admin_consent(user, sign_in) -> bool:
    """Every administrator role may grant delegated permissions; Graph's application
    permissions need a Global Administrator or a Privileged Role Administrator."""
    return user.admin and (user.may_grant_graph_app_roles or not sign_in.app_roles)


def _fail(request, sign_in, error: AadError, extra: dict | None = None):
    emulator_of(request).sign_ins.pop(sign_in.id, None)
    return error_to_app(request, sign_in.redirect_uri, sign_in.response_mode, error, sign_in.state, extra)


def _sign_in_page(
    request, sign_in, error: AadError | None = None, message: str | None = None, username: str | None = None
):
    emulator = emulator_of(request)
    directory = emulator.directory
    session = emulator.session_of(request)
    signed_in = []
    for tid, oid in session.accounts if session else []:
        tenant = directory.find_tenant(tid)
        user = tenant.find_user(oid) if tenant else None
        if user:
            signed_in.append((tenant, user))
    # A development aid: the accounts of the tenant the request is about, to pick from.
    shown = directory.find_tenant(sign_in.tenant_id or sign_in.domain_hint or "")
    shown_tenants = [shown] if shown else directory.tenants
    return render(
        "signin.html",
        sign_in=sign_in,
        app=directory.find_app(sign_in.client_id),
        tenant=directory.find_tenant(sign_in.tenant_id or ""),
        signed_in=signed_in,
        directory_accounts=[(t, u) for t in shown_tenants for u in t.users],
        username=username or sign_in.login_hint or "",
        error=error,
        message=message,
    )


def _consent_page(sign_in, app, tenant, user):
    permissions = [SCOPE_DESCRIPTIONS.get(s, s) for s in sign_in.scopes]
    permissions += [APP_ROLE_DESCRIPTIONS.get(r, r) for r in sign_in.app_roles]
    return render(
        "consent.html", sign_in=sign_in, app=app, tenant=tenant, user=user, permissions=list(dict.fromkeys(permissions))
    )


def _expired(request):
    return error_page(
        request,
        errors.invalid_request(
            "The sign-in request has expired or was already completed. Go back to the application and sign in again."
        ),
    )


async def show_sign_in(request):
    """Back to the sign-in form, for "Use another account" and "Have an admin account?"."""
    sign_in = emulator_of(request).find_sign_in(request.query_params.get("ctx"))
    if sign_in is None:
        return _expired(request)
    sign_in.account = None
    return _sign_in_page(request, sign_in, username=request.query_params.get("username"))


async def submit_sign_in(request):
    emulator = emulator_of(request)
    form = await _form(request)
    sign_in = emulator.find_sign_in(form.get("ctx"))
    if sign_in is None:
        return _expired(request)

    picked = form.get("account")
    if picked:
        tid, _, oid = picked.partition(":")
        session = emulator.session_of(request)
        user = emulator.directory.find_user(tid, oid)
        known = session and (tid, oid) in session.accounts
        fresh = known and session.fresh_enough((tid, oid), sign_in.max_age, emulator.now())
        if fresh and user and sign_in.prompt != "login":
            return _signed_in(request, sign_in, tid, oid, typed_password=False)
        return _sign_in_page(request, sign_in, username=user.upn if user else "")

    username = (form.get("username") or "").strip()
    password = form.get("password") or ""
    tenant, user = emulator.directory.find_account(username)
    if not username:
        return _sign_in_page(request, sign_in, message="Enter a valid email address, phone number, or Skype name.")
    if user is None:
        return _sign_in_page(
            request,
            sign_in,
            username=username,
            message=(
                "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin."
            ),
        )
    if not password:
        return _sign_in_page(request, sign_in, username=username, message="Please enter your password.")
    if not hmac.compare_digest(password.encode(), user.password.encode()):
        return _sign_in_page(
            request,
            sign_in,
            username=username,
            message=("Your account or password is incorrect. If you don't remember your password, reset it now."),
        )
    if not user.enabled:
        return _sign_in_page(request, sign_in, username=username, error=errors.user_disabled())
    return _signed_in(request, sign_in, tenant.id, user.oid, typed_password=True)


def _signed_in(request, sign_in, tid: str, oid: str, typed_password: bool):
    key, _ = emulator_of(request).remember_account(request, tid, oid, typed_password)
    request.state.sso_key = key
    sign_in.account = (tid, oid)
    response = _continue(request, sign_in)
    response.set_cookie(SSO_COOKIE, key, httponly=True, samesite="lax", path="/", secure=request.url.scheme == "https")
    return response


async def _known_sign_in(request):
    emulator = emulator_of(request)
    sign_in = emulator.find_sign_in((await _form(request)).get("ctx"))
    if sign_in is None or sign_in.account is None:
        return None, None, None
    tenant = emulator.directory.find_tenant(sign_in.account[0])
    return sign_in, tenant, tenant.find_user(sign_in.account[1]) if tenant else None


async def accept_consent(request):
    sign_in, tenant, user = await _known_sign_in(request)
    if sign_in is None or user is None:
        return _expired(request)
    form = await _form(request)
    app = emulator_of(request).directory.find_app(sign_in.client_id)
    if sign_in.kind == "adminconsent":
        if not _may_grant_admin_consent(user, sign_in):
            return render("approval.html", sign_in=sign_in, app=app, tenant=tenant, user=user)
        tenant.grant_admin_consent(sign_in.client_id, sign_in.scopes, sign_in.app_roles)
        emulator_of(request).sign_ins.pop(sign_in.id, None)
        return to_app(
            sign_in.redirect_uri,
            "query",
            {"admin_consent": "True", "tenant": tenant.id, "scope": " ".join(sign_in.scopes), "state": sign_in.state},
        )
    if user.admin and form.get("on_behalf_of_organization"):
        tenant.grant_admin_consent(sign_in.client_id, sign_in.scopes)
    elif tenant.user_consent_allowed or user.admin:
        tenant.grant_user_consent(sign_in.client_id, user.oid, sign_in.scopes)
    sign_in.prompt = None  # consent given: prompt=consent is satisfied
    return _continue(request, sign_in)


async def decline_consent(request):
    sign_in, _, _ = await _known_sign_in(request)
    if sign_in is None:
        return _expired(request)
    if sign_in.kind == "adminconsent":
        return _fail(request, sign_in, errors.consent_declined(), extra={"admin_consent": "True"})
    return _fail(request, sign_in, errors.consent_declined(subcode="cancel"))


async def leave_without_approval(request):
    """The admin-approval page's "Return to the application without granting consent". Microsoft
    answers a cancelled sign-in with only ``error=access_denied&error_subcode=cancel&state=…``:
    no ``error_description``, so no AADSTS code, reaches the app."""
    sign_in, _, _ = await _known_sign_in(request)
    if sign_in is None:
        return _expired(request)
    emulator_of(request).sign_ins.pop(sign_in.id, None)
    return to_app(
        sign_in.redirect_uri,
        sign_in.response_mode,
        {"error": "access_denied", "error_subcode": "cancel", "state": sign_in.state},
    )


def _may_return_after_logout(emulator, uri: str, client_id: str | None) -> bool:
    """A registered redirect URI, or any URL on the same origin as one (Microsoft requires the
    URL to be registered; the emulator is lenient about the path)."""
    apps = [emulator.directory.find_app(client_id)] if client_id else emulator.directory.apps
    try:
        origin = urlsplit(uri)[:2]
    except ValueError:  # "http://[::1": no address at all
        return False
    return any(uri == r or urlsplit(r)[:2] == origin for app in apps if app for r in app.redirect_uris)


async def logout(request):
    emulator = emulator_of(request)
    try:
        params = await _params(request)
    except AadError as error:
        return error_page(request, error)
    if request.method == "HEAD":  # a link checker or prefetcher: nobody asked to sign out
        return render("signed_out.html")
    emulator.end_session(request)
    uri = params.get("post_logout_redirect_uri")
    if uri and _may_return_after_logout(emulator, uri, params.get("client_id")):
        if params.get("state"):
            uri = with_query(uri, {"state": params["state"]})
        response = RedirectResponse(uri, status_code=302, headers=NO_STORE)
    else:
        response = render("signed_out.html")
    response.delete_cookie(SSO_COOKIE, path="/")
    return response


routes = [
    Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
    Route("/{tenant}/v2.0/adminconsent", admin_consent),
    Route("/{tenant}/login", show_sign_in, methods=["GET"]),
    Route("/{tenant}/login", submit_sign_in, methods=["POST"]),
    Route("/{tenant}/consent/accept", accept_consent, methods=["POST"]),
    Route("/{tenant}/consent/decline", decline_consent, methods=["POST"]),
    Route("/{tenant}/adminapproval/return", leave_without_approval, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
]
