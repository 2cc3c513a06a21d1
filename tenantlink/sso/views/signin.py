"""Flow 4, sign in with Microsoft, and the one callback where Microsoft sends every user back
(connecting an account, flow 3, signing in, or an administrator signing in at a new
integration's tenant, flow 2). The pending flow named by `state` says which."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.accounts.flows import SigninRefused, safe_next
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib.middleware import not_for_head
from tenantlink.sso import flows, microsoft
from tenantlink.sso.models import PendingAuthorization
from tenantlink.sso.reasons import FAILURE_REASONS, GRANT_ADMIN_CONSENT
from tenantlink.sso.views import integrations

LAST_METHOD_COOKIE = "tl_last_signin"  # "microsoft" or "password": which button to show first; no identity
PREFERRED_METHOD = "preferred_signin"  # in the session, once it connected or disconnected Microsoft
# In the session after Microsoft signed in an account that may not sign in here: the next "Sign in
# with Microsoft" asks Microsoft for its account picker, else it would sign the same one in again.
PICK_ACCOUNT = "microsoft_pick_account"
# In the session after signing out of the portal (or a refused Microsoft sign-in) in a browser that
# came back from Microsoft: Microsoft keeps its own sign-in there, so the sign-in page offers to end
# it too (on a shared computer, the next person's Sign in with Microsoft would go straight through).
STILL_AT_MICROSOFT = "microsoft_still_signed_in"
# A cookie while the person signs out at Microsoft (Microsoft then sends them back to the callback
# with no answer at all). Not the session: writing it could race a sign-in in another tab.
SIGNING_OUT_COOKIE = "tl_signing_out"
# This browser came back from Microsoft (signing in, connecting, approving), so Microsoft may
# still have someone signed in here; no identity. Gone once it signs out there through the portal.
AT_MICROSOFT_COOKIE = "tl_at_microsoft"
# Longest form_post answer sent on in a URL: gunicorn answers a request line over 4094 bytes with
# a bare error page of its own. Microsoft's codes and our states are far shorter.
MAX_ANSWER_QUERY = 3500

# What a person reads when Microsoft sign-in or connecting does not happen.
REFUSALS = {
    "state": _(
        "This answer from Microsoft does not belong to a sign-in started in this browser, or it came too late "
        "or a second time. Nothing was changed. Please start again."
    ),
    "cancelled": _("Signing in at Microsoft was cancelled. Nothing was changed."),
    # Microsoft's answer to leaving its "Need admin approval" page ("Return to the application
    # without granting consent") is a cancel without an AADSTS code, like any other cancelled sign-in.
    "cancelled_or_approval": _(
        "Signing in at Microsoft was cancelled. Nothing was changed. If Microsoft said that an administrator "
        "must approve this portal (“Need admin approval”), your organization's Microsoft administrator has to "
        "approve it first: ask your company's administrator."
    ),
    "approval_required": _(
        "Microsoft says your organization has not approved this portal yet. Your company's administrator "
        "must finish the single sign-on integration at Microsoft (“Grant admin consent”)."
    ),
    "wrong_tenant": _(
        "This Microsoft account does not belong to a Microsoft organization that your company has connected."
    ),
    "tenant_not_integrated": _(
        "This Microsoft account does not belong to a Microsoft organization that your company has connected."
    ),
    "not_assigned": _("Your organization's Microsoft administrator has not given your account access to this portal."),
    "conditional_access": _(
        "Your organization's sign-in rules at Microsoft (Conditional Access) did not let this sign-in through, "
        "for example because of the device or the network. Ask your organization's IT support."
    ),
    "refused": _("Microsoft did not sign you in. Nothing was changed."),
    "not_recent": _("For your security, connecting needs a recent sign-in. Sign in again and connect right after."),
    "personal_account": _("Personal Microsoft accounts cannot be used. Use the work account of your organization."),
    "taken": _(
        "This Microsoft account is already connected to another portal account. Nothing was changed. "
        "Use another Microsoft account, or ask your administrator."
    ),
    "already_connected": _("Your portal account is already connected to a Microsoft account. Nothing was changed."),
    "not_connected": _(
        "No portal account is connected to this Microsoft account. Sign in with your username and password "
        "first; then you can connect it."
    ),
    "unknown_tenant": _(
        "Your Microsoft organization is not connected to this portal. Sign in with your username and password."
    ),
    "deactivated": _("Your portal account is deactivated. Ask your company's administrator."),
    "staff": _("Operator staff sign in with username, password and second factor, not with Microsoft."),
    "licence": _(
        "Your company's single sign-on licence is not valid, so Microsoft sign-in is not available. "
        "Sign in with your username and password."
    ),
    "integration_disabled": _(
        "Microsoft sign-in is switched off for your organization. Sign in with your username and password."
    ),
    "not_configured": _(
        "Microsoft sign-in is not available on this installation. Sign in with your username and password."
    ),
    "unavailable": FAILURE_REASONS["unavailable"],
    "busy": FAILURE_REASONS["busy"],
    "paused": _(
        "Too many answers from Microsoft that did not work came from your network. Please wait a few "
        "minutes before you try again."
    ),
    "bad_answer": FAILURE_REASONS["bad_answer"],
    "bad_token": FAILURE_REASONS["bad_token"],
    "new_key": FAILURE_REASONS["new_key"],
    "code_expired": FAILURE_REASONS["code_expired"],
    "configuration": _(
        "Microsoft sign-in is not working on this installation right now. Sign in with your username and password."
    ),
}


# Refusals because Microsoft sign-in does not work for the user's company now: the sign-in page
# should not offer it first in this browser any more.
NOT_AVAILABLE = {"integration_disabled", "licence", "unknown_tenant", "tenant_not_integrated", "not_configured"}
# Refusals of the Microsoft account itself, where another account of the person's may do: the
# message names the account, and the next try shows Microsoft's account picker.
ANOTHER_ACCOUNT_MAY_DO = {"not_connected", "unknown_tenant", "tenant_not_integrated", "personal_account"}


def _message_key(refusal):
    """Which of REFUSALS a refusal reads as. A cancel without an AADSTS code (one with a code is
    the person declining the permissions) may be the "Need admin approval" page left unapproved."""
    if refusal.reason == "cancelled" and not refusal.code.startswith("AADSTS"):
        return "cancelled_or_approval"
    return refusal.reason


def refusal_message(refusal):
    key = _message_key(refusal)
    text = str(REFUSALS.get(key, REFUSALS["refused"]))
    if key != "cancelled" and refusal.code and refusal.code.startswith("AADSTS"):
        text += " " + str(_("(Error code: %(code)s)")) % {"code": refusal.code}
    return text


@require_POST
def start(request):
    """The "Sign in with Microsoft" button: a plain form, so it works without JavaScript."""
    if not microsoft.is_configured():
        messages.error(request, REFUSALS["not_configured"])
        return remember_method(request, redirect("signin"), "password")
    if request.user.is_authenticated:
        return redirect(safe_next(request))
    request.session.pop(STILL_AT_MICROSOFT, None)
    prompt = "select_account" if request.session.pop(PICK_ACCOUNT, False) else None
    return redirect(flows.start_signin(request, safe_next(request), prompt))


@require_POST
def sign_out_at_microsoft(request):
    """The sign-in page's "Sign out at Microsoft" after signing out of the portal: Microsoft's own
    sign-out, for every account signed in there in this browser, and back to the sign-in page.
    The session is left alone: another tab of the browser may be signing in meanwhile."""
    if not microsoft.is_configured():
        return redirect("signin")
    return _browser_cookie(redirect(microsoft.sign_out_url()), SIGNING_OUT_COOKIE, "1", 600)


def note_sign_out(sender, request, **kwargs):
    """Django's user_logged_out: whatever ended the session (signing out, its lifetime, a Microsoft
    session that may no longer go on), the middleware then looks at what Microsoft may keep."""
    if request is not None:
        request.signed_out_here = True


def signed_out_of_portal_only(request):
    """This browser's person signed out of the portal, and Microsoft may still have someone signed
    in here (the browser came back from Microsoft since it last signed out there through the
    portal): the sign-in page offers Microsoft's own sign-out. Sign in with Microsoft still goes
    straight through, as single sign-on does, until then."""
    if request.COOKIES.get(AT_MICROSOFT_COOKIE):
        request.session[STILL_AT_MICROSOFT] = True


def remember_at_microsoft(request, response):
    """Microsoft sent this browser back from a round trip the portal began (a callback whose
    `state` was one of this browser's): it may keep a sign-in there from now on."""
    if not request.COOKIES.get(AT_MICROSOFT_COOKIE):
        _browser_cookie(response, AT_MICROSOFT_COOKIE, "1", 30 * 24 * 3600)


@csrf_exempt  # Microsoft's answer carries `state`, the CSRF protection of this request
@require_http_methods(["GET", "POST"])
@not_for_head
def callback(request):
    if request.method == "POST":
        # A form_post answer is a cross-site POST, which brings no SameSite=Lax cookie and so no
        # session. Sent on as a top-level GET, it does; one too long for a URL is no real answer.
        query = request.POST.urlencode()
        if len(query) > MAX_ANSWER_QUERY:
            AuditEvent.objects.record(
                Action.SIGNIN_FAILED, request=request, outcome=Outcome.DENIED, method="microsoft", reason="bad_answer"
            )
            messages.error(request, REFUSALS["bad_answer"])
            return redirect("signin")
        response = redirect(request.path + "?" + query)
        response.status_code = 303  # See Other: the browser follows with a GET
        return response
    if not request.GET:  # back from signing out at Microsoft (sign_out_at_microsoft), or typed
        response = redirect("portal" if request.user.is_authenticated else "signin")
        if request.COOKIES.get(SIGNING_OUT_COOKIE):
            request.session.pop(STILL_AT_MICROSOFT, None)
            messages.success(request, _("You have signed out at Microsoft too."))
            response.delete_cookie(SIGNING_OUT_COOKIE, samesite="Lax")
            response.delete_cookie(AT_MICROSOFT_COOKIE, samesite="Lax")
        return response
    pending = PendingAuthorization.take(
        request,
        request.GET.get("state"),
        PendingAuthorization.Purpose.CONNECT,
        PendingAuthorization.Purpose.SIGNIN,
        PendingAuthorization.Purpose.TENANT_SIGNIN,
    )
    if pending is None:
        if request.user.is_authenticated and (again := flows.answered_before(request, request.GET.get("state", ""))):
            return redirect(again)  # the same answer again (Back, to Microsoft): nothing to do, nothing wrong
        AuditEvent.objects.record(
            Action.SIGNIN_FAILED, request=request, outcome=Outcome.DENIED, method="microsoft", reason="state"
        )
        messages.error(request, REFUSALS["state"])
        return redirect("profile_settings" if request.user.is_authenticated else "signin")
    request.came_back_from_microsoft = True
    if pending.purpose == PendingAuthorization.Purpose.CONNECT:
        return _connected(request, pending)
    if pending.purpose == PendingAuthorization.Purpose.TENANT_SIGNIN:
        return integrations.tenant_sign_in_callback(request, pending)
    return _signed_in(request, pending)


def _signed_in(request, pending):
    try:
        next_url = flows.finish_signin(request, pending, request.GET)
    except flows.Refusal as refusal:
        if request.user.is_authenticated:
            logout(request)
        text = refusal_message(refusal)
        if refusal.reason in ANOTHER_ACCOUNT_MAY_DO and (account := refusal.details.get("microsoft_username")):
            text += " " + str(
                _(
                    "Microsoft signed you in as %(account)s; the next Sign in with Microsoft lets you choose another account."
                )
            ) % {"account": account}
            request.session[PICK_ACCOUNT] = True
        messages.error(request, text)
        request.session[STILL_AT_MICROSOFT] = True  # Microsoft signed someone in, whom the portal refused
        if refusal.reason in NOT_AVAILABLE:  # the password form first again, in this browser
            return remember_method(request, redirect("signin"), "password")
        return redirect("signin")
    except SigninRefused as refused:  # a rule of another app (none refuses Microsoft sign-ins today)
        return redirect(refused.url)
    flows.remember_answered(request, request.GET["state"], next_url)
    return redirect(next_url)  # the middleware remembers that this browser used Microsoft


def _connected(request, pending):
    back = pending.next_url or reverse("profile_settings")
    if not request.user.is_authenticated or request.user.pk != pending.user_id:
        messages.error(request, REFUSALS["state"])
        return redirect("profile_settings" if request.user.is_authenticated else "signin")
    try:
        connection = flows.finish_connect(request, pending, request.GET)
    except flows.Refusal as refusal:
        text = refusal_message(refusal)
        if _message_key(refusal) in ("approval_required", "cancelled_or_approval") and request.user.is_company_admin:
            text += " " + str(GRANT_ADMIN_CONSENT) % {"app": settings.SITE_NAME}
        messages.error(request, text)
        return redirect(back)
    request.session[PREFERRED_METHOD] = "microsoft"  # the sign-in page shows Microsoft first from now on
    flows.remember_answered(request, request.GET["state"], back)
    messages.success(
        request,
        _("Microsoft sign-in is on. Your portal account is now connected to %(account)s.")
        % {"account": connection.account},
    )
    return redirect(back)


def remember_method(request, response, method):
    """Which sign-in this browser used last, so the sign-in page shows that button first."""
    return _browser_cookie(response, LAST_METHOD_COOKIE, method, 365 * 24 * 3600)


def _browser_cookie(response, name, value, max_age):
    """One of the cookies that say something of the browser, never of a person (README)."""
    response.set_cookie(
        name, value, max_age=max_age, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax"
    )
    return response
