"""Microsoft Graph, the part the emulator serves: ``GET /v1.0/me`` (delegated), ``GET
/v1.0/users/{id}`` (app-only, needs the ``User.Read.All`` application permission), ``POST
/v1.0/$batch`` over both, and the OIDC userinfo endpoint, which shares their token check.

Errors have Graph's shape: ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``. Clients branch on the HTTP status and ``code``, never on the text.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.responses import JSONResponse
from starlette.routing import Route

from .responses import emulator_of, trace_of
from .tokens import InvalidToken, pairwise_sub, verify_graph_token

MAX_BATCH_REQUESTS = 20
# The application permissions that let an app read users with accountEnabled.
READ_USERS_ROLES = ("User.Read.All",)
# What Graph returns for a user without $select; accountEnabled is "returned only on $select".
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_PROPERTIES = (*DEFAULT_USER_PROPERTIES, "accountEnabled")
JSON_HEADERS = {"Content-Type": "application/json"}
ODATA_HEADERS = {
    "Cache-Control": "no-cache",
    "OData-Version": "4.0",
    "Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
}


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def insufficient_privileges() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def unavailable(status: int, retry_after: int | None = None) -> GraphError:
    """A throttled (429) or failing answer, as fault injection asks for it."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 429:
        return GraphError(429, "TooManyRequests", "Too many requests. Please retry again later.", headers)
    return GraphError(status, "serviceNotAvailable", "The service is temporarily unavailable.", headers)


def error_body(request, error: GraphError) -> dict:
    now = emulator_of(request).now_datetime()
    trace = trace_of(request)
    inner = {
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": trace.trace_id,
        "client-request-id": trace.correlation_id,
    }
    return {"error": {"code": error.code, "message": error.message, "innerError": inner}}


def error_response(request, error: GraphError) -> JSONResponse:
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm=""'
    return JSONResponse(error_body(request, error), status_code=error.status, headers=headers)


# --- The caller ---


def _verified_claims(request) -> dict:
    """The claims of a valid Graph access token in the Authorization header."""
    emulator = emulator_of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        return verify_graph_token(token.strip(), emulator.keys, emulator.issuer, emulator.now())
    except InvalidToken as exc:
        raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from None


def _signed_in_user(request, claims: dict):
    if claims.get("idtyp") == "app":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    user = emulator_of(request).directory.find_user(claims.get("tid", ""), claims.get("oid", ""))
    if user is None or not user.enabled:
        raise GraphError(401, "InvalidAuthenticationToken", "The user does not exist.")
    return user


# --- Resources ---


def _selected_properties(query) -> list[str] | None:
    """The properties named by ``$select`` in Graph's spelling (names match case-insensitively)."""
    names = [n.strip() for n in query.get("$select", "").split(",") if n.strip()]
    if not names:
        return None
    known = {p.lower(): p for p in USER_PROPERTIES}
    for name in names:
        if name.lower() not in known:
            message = f"Could not find a property named '{name}' on type 'Microsoft.DirectoryServices.User'."
            raise GraphError(400, "Request_BadRequest", message)
    return list(dict.fromkeys(known[n.lower()] for n in names))


def _user_resource(request, user, query) -> dict:
    selected = _selected_properties(query)
    values = {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": None,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": user.surname,
        "userPrincipalName": user.upn,
        "id": user.oid,
        "accountEnabled": user.enabled,
    }
    context = f"users({','.join(selected)})/$entity" if selected else "users/$entity"
    body = {"@odata.context": f"{emulator_of(request).public_url}/v1.0/$metadata#{context}"}
    return body | {name: values[name] for name in selected or DEFAULT_USER_PROPERTIES}


def _me(request, claims: dict, query) -> dict:
    user = _signed_in_user(request, claims)
    if "user.read" not in claims.get("scp", "").lower().split():
        raise insufficient_privileges()
    return _user_resource(request, user, query)


def _user(request, claims: dict, ref: str, query) -> dict:
    """A user of the token's tenant, by object ID or UPN. The emulator serves this to app-only
    tokens with User.Read.All; soft-deleted users are not found, as at Graph."""
    if claims.get("idtyp") != "app" or not set(READ_USERS_ROLES) & set(claims.get("roles", [])):
        raise insufficient_privileges()
    user = emulator_of(request).directory.find_user(claims.get("tid", ""), ref)
    if user is None:
        message = f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present."
        raise GraphError(404, "Request_ResourceNotFound", message)
    return _user_resource(request, user, query)


