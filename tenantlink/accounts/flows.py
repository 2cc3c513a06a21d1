"""The sign-in flow's state between its steps, and invitations.

The half-finished sign-in (password accepted, second factor pending) lives in the session with
a deadline; nothing about it is trusted from the browser."""

import time

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_encode
from django.utils.translation import gettext as _

from tenantlink.accounts import throttle
from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.lib import crypto

PENDING = "pending_signin"


def safe_next(request, fallback="portal"):
    """The `next` parameter if it points at a path on this site, otherwise `fallback`."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(fallback)


def start_pending(request, user, next_url):
    request.session.cycle_key()
    request.session[PENDING] = {
        "user_id": user.pk,
        "expires": time.time() + settings.SIGNIN_PENDING_LIFETIME,
        "next": next_url,
    }


def pending_user(request):
    """The user whose password was accepted in this session a few minutes ago, or None."""
    pending = request.session.get(PENDING)
    if not pending:
        return None
    if pending["expires"] < time.time():
        forget_pending(request)
        return None
    return User.objects.filter(pk=pending["user_id"], is_active=True).select_related("totp").first()


def forget_pending(request):
    for key in (PENDING, "enrol_seed"):
        request.session.pop(key, None)


def enrolment_seed(request, key="enrol_seed"):
    """The seed being enrolled in this session: made once, kept encrypted until confirmed."""
    if key not in request.session:
        request.session[key] = crypto.encrypt(TOTPDevice.new_seed())
    return crypto.decrypt(request.session[key])


def complete_signin(request, user, method):
    """Finish a sign-in: new session key, lifetimes started, failures forgiven, audited.
    Returns where the user was going."""
    next_url = request.session.get(PENDING, {}).get("next") or reverse("portal")
    forget_pending(request)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the session key
    now = int(time.time())
    request.session["signed_in_at"] = request.session["last_seen"] = now
    throttle.clear_account(user.username)
    AuditEvent.objects.record(Action.SIGNIN_SUCCEEDED, request=request, target=user, method=method)
    return next_url


def is_recent_signin(request):
    """A full sign-in or a password confirmation within RECENT_SIGNIN_WINDOW seconds."""
    last = max(request.session.get("signed_in_at", 0), request.session.get("reauthenticated_at", 0))
    return time.time() - last <= settings.RECENT_SIGNIN_WINDOW


def send_invitation(request, user):
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.SITE_URL + reverse("accept_invitation", args=[uid, token])
    context = {
        "user": user,
        "link": link,
        "company": user.company,
        "inviter": request.user,
        "SITE_NAME": settings.SITE_NAME,
    }
    send_mail(
        _("You are invited to %(site)s") % {"site": settings.SITE_NAME},
        render_to_string("accounts/email/invitation.txt", context),
        None,
        [user.email],
    )
    AuditEvent.objects.record(Action.USER_INVITED, request=request, target=user)
