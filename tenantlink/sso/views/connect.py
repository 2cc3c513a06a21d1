"""Flows 3 and 5: a user connects a Microsoft account (offered right after a password + second
factor sign-in, or from My Profile → Settings) and removes it; administrators remove it too."""

import time

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.accounts.flows import SIGNIN_METHOD, is_recent_full_signin, safe_next
from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.scoping import company_admin_required, get_company_object
from tenantlink.sso import flows, microsoft, requirement
from tenantlink.sso.models import Connection, DeclinedOffer
from tenantlink.sso.views.signin import PREFERRED_METHOD, remember_method

OFFERED = "microsoft_offered"  # in the session: the offer after this sign-in has been made


@login_required
def offer(request):
    """After a password + second factor sign-in: would the user like to sign in with Microsoft?
    Where the company requires it, the same page without "Not now" (tenantlink.sso.requirement)."""
    next_url = safe_next(request)
    if not microsoft.is_configured() or not flows.may_connect(request.user):
        return redirect(next_url)
    return render(request, "sso/offer.html", {"next": next_url, "required": requirement.must_connect(request)})


@login_required
@require_POST
def connect(request):
    """Enable Microsoft sign-in: off to Microsoft to pick the work account."""
    next_url = safe_next(request, fallback="profile_settings")
    if not microsoft.is_configured() or not flows.may_connect(request.user):
        messages.error(request, _("Microsoft sign-in cannot be turned on for your account now."))
        return redirect(next_url)
    if not is_recent_full_signin(request):
        # Connecting changes how the account signs in: only right after a sign-in with password
        # and second factor (a password confirmation alone is not enough). Their username is filled in.
        username = request.user.username
        logout(request)
        messages.info(
            request,
            _("For your security, sign in again with your password and code; then choose “Enable” right away."),
        )
        query = urlencode({"next": reverse("profile_settings"), "username": username})
        return redirect(reverse("signin") + "?" + query)
    return redirect(flows.start_connect(request, next_url))


@login_required
@require_POST
def decline(request):
    """ "Don't ask again": no more offers after sign-in; My Profile still has the button."""
    DeclinedOffer.objects.get_or_create(user=request.user)
    AuditEvent.objects.record(Action.SSO_OFFER_DECLINED, request=request, target=request.user)
    messages.info(request, _("We won't ask again. You can turn on Microsoft sign-in in My Profile → Settings."))
    return redirect(safe_next(request))


@login_required
@require_http_methods(["GET", "POST"])
def disconnect_own(request):
    connection = Connection.objects.filter(user=request.user).first()
    if connection is not None and request.method == "GET":
        required = requirement.asked_of(request.user)
        ends_session = bool(request.session.get(flows.CONNECTION_KEY))  # opened with this account
        context = {"connection": connection, "tab": "settings", "required": required, "ends_session": ends_session}
        return render(request, "sso/disconnect.html", context)
    if connection is not None and not request.user.has_usable_password():
        messages.error(request, _("Set a password first: without it you could not sign in any more."))
        return redirect("profile_settings")
    # Gone already, or removed in a second tab a moment before.
    if connection is None or not flows.disconnect(request, connection):
        messages.info(request, _("Your account has no Microsoft connection."))
        return redirect("profile_settings")
    # Turned off by choice: not offered again after every sign-in (Settings can connect again).
    DeclinedOffer.objects.get_or_create(user=request.user)
    if request.session.get(flows.CONNECTION_KEY):
        # This session was opened with the Microsoft account just removed: it ends now.
        logout(request)
        messages.success(
            request,
            _("Microsoft sign-in is off. Sign in with your username, password and second factor."),
        )
        return remember_method(request, redirect("signin"), "password")  # the password form first
    request.session[PREFERRED_METHOD] = "password"
    if requirement.must_connect(request):
        messages.info(
            request,
            _("Microsoft sign-in is off. %(company)s requires it: connect a Microsoft account to go on.")
            % {"company": request.user.company.name},
        )
        return redirect("sso_offer")
    messages.success(request, _("Microsoft sign-in is off. You sign in with your password and second factor."))
    return redirect("profile_settings")


@company_admin_required
@require_http_methods(["GET", "POST"])
def disconnect_member(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    connection = Connection.objects.filter(user=member).first()
    if connection is not None and request.method == "GET":
        # It ends their Microsoft sessions at once: a page of its own says so first, and whether
        # the company's requirement will ask them to connect again (scoped: the same company).
        required = requirement.asked_of(member)
        context = {"member": member, "connection": connection, "required": required}
        return render(request, "accounts/company_user_disconnect.html", context)
    if connection is None or not flows.disconnect(request, connection):
        messages.info(request, _("%(name)s has no Microsoft connection.") % {"name": member.get_full_name()})
    elif not member.is_active:  # a leaver, say: no sign-in at all until reactivated
        messages.success(request, _("%(name)s's Microsoft connection is removed.") % {"name": member.get_full_name()})
    elif requirement.asked_of(member):
        messages.success(
            request,
            _(
                "%(name)s's Microsoft connection is removed; the company requires Microsoft sign-in, so they "
                "connect a Microsoft account again before they go on."
            )
            % {"name": member.get_full_name()},
        )
    else:
        messages.success(
            request,
            _("%(name)s's Microsoft connection is removed; they sign in with password and second factor.")
            % {"name": member.get_full_name()},
        )
    return redirect("company_user", user_id=member.pk)


def offer_due(request):
    """True once per password sign-in, on the first page after it, when the user can connect and
    has not said "Don't ask again"."""
    if request.session.get(OFFERED) or request.session.get(SIGNIN_METHOD) in (None, "microsoft"):
        return False
    request.session[OFFERED] = int(time.time())
    user = request.user
    return (
        microsoft.is_configured()
        and not user.must_change_password
        # Cheapest and most often false first: most users' companies have no licence.
        and flows.may_connect(user)
        and not DeclinedOffer.objects.filter(user=user).exists()
    )
