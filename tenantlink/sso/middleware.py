import functools

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import get_script_prefix, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from tenantlink.accounts.flows import SIGNIN_METHOD
from tenantlink.audit.models import Action, AuditEvent, signin_kind
from tenantlink.sso import flows, requirement
from tenantlink.sso.views.connect import offer_due
from tenantlink.sso.views.signin import (
    LAST_METHOD_COOKIE,
    PREFERRED_METHOD,
    remember_at_microsoft,
    remember_method,
    signed_out_of_portal_only,
)

# What a half-signed-in session that must connect may reach (see tenantlink.sso.requirement):
# the offer, connecting and Microsoft's way back, signing out, and recovery codes made by this
# sign-in (shown once).
WHILE_CONNECTING = ("sso_offer", "sso_connect", "sso_callback", "signout", "new_recovery_codes")


@functools.lru_cache(maxsize=8)
def _while_connecting(prefix):
    return frozenset(reverse(name) for name in WHILE_CONNECTING)


def microsoft_required(get_response):
    """Companies that require Microsoft sign-in (decided before a sign-in completes, in
    requirement.refusal_at_signin): a session that must connect first is sent back to the offer
    from any other address, whatever the method."""

    def may_pass(request):
        if request.path in _while_connecting(get_script_prefix()):
            return True
        if request.path_info.startswith(("/static/", "/health/")):  # below the script prefix, if any
            return True
        # A new initial password comes first (accounts' own rule): else each would send to the other.
        return request.user.must_change_password and request.path == reverse("change_password")

    def middleware(request):
        if request.user.is_authenticated and not may_pass(request) and requirement.must_connect(request):
            next_url = request.get_full_path() if request.method == "GET" else reverse("portal")
            return redirect(reverse("sso_offer") + "?" + urlencode({"next": next_url}))
        return get_response(request)

    return middleware


# Pages the offer never interrupts: Microsoft's own round trips, signing out, My Profile (a new
# password, new recovery codes shown once), static files and the operator admin.
NOT_INTERRUPTED = ("/sso/", "/signout/", "/profile/", "/static/", "/health/", "/staff/")


def microsoft_sessions(get_response):
    """A session opened with Microsoft lasts only while its connection, the integration and the
    licence do: checked at every request. After a password + second factor sign-in, the first
    page shown is the offer to connect a Microsoft account, when the user can."""

    def middleware(request):
        ended = False
        if request.user.is_authenticated:
            connection_id = request.session.get(flows.CONNECTION_KEY)
            signed_in_at = request.session.get("signed_in_at", 0)
            if connection_id is not None and not flows.still_usable(connection_id, request.user, signed_in_at):
                AuditEvent.objects.record(Action.SSO_SESSION_ENDED, request=request, target=request.user)
                logout(request)
                ended = True
                messages.info(
                    request,
                    _(
                        "Your Microsoft sign-in is no longer available for this portal account (its connection "
                        "was removed, or Microsoft sign-in was switched off for your company), so you have been "
                        "signed out. Sign in with your username, password and second factor."
                    ),
                )
            # The method as it came: a HEAD (a prefetch, a link checker with the cookie) is answered
            # as a GET, and must not use up the offer that the person's own GET would show.
            elif (
                request.META["REQUEST_METHOD"] == "GET"
                and not request.path_info.startswith(NOT_INTERRUPTED)
                and offer_due(request)
            ):
                return redirect(reverse("sso_offer") + "?" + urlencode({"next": request.get_full_path()}))
        response = get_response(request)
        if ended:  # the sign-in page shows the password form first again, in this browser
            remember_method(request, response, "password")
        elif request.user.is_authenticated and request.session.get(SIGNIN_METHOD):
            # Microsoft once this session used or connected it; else the password.
            used = request.session.get(PREFERRED_METHOD) or signin_kind(request.session[SIGNIN_METHOD])
            if request.COOKIES.get(LAST_METHOD_COOKIE) != used:
                remember_method(request, response, used)
        if getattr(request, "signed_out_here", False):  # by this request, or this middleware (above)
            signed_out_of_portal_only(request)
        if getattr(request, "came_back_from_microsoft", False):
            remember_at_microsoft(request, response)
        return response

    return middleware
