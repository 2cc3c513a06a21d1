"""The only code that speaks HTTP to Microsoft's identity platform — in development and tests, to
the Entra emulator at the same address, ENTRA_AUTHORITY.

Every call has a timeout (ENTRA_HTTP_TIMEOUT, for the whole answer, not just for each read) and a
bounded answer size, and every failure becomes one MicrosoftError: its `message` is for the page,
its `code` (an AADSTS code, "timeout", "HTTP 503", …) for the audit log. The client secret is sent
in the body of token requests and appears nowhere else: not in errors, logs or the audit log.

Discovery documents and signing keys are cached in the database, so every portal process shares
them, and each process remembers what it read for a minute; keys named by an unknown `kid` are
fetched again at once, but at most every few minutes, as Microsoft advises for key rollover.

The leaver check's app-only Graph calls live in tenantlink.sso.graph, and send every request
through `exchange` and `token_answer` here.
"""

import base64
import datetime
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from urllib.parse import quote, urlencode

import httpx
from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tenantlink.lib import metrics, net, outbound
from tenantlink.sso.models import CachedDocument
from tenantlink.sso.reasons import FAILURE_REASONS

log = logging.getLogger(__name__)

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# Personal Microsoft accounts (Outlook.com, Xbox) all live in this one tenant.
PERSONAL_ACCOUNTS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
# Exactly what the sign-in flows ask for, and so exactly what an administrator approves for the
# whole organization: sign-in must never ask for more than was approved, or the users of a tenant
# that does not let users consent themselves meet "Need admin approval". The portal keeps no
# Microsoft tokens: no offline_access, no Graph.
SIGNIN_SCOPES = "openid profile email"
APP_ONLY_SCOPE = "https://graph.microsoft.com/.default"
MAX_ANSWER_BYTES = 256 * 1024
KEY_REFETCH_INTERVAL = datetime.timedelta(minutes=5)


class MicrosoftError(Exception):
    """Microsoft did not give a usable answer. `reason` is a key of FAILURE_REASONS."""

    def __init__(self, reason, code=""):
        self.reason, self.code = reason, net.printable(code, 40)
        super().__init__(f"{reason}: {self.code}" if self.code else reason)

    @property
    def message(self):
        return FAILURE_REASONS[self.reason]


def is_configured():
    return not settings.ENTRA_CONFIGURATION_PROBLEM and not ENVIRONMENT_PROBLEM


def consent_redirect_uri():
    return settings.SITE_URL + reverse("sso_consent_callback")


def admin_consent_url(tenant_id, state, scope=SIGNIN_SCOPES):
    """Where a Microsoft administrator of `tenant_id` approves the app for the organization: for
    sign-in, or with APP_ONLY_SCOPE for the application permissions of the registration too (the
    leaver check's User.Read.All: Microsoft grants application permissions only through /.default)."""
    query = urlencode(
        {
            "client_id": settings.ENTRA_CLIENT_ID,
            "scope": scope,
            "redirect_uri": consent_redirect_uri(),
            "state": state,
        },
        quote_via=quote,
    )
    return f"{settings.ENTRA_AUTHORITY}/{tenant_id}/v2.0/adminconsent?{query}"


def reported_tenant(answer):
    """The tenant ID an answer of admin consent names (`tenant`), for the audit log only: a GUID or
    nothing. Anyone can write such an answer and lure an administrator to it; its own words must
    not land in the company's log."""
    tenant = answer.get("tenant", "").strip().lower()
    return tenant if GUID.match(tenant) else ""


_client = None
_client_lock = threading.Lock()


def _build_client():
    # Answers uncompressed: a compressed one is read whole into memory at each chunk before its
    # size can be seen (a few KB of gzip can be gigabytes).
    return outbound.client(
        timeout=settings.ENTRA_HTTP_TIMEOUT,
        follow_redirects=False,
        headers={"Accept": "application/json", "Accept-Encoding": "identity"},
    )


# What httpx raises for proxy and certificate settings that cannot be used: ALL_PROXY=ftp://…,
# SSL_CERT_FILE naming no file, a SOCKS proxy (ImportError: socksio is not installed).
_ENVIRONMENT_ERRORS = (ValueError, OSError, ImportError)
_ENVIRONMENT = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")


