import logging
import time
import zoneinfo
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import resolve_url
from django.urls import Resolver404, resolve
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tenantlink.lib import crypto, errors
from tenantlink.lib.logs import escaped, first_line

log = logging.getLogger(__name__)


def _content_security_policy():
    # Forms that start a Microsoft flow post to us and are redirected to the authority; Chrome
    # applies form-action to that redirect, so the authority's origin must be allowed.
    form_targets = "'self'"
    if not settings.ENTRA_CONFIGURATION_PROBLEM:
        authority = urlsplit(settings.ENTRA_AUTHORITY)
        form_targets += f" {authority.scheme}://{authority.netloc}"
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"form-action {form_targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def security_headers(get_response):
    policy = _content_security_policy()

    def middleware(request):
        response = get_response(request)
        response.setdefault("Content-Security-Policy", policy)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        # Pages show seeds, recovery codes and personal data: keep them out of shared caches and
        # the back button. Static files keep the long cache headers WhiteNoise gives them.
        response.setdefault("Cache-Control", "no-store")
        return response

    return middleware


def not_for_head(view):
    """A view whose GET uses something up (recovery codes shown once, an answer from Microsoft
    redeemed once): a HEAD (a link checker, a prefetch) gets 405, not that GET without its body."""
    view.not_for_head = True
    return view


def head_as_get(get_response):
    """A HEAD request is answered as its GET would be, without the body (RFC 9110 §9.3.2): uptime
    monitors and mail servers' link checkers send HEAD, and the views accept GET (Django's
    require_http_methods does not count HEAD as one), but for those marked not_for_head. The
    body goes here, as no WSGI server is bound to drop it quietly (gunicorn logs a warning for
    every one). After WhiteNoise, which answers HEAD for static files itself; before the metrics,
    which label it HEAD. Every other request passes through with one comparison."""

    def middleware(request):
        if request.method != "HEAD":
            return get_response(request)
        try:
            view = resolve(request.path_info).func
        except Resolver404:
            view = None
        if not getattr(view, "not_for_head", False):
            request.method = "GET"  # for every middleware after this one, and the view
        try:
            response = get_response(request)
        finally:
            request.method = "HEAD"
        if response.streaming:
            response.close()  # a file's handle, say
            response.streaming_content = []
        else:
            response.content = b""  # Content-Length stays the GET's, as HEAD's may
        return response

    return middleware


def refuse_nul_characters(get_response):
    """A NUL character has no place in an address or a form, and PostgreSQL cannot store one:
    a request that carries one gets a clear 400 page before any view reads it."""

    def middleware(request):
        query = request.META.get("QUERY_STRING", "")
        if (
            "\x00" in request.path_info
            or "%00" in query
            or "\x00" in query
            or request.method == "POST"
            and any("\x00" in name or any("\x00" in value for value in values) for name, values in request.POST.lists())
        ):
            return errors.nul_character(request)
        return get_response(request)

    return middleware


def friendly_405(get_response):
    """Django's require_POST and friends answer 405 with an empty page; show ours instead."""

    def middleware(request):
        response = get_response(request)
        if response.status_code == 405 and not response.content and "Allow" in response:
            return errors.method_not_allowed(request, response["Allow"])
        return response

    return middleware


def signed_out_form(get_response):
    """A form sent while not signed in (signed out in another tab, or a page kept open since) is
    turned into a trip to the sign-in page by login_required; without a word it looks as if what
    was sent got lost without reason. Not when the view itself signed the user out (connecting
    Microsoft after too long a while): that view says why."""

    def middleware(request):
        signed_in = request.user.is_authenticated
        response = get_response(request)
        if (
            request.method == "POST"
            and response.status_code == 302
            and not signed_in
            and response.get("Location", "").startswith(resolve_url(settings.LOGIN_URL) + "?next=")  # login_required
        ):
            messages.info(request, _("You are not signed in, so what you sent was not saved. Sign in and try again."))
        return response

    return middleware


def session_lifetime(get_response):
    """End a signed-in session after SESSION_IDLE_LIFETIME without requests, and in any case
    SESSION_COOKIE_AGE after the sign-in (a stolen cookie stops working by itself)."""

    def middleware(request):
        if request.user.is_authenticated:
            now = int(time.time())
            signed_in_at = request.session.get("signed_in_at", 0)
            last_seen = request.session.get("last_seen", 0)
            if now - signed_in_at > settings.SESSION_COOKIE_AGE or now - last_seen > settings.SESSION_IDLE_LIFETIME:
                logout(request)
                messages.info(request, _("Your session has ended. Please sign in again."))
            elif now - last_seen >= 60:
                # Written at most once a minute, so a busy page does not save the session on every request.
                request.session["last_seen"] = now
        return get_response(request)

    return middleware


def speak(request, language):
    """This request's pages in `language` (one of LANGUAGES), over LocaleMiddleware's choice."""
    translation.activate(language)
    request.LANGUAGE_CODE = language


def user_locale(get_response):
    """Dates and times in the user's time zone, pages in the user's language. The user row is
    loaded for the session check anyway, so this costs no query; without a choice (or signed
    out) LocaleMiddleware's language stays: the language cookie, else Accept-Language."""
    default = zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)

    def middleware(request):
        zone = default
        if request.user.is_authenticated:
            zone = request.user.local_zone()
            if request.user.language:
                speak(request, request.user.language)
        timezone.activate(zone)
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware


def unavailable(get_response):
    """An error in a view that is not a bug but the installation's state gets the 503 page and one
    line in the log, not the 500 page and a traceback: the database busy past its timeout or not
    answering, or a stored secret that this instance's FIELD_ENCRYPTION_KEYS cannot open."""

    def middleware(request):
        return get_response(request)

    def process_exception(request, exception):
        if isinstance(exception, errors.DATABASE_UNAVAILABLE):
            # The driver's message ("database is locked", "connection refused"), never the query.
            log.warning(
                "Database unavailable on %s %s: %s", request.method, escaped(request.path), first_line(exception)
            )
        elif isinstance(exception, crypto.Undecryptable):
            log.error(
                "A stored secret cannot be decrypted on %s %s: start every instance with FIELD_ENCRYPTION_KEYS "
                "holding the key that encrypted it (README: Rotating the seed encryption key)",
                request.method,
                escaped(request.path),
            )
        else:
            return None
        response = errors.service_unavailable(request)
        response._has_been_logged = True  # by the line above: not again as "Service Unavailable"
        return response

    middleware.process_exception = process_exception
    return middleware
