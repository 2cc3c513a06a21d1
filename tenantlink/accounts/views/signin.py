"""Flow 1: username + password → second factor (or enrolment) → portal."""

import segno
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.shortcuts import redirect, render
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.accounts import flows, throttle
from tenantlink.accounts.forms import ConfirmCodeForm, SecondFactorForm, SignInForm
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.lib.errors import too_many_requests


def _expired(request):
    messages.info(request, _("Your sign-in took too long and was stopped. Please start again."))
    return redirect("signin")


@require_http_methods(["GET", "POST"])
def signin(request):
    if request.user.is_authenticated:
        return redirect(flows.safe_next(request))
    if request.method == "POST" and throttle.address_paused(request):
        return too_many_requests(request)
    form = SignInForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        flows.start_pending(request, form.user, flows.safe_next(request))
        return redirect("signin_verify" if form.user.has_second_factor else "signin_enrol")
    return render(request, "accounts/signin.html", {"form": form, "next": request.GET.get("next", "")})


@require_http_methods(["GET", "POST"])
def signin_verify(request):
    user = flows.pending_user(request)
    if user is None:
        return _expired(request)
    if not user.has_second_factor:
        return redirect("signin_enrol")
    if request.method == "POST" and throttle.address_paused(request):
        return too_many_requests(request)
    form = SecondFactorForm(request, user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        if form.used_recovery_code:
            AuditEvent.objects.record(Action.RECOVERY_CODE_USED, request=request, actor=user, target=user)
        next_url = flows.complete_signin(request, user, "recovery_code" if form.used_recovery_code else "totp")
        if form.used_recovery_code:
            messages.warning(
                request,
                _(
                    "You signed in with a recovery code. %(count)d unused codes remain; you can make new ones in My Profile → Settings."
                )
                % {"count": RecoveryCode.remaining(user)},
            )
        return redirect(next_url)
    return render(request, "accounts/signin_verify.html", {"form": form})


def render_enrolment(request, user, seed, form, template):
    uri = TOTPDevice.provisioning_uri(seed, user)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=5, title=_("QR code for your authenticator app"))
    manual_key = " ".join(seed[i : i + 4] for i in range(0, len(seed), 4))
    return render(request, template, {"form": form, "qr_svg": qr_svg, "manual_key": manual_key})


@require_http_methods(["GET", "POST"])
def signin_enrol(request):
    user = flows.pending_user(request)
    if user is None:
        return _expired(request)
    if user.has_second_factor:
        # A password alone must never replace an existing authenticator.
        return redirect("signin_verify")
    seed = flows.enrolment_seed(request)
    form = ConfirmCodeForm(seed, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        TOTPDevice.enrol(user, seed, form.step)
        codes = RecoveryCode.replace_for(user)
        AuditEvent.objects.record(Action.SECOND_FACTOR_ENROLLED, request=request, actor=user, target=user)
        AuditEvent.objects.record(Action.RECOVERY_CODES_GENERATED, request=request, actor=user, target=user)
        next_url = flows.complete_signin(request, user, "totp_enrolment")
        return render(
            request, "accounts/recovery_codes.html", {"codes": codes, "next_url": next_url, "first_time": True}
        )
    return render_enrolment(request, user, seed, form, "accounts/signin_enrol.html")


@require_POST
def signout(request):
    if request.user.is_authenticated:
        AuditEvent.objects.record(Action.SIGNED_OUT, request=request, target=request.user)
    logout(request)
    messages.success(request, _("You have signed out."))
    return redirect("signin")


@require_http_methods(["GET", "POST"])
def accept_invitation(request, uidb64, token):
    try:
        user = User.objects.get(pk=int(urlsafe_base64_decode(uidb64).decode()), is_active=True)
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        return render(request, "accounts/invitation_invalid.html", status=400)
    form = SetPasswordForm(user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        form.save()  # the new password hash invalidates the link
        AuditEvent.objects.record(Action.INVITATION_ACCEPTED, request=request, actor=user, target=user)
        messages.success(request, _("Your password is set. Sign in to set up your authenticator app."))
        return redirect("signin")
    return render(request, "accounts/accept_invitation.html", {"form": form, "invited": user})