def environment_problem():
    """Why the environment's proxy and certificate settings cannot reach Microsoft, or "". Asked
    at start (tenantlink.sso.apps): single sign-on is then off, as with a configuration problem.
    The variables are named, never their values, nor httpx's words (a proxy's address may hold a
    password)."""
    try:
        _build_client().close()
    except ImportError:
        what = "a SOCKS proxy, which this installation cannot use"
    except ValueError:
        what = "a proxy address that cannot be used (http:// or https:// only)"
    except OSError as error:
        what = f"certificates that cannot be read ({error.strerror or error.__class__.__name__})"
    else:
        return ""
    named = [name for name in _ENVIRONMENT if os.environ.get(name) or os.environ.get(name.lower())]
    return f"the environment's proxy and certificate settings name {what}; set here: {', '.join(named)}."


ENVIRONMENT_PROBLEM = ""  # environment_problem() of this process, once its apps are ready


def _http():
    global _client
    with _client_lock:
        if _client is None:
            try:
                _client = _build_client()
            except _ENVIRONMENT_ERRORS:  # said at start, and single sign-on is off: not reached
                raise MicrosoftError("unavailable", "environment") from None
        return _client


def _endpoint(url):
    """The kind of endpoint for metrics: the URL itself names tenants."""
    path = url.split("?")[0]
    if path.endswith("/.well-known/openid-configuration"):
        return "discovery"
    if path.endswith("/keys"):
        return "keys"
    if path.endswith("/token"):
        return "token"
    if "/v1.0/" in path:
        return "graph"
    return "other"


def _call(method, url, data=None):
    """(HTTP status, JSON object) of one request to Microsoft, or MicrosoftError."""
    return exchange(method, url, data=data)[:2]


# Waiting on Microsoft at the same moment: at most MICROSOFT_CALLS_AT_ONCE threads of a process
# (all its threads but one). One more waits up to CALL_SLOT_WAIT seconds for its turn while the
# calls under way look like Microsoft answering as usual; once one of them has waited SLOW_CALL
# seconds, Microsoft is slow, and it is told at once that Microsoft is not answering. Else the
# callers waiting for a turn would hold the one thread left for everything else, one after another.
CALL_SLOT_WAIT = 2
SLOW_CALL = 1
_slots = None
_under_way = {}  # one entry per call being made: when it began (time.monotonic())


def _call_slots():
    global _slots
    with _client_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.MICROSOFT_CALLS_AT_ONCE)
        return _slots


def _microsoft_slow():
    """Whether a call of this process under way has waited on Microsoft for SLOW_CALL seconds."""
    now = time.monotonic()
    return any(now - began >= SLOW_CALL for began in list(_under_way.values()))


def _take_slot(slots):
    """Whether this thread may call Microsoft now (then it holds a slot)."""
    if slots.acquire(blocking=False):
        return True
    give_up = time.monotonic() + CALL_SLOT_WAIT
    while not _microsoft_slow():
        if slots.acquire(timeout=min(0.1, max(0, give_up - time.monotonic()))):
            return True
        if time.monotonic() >= give_up:
            break
    return False


def exchange(method, url, **request):
    """(HTTP status, JSON object, headers) of one request to Microsoft, or MicrosoftError."""
    address = url.split("?")[0]  # for the log: the query may name users
    endpoint = _endpoint(url)
    slots = _call_slots()
    if not _take_slot(slots):
        metrics.MICROSOFT_ERRORS.labels(endpoint, "busy").inc()
        log.warning("Microsoft %s %s not asked: every call slot of this process waits on Microsoft", method, address)
        raise MicrosoftError("busy")
    call = object()
    _under_way[call] = time.monotonic()
    try:
        return _exchange(method, url, address, endpoint, **request)
    finally:
        del _under_way[call]
        slots.release()


