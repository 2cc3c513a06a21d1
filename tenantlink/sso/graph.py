"""The leaver check's calls to Microsoft Graph: app-only, in the name of the platform's app
registration, with the application permission User.Read.All that a Global Administrator (or
Privileged Role Administrator) of the tenant granted. Nothing here acts on anyone: it says who is
enabled, disabled or deleted at Microsoft, and tenantlink.sso.leavers decides.

Every request goes through tenantlink.sso.microsoft (its timeouts, size limit and MicrosoftError).
The app-only tokens stay in this process's memory only, a bounded number of them; Graph's host
comes from Microsoft's discovery document, remembered for a minute, and is only ever
graph.microsoft.com or the authority's own host. Anything but a clear "enabled", "disabled" or
"not found" is a MicrosoftError, so that nobody is treated as a leaver because Microsoft failed.
"""

import collections
import threading
import time
from urllib.parse import urlsplit

import jwt
from django.conf import settings

from tenantlink.sso import microsoft
from tenantlink.sso.microsoft import MicrosoftError

READ_USERS_ROLE = "User.Read.All"
BATCH_SIZE = 20  # Graph's limit for one $batch
THROTTLE_RETRIES = 4  # a throttled request is retried this often, each time after Retry-After
MAX_RETRY_AFTER = 120  # seconds; a longer Retry-After is waited for only this long
TOKEN_CACHE_SIZE = 1000  # tenants whose app-only token is kept; the oldest are forgotten first

# Tenant ID → (access token, granted application permissions, expiry on time.monotonic()). In
# this process's memory only, until a minute before the token expires: never in the database or
# a log. Bounded, so that the memory of a runner does not grow with the number of tenants.
_app_tokens = collections.OrderedDict()
_app_tokens_lock = threading.Lock()
_sleep = time.sleep  # tests replace it
_clock = time.monotonic  # tests replace it


def _granted_roles(access_token):
    """The application permissions (`roles`) in an app-only access token. Its signature is not
    checked: the token is our own, received a moment ago over TLS straight from Microsoft's token
    endpoint, and only tells us what to expect of Graph, which checks it itself."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise MicrosoftError("bad_answer", "access token") from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list):
        raise MicrosoftError("bad_answer", "roles")
    return {role for role in roles if isinstance(role, str)}


def app_only_token(tenant_id, fresh=False):
    """(access token, granted application permissions) for Graph in `tenant_id`, from the cache
    unless `fresh` (right after a consent, which changes the permissions)."""
    tenant_id = str(tenant_id)
    with _app_tokens_lock:
        cached = _app_tokens.get(tenant_id)
        if cached and not fresh and cached[2] > _clock():
            _app_tokens.move_to_end(tenant_id)
            return cached[:2]
        _app_tokens.pop(tenant_id, None)
    answer = microsoft.token_answer(
        tenant_id, "access_token", grant_type="client_credentials", scope=microsoft.APP_ONLY_SCOPE
    )
    token, roles = answer["access_token"], _granted_roles(answer["access_token"])
    lifetime = answer.get("expires_in") if isinstance(answer.get("expires_in"), int) else 0
    with _app_tokens_lock:
        _app_tokens[tenant_id] = (token, roles, _clock() + lifetime - 60)
        while len(_app_tokens) > TOKEN_CACHE_SIZE:
            _app_tokens.popitem(last=False)
    return token, roles


def forget_app_only_token(tenant_id):
    with _app_tokens_lock:
        _app_tokens.pop(str(tenant_id), None)


def _graph_url(path):
    """Graph's address, from Microsoft's discovery document (graph.microsoft.com in production).
    A pass asks Graph for every twenty users; the process remembers the document for a minute
    (microsoft.DOCUMENT_MEMO_SECONDS), so that it is not read from the database each time."""
    authority = settings.ENTRA_AUTHORITY
    host = microsoft.discovery().get("msgraph_host")
    # The app-only token may go only to Microsoft's Graph, or to the authority's own host (a
    # stand-in such as the emulator serves both): never wherever a stored document says. Checked
    # at every call, remembered host or not.
    allowed = ("graph.microsoft.com", urlsplit(authority).netloc)
    if not isinstance(host, str) or host not in allowed:
        raise MicrosoftError("bad_answer", "msgraph_host")
    return f"{authority.split('://')[0]}://{host}/v1.0{path}"


def _graph_error(status, payload):
    """MicrosoftError for a Graph error answer (whole request or one request of a batch)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    code = code or f"HTTP {status}"
    if status >= 500 or status == 429:
        return MicrosoftError("unavailable", code)
    if status == 403:
        return MicrosoftError("permission_missing", code)
    return MicrosoftError("refused", code)


def _retry_after(headers):
    """Seconds to wait before asking again, as Graph's Retry-After says (bounded)."""
    try:
        return min(max(int(headers.get("Retry-After", "")), 0), MAX_RETRY_AFTER)
    except (AttributeError, TypeError, ValueError):  # no headers object, or no number in it
        return 1


def accounts_enabled(access_token, oids):
    """Whether each Microsoft account is enabled: {oid: True, False (disabled) or None (deleted)}
    for up to BATCH_SIZE object IDs of the token's tenant, asked in one Graph $batch. Throttled
    requests are asked again after their Retry-After, at most THROTTLE_RETRIES times; any other
    answer than "enabled", "disabled" or "not found" is a MicrosoftError, so that nobody is ever
    treated as a leaver because Microsoft failed."""
    if len(oids) > BATCH_SIZE:
        raise ValueError("too many object IDs for one batch")
    results, waiting = {}, {str(index): str(oid) for index, oid in enumerate(oids)}
    headers = {"Authorization": f"Bearer {access_token}"}
    for _attempt in range(THROTTLE_RETRIES + 1):
        batch = [
            {"id": key, "method": "GET", "url": f"/users/{oid}?$select=id,accountEnabled"}
            for key, oid in waiting.items()
        ]
        status, answer, answer_headers = microsoft.exchange(
            "POST", _graph_url("/$batch"), json={"requests": batch}, headers=headers
        )
        throttled = status == 429
        wait = _retry_after(answer_headers) if throttled else 0
        if status not in (200, 429):
            raise _graph_error(status, answer)
        responses = answer.get("responses") if status == 200 else []
        if not isinstance(responses, list):
            raise MicrosoftError("bad_answer", "batch")
        for item in responses:
            if not isinstance(item, dict) or item.get("id") not in waiting:
                raise MicrosoftError("bad_answer", "batch item")
            oid, body, item_status = waiting[item["id"]], item.get("body"), item.get("status")
            if item_status == 429:
                throttled, wait = True, max(wait, _retry_after(item.get("headers") or {}))
                continue
            if item_status == 200 and isinstance(body, dict) and str(body.get("id")).lower() == oid.lower():
                enabled = body.get("accountEnabled")
                if not isinstance(enabled, bool):
                    raise MicrosoftError("bad_answer", "accountEnabled")
                results[oid] = enabled
            elif item_status == 404 and _graph_error(404, body).code == "Request_ResourceNotFound":
                results[oid] = None
            elif item_status == 200:  # not this user, or not a user at all
                raise MicrosoftError("bad_answer", "batch item")
            else:
                raise _graph_error(item_status if isinstance(item_status, int) else 0, body)
            del waiting[item["id"]]
        if not waiting:
            return results
        if not throttled:
            raise MicrosoftError("bad_answer", "batch incomplete")
        _sleep(wait)
    raise MicrosoftError("throttled", "TooManyRequests")