def _read(request, claims: dict, segments: list[str], query) -> dict:
    """A GET of a resource path below /v1.0, sent on its own or inside a $batch."""
    if [s.lower() for s in segments] == ["me"]:
        return _me(request, claims, query)
    if len(segments) == 2 and segments[0].lower() == "users":
        return _user(request, claims, segments[1], query)
    # Nothing else of Graph is emulated.
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[-1]}'.")


async def read(request):
    segments = request.scope["path"].removeprefix("/v1.0/").split("/")
    try:
        body = _read(request, _verified_claims(request), segments, request.query_params)
    except GraphError as error:
        return error_response(request, error)
    return JSONResponse(body, headers=ODATA_HEADERS)


# --- $batch ---


def _batch_requests(body: bytes) -> list[dict]:
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep to read
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        ) from None
    requests = payload.get("requests") if isinstance(payload, dict) else None
    fields_ok = isinstance(requests, list) and all(
        isinstance(r, dict) and all(isinstance(r.get(k), str) and r[k] for k in ("id", "method", "url"))
        for r in requests
    )
    if not fields_ok:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_BATCH_REQUESTS:
        message = f"Batch request contains {len(requests)} requests; the limit is {MAX_BATCH_REQUESTS}."
        raise GraphError(400, "BadRequest", message)
    if len({r["id"] for r in requests}) != len(requests):
        raise GraphError(400, "BadRequest", "Batch request contains duplicate request ids.")
    return requests


def _batch_item(request, claims: dict, item: dict) -> dict:
    fault = emulator_of(request).faults.take_batch_item_fault()
    try:
        if fault:
            raise unavailable(fault.status, fault.retry_after)
        try:
            url = urlsplit(item["url"])
        except ValueError:  # "http://[::1"
            raise GraphError(400, "BadRequest", "Invalid request URL.") from None
        if url.scheme or url.netloc:
            raise GraphError(400, "BadRequest", "Batch requests must use URLs relative to the version, e.g. /users.")
        if item["method"].upper() != "GET":
            raise GraphError(405, "BadRequest", "Specified HTTP method is not allowed for the request target.")
        segments = [unquote(s) for s in url.path.strip("/").split("/")]
        body = _read(request, claims, segments, dict(parse_qsl(url.query)))
    except GraphError as error:
        headers = {**JSON_HEADERS, "Cache-Control": "no-cache", **error.headers}
        return {"id": item["id"], "status": error.status, "headers": headers, "body": error_body(request, error)}
    return {"id": item["id"], "status": 200, "headers": ODATA_HEADERS, "body": body}


async def batch(request):
    """Up to 20 requests in one; each is answered on its own, with its own status (HTTP 200
    for the batch as a whole even when every item failed)."""
    try:
        claims = _verified_claims(request)
        items = _batch_requests(await request.body())
    except GraphError as error:
        return error_response(request, error)
    return JSONResponse({"responses": [_batch_item(request, claims, item) for item in items]})


# --- OIDC userinfo ---


async def userinfo(request):
    try:
        claims = _verified_claims(request)
        user = _signed_in_user(request, claims)
    except GraphError as error:
        return error_response(request, error)
    # Microsoft: the same pairwise subject as in the app's ID token.
    info = {
        "sub": pairwise_sub(claims.get("appid", ""), claims["tid"], user.oid),
        "name": user.display_name,
        "family_name": user.surname,
        "given_name": user.given_name,
        "picture": f"{emulator_of(request).public_url}/v1.0/me/photo/$value",
    }
    if user.mail and "email" in claims.get("scp", "").split():
        info["email"] = user.mail
    return JSONResponse(info)


routes = [
    Route("/v1.0/me", read),
    Route("/v1.0/users/{user}", read),
    Route("/v1.0/$batch", batch, methods=["POST"]),
    Route("/oidc/userinfo", userinfo, methods=["GET", "POST"]),
]