def _exchange(method, url, address, endpoint, **request):
    started = time.monotonic()
    try:
        # The whole exchange within ENTRA_HTTP_TIMEOUT: also an answer whose headers or body
        # trickle in, which each read's own timeout never stops.
        with outbound.deadline(settings.ENTRA_HTTP_TIMEOUT), _http().stream(method, url, **request) as response:
            if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
                raise MicrosoftError("bad_answer", "encoded answer")
            body = bytearray()
            for chunk in response.iter_bytes():  # not decoded: identity, as checked
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise MicrosoftError("bad_answer", "answer too large")
    except MicrosoftError as error:
        kind = {"environment": "unreachable", "timeout": "timeout"}.get(error.code, "bad_answer")
        metrics.MICROSOFT_ERRORS.labels(endpoint, kind).inc()
        log.warning("Microsoft %s %s failed: %s", method, address, error)
        raise
    except httpx.TimeoutException:
        metrics.MICROSOFT_ERRORS.labels(endpoint, "timeout").inc()
        log.warning("Microsoft %s %s failed: no answer in time", method, address)
        raise MicrosoftError("unavailable", "timeout") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL: an address Microsoft gave
        metrics.MICROSOFT_ERRORS.labels(endpoint, "unreachable").inc()
        log.warning("Microsoft %s %s failed: %s", method, address, error.__class__.__name__)
        raise MicrosoftError("unavailable", error.__class__.__name__) from None
    finally:
        elapsed = time.monotonic() - started
        metrics.MICROSOFT_SECONDS.labels(endpoint).observe(elapsed)
        log.info("Microsoft %s %s took %d ms", method, address, elapsed * 1000)
    status = response.status_code
    if status >= 400:
        metrics.MICROSOFT_ERRORS.labels(endpoint, f"http_{status // 100}xx").inc()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        payload = None
    if not isinstance(payload, dict) and status == 429:
        payload = {}  # too many requests, said in text: the status and Retry-After are the answer
    if not isinstance(payload, dict):
        if status < 400:
            metrics.MICROSOFT_ERRORS.labels(endpoint, "bad_answer").inc()
        log.warning("Microsoft %s %s answered HTTP %d without a JSON object", method, address, status)
        raise MicrosoftError("unavailable" if status >= 500 or status == 429 else "bad_answer", f"HTTP {status}")
    if status >= 400:
        # A refused client secret (401) or Microsoft failing (5xx) is the operator's to see; a
        # mistyped tenant or an expired code is the person's, and an everyday answer.
        log.log(
            logging.WARNING if status >= 500 or status in (401, 403, 429) else logging.INFO,
            "Microsoft %s %s answered HTTP %d %s",
            method,
            address,
            status,
            error_code(payload),
        )
    return status, payload, response.headers


def error_code(payload):
    """The AADSTS code of a Microsoft error (JSON body or callback parameters), else its `error`
    (Graph's: `error.code`)."""
    if isinstance(payload.get("error"), dict):
        return net.printable(payload["error"].get("code", ""), 40)
    codes = payload.get("error_codes")
    if isinstance(codes, list) and codes and type(codes[0]) is int and codes[0] >= 0:  # not True, not -5
        return f"AADSTS{codes[0]}"
    match = re.match(r"AADSTS([0-9]+)", str(payload.get("error_description", "")))  # not other scripts' digits
    return f"AADSTS{match[1]}" if match else net.printable(payload.get("error", ""), 40)


# Microsoft's codes for "an administrator must approve the app for the organization": not yet
# consented (65001), admin consent or the admin approval workflow required (90094, 90095), an
# administrator's policy forbids granting (900941).
APPROVAL_REQUIRED_CODES = frozenset({"AADSTS65001", "AADSTS90094", "AADSTS90095", "AADSTS900941"})


def _failure(status, payload):
    code = error_code(payload) or f"HTTP {status}"
    if status >= 500 or status == 429 or payload.get("error") in ("temporarily_unavailable", "server_error"):
        return MicrosoftError("unavailable", code)  # 429: too many requests for now
    if code == "AADSTS90002" or payload.get("error") == "invalid_tenant":
        return MicrosoftError("unknown_tenant", code)
    if code == "AADSTS700016":
        return MicrosoftError("app_not_found", code)
    if code in APPROVAL_REQUIRED_CODES:
        return MicrosoftError("approval_required", code)
    if code in ("AADSTS54005", "AADSTS70008", "AADSTS70000"):  # a code used already, expired or revoked
        return MicrosoftError("code_expired", code)
    # invalid_client: AADSTS7000215 (wrong secret), 7000218 (none), 7000222 (expired) and the
    # like; not AADSTS70000 or 70008, an expired or used code (invalid_grant).
    # AADSTS50011 and 500112: a redirect URI the registration does not have. The operator's to see.
    if payload.get("error") == "invalid_client" or re.fullmatch(r"AADSTS(7000[0-9]{3}|50011|500112)", code):
        log.warning("Microsoft refused the portal's app registration: %s", code)
        return MicrosoftError("configuration", code)
    return MicrosoftError("refused", code)


