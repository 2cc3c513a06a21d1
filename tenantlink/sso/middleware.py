from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from tenantlink.accounts.flows import SIGNIN_METHOD
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.sso import flows
from tenantlink.sso.views.connect import offer_due
from tenantlink.sso.views.signin import LAST_METHOD_COOKIE, PREFERRED_METHOD, remember_method

# Pages the offer never interrupts: Microsoft's own round trips, signing out, My Profile (a new
# password, new recovery codes shown once), static files and the operator admin.
NOT_INTERRUPTED = ("/sso/", "/signout/", "/profile/", "/static/", "/health/", "/staff/")


def microsoft_sessions(get_response):
    """A session opened with Microsoft lasts only while its connection, the integration and the
    licence do: checked at every request. After a password + second factor sign-in, the first
    page shown is the offer to connect a Microsoft account, when the user can."""

    def middleware(request):
        if request.user.is_authenticated:
            connection_id = request.session.get(flows.CONNECTION_KEY)
            if connection_id is not None and not flows.still_usable(connection_id, request.user):
                AuditEvent.objects.record(Action.SSO_SESSION_ENDED, request=request, target=request.user)
                logout(request)
                messages.info(
                    request,
                    _(
                        "Your Microsoft sign-in is no longer available for this portal account, so you have "
                        "been signed out. Sign in with your username, password and second factor."
                    ),
                )
            elif request.method == "GET" and not request.path.startswith(NOT_INTERRUPTED) and offer_due(request):
                return redirect(reverse("sso_offer") + "?" + urlencode({"next": request.get_full_path()}))
        response = get_response(request)
        if request.user.is_authenticated and request.session.get(SIGNIN_METHOD):
            # Microsoft once this session used or connected it; else the password.
            used = request.session.get(PREFERRED_METHOD) or (
                "microsoft" if request.session[SIGNIN_METHOD] == "microsoft" else "password"
            )
            if request.COOKIES.get(LAST_METHOD_COOKIE) != used:
                remember_method(request, response, used)
        return response

    return middleware
