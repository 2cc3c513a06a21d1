"""Flow 1: username + password → second factor (or enrolment) → portal."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.tokens import default_token_generator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode, urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.accounts import flows, throttle
from tenantlink.accounts.forms import ConfirmCodeForm, NewPasswordForm, SecondFactorForm, SignInForm
from tenantlink.accounts.models import RecoveryCode, User
from tenantlink.accounts.views.profile import language_cookie
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.lib.errors import too_many_requests
from tenantlink.lib.middleware import speak


def _not_pending(request, ran_out):
    """The second step without a password accepted in this session a few minutes ago. Signed in
    already (Back after signing in): on to the portal, without a word. Else the sign-in page, and
    why: the sign-in begun here `ran_out` of time, or there is none (Back to the sign-in page ends
    a half-finished one, and Forward comes here; or it was cancelled meanwhile)."""
    if request.user.is_authenticated:
        return redirect("portal")
    if ran_out:
        messages.info(request, _("Your sign-in took too long and was stopped. Please start again."))
    else:
        messages.info(request, _("Your sign-in was not finished. Please start again."))
    return redirect("signin")


@require_http_methods(["GET", "POST"])
def signin(request):
    if request.user.is_authenticated:
        return redirect(flows.safe_next(request))
    if request.method == "GET":
        # Back at the start ("Start again with a different account", or typed): a half-finished
        # sign-in ends here, so that nobody else at this browser can finish it, its code or its
        # authenticator set-up, in the minutes it would otherwise stay.
        flows.forget_pending(request)
    # A username in the address (after accepting an invitation) is only filled in, never trusted.
    initial = {"username": request.GET.get("username", "")[:150]}
    form = SignInForm(request, data=request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        flows.start_pending(request, form.user, flows.safe_next(request))
        return redirect("signin_verify" if form.user.has_second_factor else "signin_enrol")
    if form.is_bound and throttle.address_paused(request):
        return too_many_requests(request)
    return render(request, "accounts/signin.html", {"form": form, "next": request.GET.get("next", "")})


def _in_their_language(request, user):
    """The second step, once the password is known, speaks the language the person chose in
    Settings, as every page after it will: not the browser's and then theirs mid-way."""
    if user.language:
        speak(request, user.language)


@require_http_methods(["GET", "POST"])
def signin_verify(request):
    ran_out = flows.pending_ran_out(request)
    user = flows.pending_user(request)
    if user is None:
        return _not_pending(request, ran_out)
    _in_their_language(request, user)
    if not user.has_second_factor:
        return redirect("signin_enrol")
    form = SecondFactorForm(request, user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            next_url = flows.complete_signin(request, user, "recovery_code" if form.used_recovery_code else "totp")
        except flows.SigninRefused as refused:
            return redirect(refused.url)
        if form.used_recovery_code:
            remaining = RecoveryCode.remaining(user)
            messages.warning(
                request,
                ngettext(
                    "You signed in with a recovery code. %(count)d unused code remains; you can make new ones in My Profile → Settings.",
                    "You signed in with a recovery code. %(count)d unused codes remain; you can make new ones in My Profile → Settings.",
                    remaining,
                )
                % {"count": remaining},
            )
        return redirect(next_url)
    if form.is_bound and throttle.address_paused(request):
        return too_many_requests(request)
    return render(request, "accounts/signin_verify.html", {"form": form})


@require_http_methods(["GET", "POST"])
def signin_enrol(request):
    ran_out = flows.pending_ran_out(request)
    user = flows.pending_user(request)
    if user is None:
        return _not_pending(request, ran_out)
    _in_their_language(request, user)
    if user.has_second_factor:
        # A password alone must never replace an existing authenticator.
        return redirect("signin_verify")
    seed = flows.enrolment_seed(request, user)
    form = ConfirmCodeForm(seed, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            next_url = flows.finish_enrolment(request, user, seed, form.step)
        except flows.SigninRefused as refused:
            return redirect(refused.url)
        messages.success(request, _("Your authenticator app is set up."))
        return redirect(reverse("new_recovery_codes") + "?" + urlencode({"next": next_url}))
    return render(request, "accounts/signin_enrol.html", {"form": form, **flows.enrolment_context(user, seed)})


@require_POST
def signout(request):
    if request.user.is_authenticated:
        AuditEvent.objects.record(Action.SIGNED_OUT, request=request, target=request.user)
    logout(request)
    messages.success(request, _("You have signed out."))
    return redirect("signin")


INVITATION_TOKEN = "invitation_token"
TOKEN_IN_SESSION = "set-password"


@require_http_methods(["GET", "POST"])
def accept_invitation(request, uidb64, token):
    # Like Django's password reset: the token moves from the address into the session at once,
    # so it does not linger in browser history, Referer headers or access logs.
    if token != TOKEN_IN_SESSION:
        request.session[INVITATION_TOKEN] = token
        return redirect("accept_invitation", uidb64=uidb64, token=TOKEN_IN_SESSION)
    try:
        user = User.objects.get(pk=int(urlsafe_base64_decode(uidb64).decode()), is_active=True)
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, request.session.get(INVITATION_TOKEN, "")):
        return render(request, "accounts/invitation_invalid.html", status=400)
    # In the language the invitation was written in (User.addressed), unless this browser chose
    # one on the portal's pages; the sign-in page after it too.
    language = None
    if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
        language = user.language or user.last_language
        if language in dict(settings.LANGUAGES):
            speak(request, language)
        else:
            language = None
    form = NewPasswordForm(user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        # Only while the hash is still the one the link was made for (the new one ends the link):
        # of two browsers sending the same link at once, one sets the password and the other
        # finds the link used.
        if not user.replace_password(user.password, form.cleaned_data["new_password1"]):
            return render(request, "accounts/invitation_invalid.html", status=400)
        del request.session[INVITATION_TOKEN]
        AuditEvent.objects.record(Action.INVITATION_ACCEPTED, request=request, actor=user, target=user)
        messages.success(request, _("Your password is set. Sign in to set up your authenticator app."))
        # The username they were just shown is filled in: only the new password remains to type.
        response = redirect(reverse("signin") + "?" + urlencode({"username": user.username}))
        return language_cookie(response, language) if language else response
    return render(request, "accounts/accept_invitation.html", {"form": form, "invited": user})