def issuer(tid):
    """Who signs a tenant's tokens, and names itself so in its discovery document."""
    return f"{settings.ENTRA_AUTHORITY}/{tid}/v2.0"


def _issuer_tenant(document):
    """The tenant GUID in a tenant's discovery document: its issuer is {authority}/{tid}/v2.0."""
    issuer = document.get("issuer")
    match = re.fullmatch(re.escape(settings.ENTRA_AUTHORITY) + r"/([^/]+)/v2\.0", issuer or "")
    if not match or not GUID.match(match[1]):
        raise MicrosoftError("bad_answer", "issuer")
    return match[1]


def resolve_tenant(value):
    """The GUID of the tenant an administrator typed (its ID or a domain such as
    contoso.onmicrosoft.com), confirmed by that tenant's discovery document."""
    status, document = _call("GET", f"{settings.ENTRA_AUTHORITY}/{quote(value)}/v2.0/.well-known/openid-configuration")
    if status != 200:
        raise _failure(status, document)
    tenant_id = _issuer_tenant(document)
    if GUID.match(value) and tenant_id != value:
        raise MicrosoftError("bad_answer", "issuer")
    return tenant_id


def _token(tenant, wanted, **fields):
    """The string `wanted` of the token endpoint's answer for `tenant`."""
    return token_answer(tenant, wanted, **fields)[wanted]


def token_answer(tenant, wanted, **fields):
    """The token endpoint's answer for `tenant`, which must hold a string `wanted`. The client
    secret goes in the body, as client_secret_post."""
    status, answer = _call(
        "POST",
        f"{settings.ENTRA_AUTHORITY}/{tenant}/oauth2/v2.0/token",
        data={"client_id": settings.ENTRA_CLIENT_ID, "client_secret": settings.ENTRA_CLIENT_SECRET, **fields},
    )
    if status != 200:
        raise _failure(status, answer)
    if not isinstance(answer.get(wanted), str) or not answer[wanted]:
        log.warning("Microsoft's token endpoint of %s answered without %s", tenant, wanted)
        raise MicrosoftError("bad_answer", f"no {wanted}")
    return answer


# Right after an administrator approves the app, Microsoft may go on answering that it does not
# know the app in the tenant (AADSTS700016) for a while, until the approval has reached all its
# servers: seconds, sometimes minutes. Asked again after each of these waits (seconds), while no
# more than APPROVAL_PATIENCE seconds have passed since the first answer: the request holds a
# worker thread meanwhile, and gunicorn.conf.py's timeout allows for it.
APPROVAL_WAITS = (1, 2, 3)
APPROVAL_PATIENCE = 10
_sleep = time.sleep  # tests replace it


def confirm_app_in_tenant(tenant_id, just_approved=False):
    """Raise MicrosoftError unless Microsoft issues the app a token for `tenant_id`. It does so
    only once the app exists in that tenant (an administrator approved it), so this — not the
    `tenant` in a callback, which anyone can write — is what proves an integration. The token
    itself is thrown away. `just_approved`: Microsoft has just sent the administrator back from
    approving it, so "not found" is asked again a few times, and if it stays, the approval has not
    reached Microsoft's servers yet ("approval_propagating"), not that there is none."""
    waits = list(APPROVAL_WAITS) if just_approved else []
    started = time.monotonic()
    while True:
        try:
            _token(tenant_id, "access_token", grant_type="client_credentials", scope=APP_ONLY_SCOPE)
            return
        except MicrosoftError as error:
            if error.reason != "app_not_found" or not just_approved:
                raise
            if not waits or time.monotonic() - started + waits[0] > APPROVAL_PATIENCE:
                raise MicrosoftError("approval_propagating", error.code) from None
        _sleep(waits.pop(0))


