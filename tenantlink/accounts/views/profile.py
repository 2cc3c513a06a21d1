"""My Profile: the overview and the Settings tab (password, second factor)."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from tenantlink.accounts import flows
from tenantlink.accounts.decorators import recent_signin_required
from tenantlink.accounts.forms import ChangePasswordForm, ConfirmCodeForm, ConfirmPasswordForm, PreferencesForm
from tenantlink.accounts.models import RecoveryCode, TOTPDevice
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.lib.middleware import not_for_head


@login_required
def overview(request):
    return render(request, "accounts/profile_overview.html", {"tab": "overview"})


def language_cookie(response, language):
    """The language cookie set (or, for none, removed) on `response`, as the sign-in page's switch
    sets it: the sign-in page keeps the user's language after signing out (and goes back to the
    browser's when the choice is removed), or after accepting an invitation written in it."""
    if not language:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, samesite=settings.LANGUAGE_COOKIE_SAMESITE)
    else:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    return response


def _browser_language(request):
    """The language of the pages once the user's choice is removed: language_cookie removes the
    language cookie with it, so LocaleMiddleware goes by the browser's Accept-Language alone."""
    browser = HttpRequest()
    browser.META["HTTP_ACCEPT_LANGUAGE"] = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return translation.get_language_from_request(browser)


@login_required
@require_http_methods(["GET", "POST"])
def settings_tab(request):
    user = request.user
    preferences_form = PreferencesForm(instance=user, data=request.POST if request.method == "POST" else None)
    if preferences_form.is_valid():
        preferences_form.save()
        translation.activate(user.language or _browser_language(request))  # the message in the new language
        messages.success(request, _("Your language and time zone have been saved."))
        return language_cookie(redirect("profile_settings"), user.language)
    return render(
        request,
        "accounts/profile_settings.html",
        {
            "tab": "settings",
            "device": getattr(user, "totp", None),
            "recovery_codes_left": RecoveryCode.remaining(user),
            "preferences_form": preferences_form,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def change_password(request):
    # The initial password an administrator set, changed as asked at the first sign-in: no news
    # to its person, who is doing it (any later change is told), and not asked for again while
    # that sign-in is recent; then on to the portal, not to the settings.
    initial = request.user.must_change_password
    just_typed = initial and request.session.get(flows.INITIAL_PASSWORD_TYPED) and flows.is_recent_full_signin(request)
    form = ChangePasswordForm(request, just_typed=just_typed, data=request.POST if request.method == "POST" else None)
    # The first own password's form (no current password asked), sent after another window of
    # this sign-in chose one: not "the current password is required".
    other_window = (
        request.method == "POST"
        and not initial
        and request.session.get(flows.INITIAL_PASSWORD_TYPED)
        and "old_password" not in request.POST
    )
    if other_window or form.is_valid():
        user = None if other_window else form.save()
        if user is None:
            messages.error(
                request,
                _(
                    "Your password was changed a moment ago in another window. That password stays; this form changed nothing."
                ),
            )
            return redirect("profile_settings")
        update_session_auth_hash(request, user)  # other sessions of this user end; this one stays
        AuditEvent.objects.record(Action.PASSWORD_CHANGED, request=request, target=user)
        if not initial:
            flows.notify(request, user, "password_changed")
        messages.success(request, _("Your password has been changed."))
        return redirect("portal" if initial else "profile_settings")
    return render(
        request,
        "accounts/change_password.html",
        {"form": form, "tab": "settings", "initial": initial, "just_typed": just_typed},
    )


@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    form = ConfirmPasswordForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        # More may be done in this session now: a new key, as at a sign-in, so that a session key
        # that got out earlier does not share what this confirmation allows.
        request.session.cycle_key()
        request.session["reauthenticated_at"] = int(time.time())
        AuditEvent.objects.record(Action.REAUTHENTICATED, request=request, target=request.user)
        return redirect(flows.safe_next(request, fallback="profile_settings"))
    return render(
        request, "accounts/reauthenticate.html", {"form": form, "next": flows.safe_next(request, "profile_settings")}
    )


@login_required
@recent_signin_required
@require_http_methods(["GET", "POST"])
def reenrol_totp(request):
    seed = flows.enrolment_seed(request, request.user, key="reenrol_seed")
    form = ConfirmCodeForm(seed, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        started = flows.enrolment_started(request, "reenrol_seed")
        del request.session["reenrol_seed"]
        if not TOTPDevice.replace(request.user, seed, form.step, since=started):
            messages.error(
                request,
                _(
                    "Your authenticator app was changed in another browser after you began here, so this one was "
                    "not set up. Codes from the app set up there work."
                ),
            )
            return redirect("profile_settings")
        # Whoever is signed in elsewhere with the old app's codes (its phone lost or stolen) is not
        # any more; this session stays.
        flows.end_other_sessions(request, request.user)
        AuditEvent.objects.record(Action.SECOND_FACTOR_ENROLLED, request=request, target=request.user, replaced=True)
        flows.notify(request, request.user, "authenticator_replaced")
        messages.success(request, _("Your new authenticator app is set up. Codes from the old one no longer work."))
        return redirect("profile_settings")
    context = {"form": form, "tab": "settings", **flows.enrolment_context(request.user, seed)}
    return render(request, "accounts/reenrol.html", context)


@login_required
@recent_signin_required
@require_http_methods(["GET", "POST"])
def regenerate_recovery_codes(request):
    if request.method == "GET":
        return render(request, "accounts/regenerate_codes.html", {"tab": "settings"})
    # New codes because the old ones were seen or lost: a session opened with one of them ends
    # (first, so that the new codes go into this session under its new key).
    flows.end_other_sessions(request, request.user)
    flows.give_recovery_codes(request, request.user)
    flows.notify(request, request.user, "recovery_codes_replaced")
    messages.warning(request, _("Your earlier recovery codes no longer work."))
    return redirect(reverse("new_recovery_codes") + "?" + urlencode({"next": reverse("profile_settings")}))


@login_required
@require_http_methods(["GET"])
@not_for_head
def new_recovery_codes(request):
    """Shows freshly made recovery codes once; they are not kept anywhere in readable form. GET
    only: a HEAD (a link checker, a prefetch) would use up the one showing without showing it."""
    codes = flows.take_recovery_codes(request)
    if not codes and request.user.must_change_password:  # Back, at a first sign-in: the settings are not open yet
        return redirect("change_password")
    if not codes:
        messages.info(request, _("Recovery codes are shown only once. You can make new ones here."))
        return redirect("profile_settings")
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next_url": flows.safe_next(request)})