# URL → (document, fetched_at, until on time.monotonic()): what this process last read of the
# shared cache, used again for DOCUMENT_MEMO_SECONDS without asking the database. Every sign-in
# with Microsoft needs the discovery document and the keys; they change a few times a year.
DOCUMENT_MEMO_SECONDS = 60
# Each tenant signing in has its own discovery document and keys: the memo keeps at most this many
# documents (those past their minute go first, then the oldest), so a process that has seen many
# tenants does not keep them all.
DOCUMENT_MEMO_SIZE = 500
DOCUMENT_MEMO_BYTES = 4 * 1024 * 1024  # of their JSON: Microsoft's are a few KB each
_documents = {}
_failed = {}  # URL → when (time.monotonic) asking for it last failed, while a cached copy served
_memo_lock = threading.Lock()
_clock = time.monotonic  # tests replace it


def _cached(url, check, max_age, memo=True):
    """The JSON document at `url`, from the shared cache while it is younger than `max_age`
    (from this process's memo of it, unless not `memo`). When Microsoft cannot be asked, an older
    copy is better than none."""
    now = timezone.now()
    remembered = _documents.get(url) if memo else None
    # Checked again for this use: the cache is by address, and a hostile answer for one kind of
    # document may name the address of another (keys stored where a discovery document is read).
    if remembered and remembered[2] > _clock() and now - remembered[1] < max_age and _passes(check, remembered[0]):
        return remembered[:2]
    cached = CachedDocument.objects.filter(url=url).first()
    if cached and not _passes(check, cached.body):
        cached = None  # asked for afresh, and overwritten
    if cached and now - cached.fetched_at < max_age:
        _remember(url, cached.body, cached.fetched_at)
        return cached.body, cached.fetched_at
    if cached and _clock() - _failed.get(url, -math.inf) < DOCUMENT_MEMO_SECONDS:
        return cached.body, cached.fetched_at  # Microsoft failed a moment ago: not asked at every sign-in
    try:
        status, document = _call("GET", url)
        if status != 200:
            raise _failure(status, document)
        check(document)
    except MicrosoftError as error:
        if error.reason == "bad_answer":  # fetched, but not what it must be
            log.warning("Microsoft's %s is not usable: %s", url, error)
        if cached is None:
            raise
        log.warning("Using a cached copy of %s: %s", url, error)
        with _memo_lock:
            if len(_failed) >= DOCUMENT_MEMO_SIZE:
                _failed.clear()
            _failed[url] = _clock()
        return cached.body, cached.fetched_at
    try:
        with transaction.atomic():
            CachedDocument.objects.update_or_create(url=url, defaults={"body": document, "fetched_at": now})
    except IntegrityError:
        pass  # another process stored it at the same moment
    except DataError:  # a NUL character, say, which PostgreSQL cannot store: used, not shared
        log.warning("Microsoft's %s could not be stored in the shared cache", url)
    _remember(url, document, now)
    return document, now


def _passes(check, document):
    try:
        check(document)
    except MicrosoftError:
        return False
    return True


def _remember(url, document, fetched_at):
    size = len(json.dumps(document))  # once a minute per document at most: the memo's measure
    with _memo_lock:  # the threads of a worker share the memo
        _documents.pop(url, None)  # to the end: the oldest are first
        if (
            len(_documents) >= DOCUMENT_MEMO_SIZE
            or sum(entry[3] for entry in _documents.values()) + size > DOCUMENT_MEMO_BYTES
        ):
            now = _clock()
            for stale in [key for key, entry in _documents.items() if entry[2] <= now]:
                del _documents[stale]
            while _documents and (
                len(_documents) >= DOCUMENT_MEMO_SIZE
                or sum(entry[3] for entry in _documents.values()) + size > DOCUMENT_MEMO_BYTES
            ):
                del _documents[next(iter(_documents))]
        _documents[url] = (document, fetched_at, _clock() + DOCUMENT_MEMO_SECONDS, size)


def _check_discovery(document):
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str):
            raise MicrosoftError("bad_answer", f"discovery without {key}")
    # Keys and endpoints are only ever taken from Microsoft's own address, as plain addresses
    # the shared cache can hold.
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not document[key].startswith(settings.ENTRA_AUTHORITY + "/"):
            raise MicrosoftError("bad_answer", f"{key} elsewhere")
        if len(document[key]) > CachedDocument.URL_LENGTH or not re.fullmatch(r"[!-~]+", document[key]):
            raise MicrosoftError("bad_answer", f"{key} unreadable")


def _check_keys(document):
    if not isinstance(document.get("keys"), list):
        raise MicrosoftError("bad_answer", "keys")


def discovery(tenant="organizations"):
    """The discovery document of `tenant` (a GUID or organizations), shared and cached. A tenant's
    must name the tenant as its issuer (OpenID Discovery 4.3): checked before it is cached, so a
    wrong one is not kept for a day, and an older good copy still serves while Microsoft errs."""

    def check(document):
        _check_discovery(document)
        if tenant != "organizations" and document["issuer"] != issuer(tenant):
            raise MicrosoftError("bad_answer", "issuer")

    lifetime = datetime.timedelta(seconds=settings.ENTRA_METADATA_LIFETIME)
    url = f"{settings.ENTRA_AUTHORITY}/{tenant}/v2.0/.well-known/openid-configuration"
    return _cached(url, check, lifetime)[0]


def signing_key(kid, tenant_id):
    """The key (a JWK dict) named `kid` that Microsoft publishes for the tenant `tenant_id` (a
    GUID), from the jwks_uri of the tenant's discovery document. An unknown `kid` is looked for in
    the shared cache (another process may have fetched new keys), which is fetched again at once
    when older than KEY_REFETCH_INTERVAL — Microsoft rolls keys without notice — but not more
    often, as Microsoft advises: a Microsoft that names a key it does not publish is not asked
    again at every sign-in. (Microsoft publishes a new key well before it signs with it.)"""
    url = discovery(tenant_id)["jwks_uri"]
    lifetime = datetime.timedelta(seconds=settings.ENTRA_METADATA_LIFETIME)
    for max_age, memo in ((lifetime, True), (KEY_REFETCH_INTERVAL, False)):
        document, _fetched_at = _cached(url, _check_keys, max_age, memo=memo)
        for key in document["keys"]:
            if isinstance(key, dict) and key.get("kid") == kid:
                return key
    # A real key rolled in at Microsoft moments after the last fetch is refused too, until the next
    # fetch: say so ("new_key"), so that the person tries again in a few minutes.
    raise MicrosoftError("new_key", "unknown kid")


def signin_redirect_uri():
    return settings.SITE_URL + reverse("sso_callback")


def pkce_challenge(verifier):
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(tenant, *, state, nonce, code_verifier, prompt=None):
    """Where the browser signs in at Microsoft: the authorization-code flow with PKCE (S256),
    asking for exactly the permissions an administrator approved. The answer comes back in the
    query (a top-level GET, which carries the SameSite=Lax session cookie; a cross-site form POST
    would not)."""
    params = {
        "client_id": settings.ENTRA_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": signin_redirect_uri(),
        "response_mode": "query",
        "scope": SIGNIN_SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    return f"{settings.ENTRA_AUTHORITY}/{tenant}/oauth2/v2.0/authorize?{urlencode(params, quote_via=quote)}"


def sign_out_url():
    """Microsoft's sign-out (the end_session_endpoint of its discovery documents): it ends the
    browser's Microsoft sign-in and sends it back to the callback, a registered redirect URI (which
    Microsoft requires of post_logout_redirect_uri), with no answer."""
    query = urlencode({"post_logout_redirect_uri": signin_redirect_uri()}, quote_via=quote)
    return f"{settings.ENTRA_AUTHORITY}/organizations/oauth2/v2.0/logout?{query}"


def redeem_code(tenant, code, code_verifier):
    """The ID token for an authorization code (which works once). Other tokens are not kept."""
    return _token(
        tenant,
        "id_token",
        grant_type="authorization_code",
        code=code,
        redirect_uri=signin_redirect_uri(),
        code_verifier=code_verifier,
        scope=SIGNIN_SCOPES,
    )
