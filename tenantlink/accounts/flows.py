"""The sign-in flow's state between its steps, authenticator set-up, invitations, and the
security notices that tell people by email what happened to their account.

The half-finished sign-in (password accepted, second factor pending) lives in the session with
a deadline; nothing about it is trusted from the browser."""

import contextlib
import datetime
import logging
import smtplib
import time
from dataclasses import dataclass

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_encode
from django.utils.translation import gettext as _

from tenantlink.accounts import throttle
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent, Outcome, signin_kind
from tenantlink.lib import crypto
from tenantlink.lib.queries import Prepared, update

log = logging.getLogger(__name__)

PENDING = "pending_signin"
NEW_RECOVERY_CODES = "new_recovery_codes"
SIGNIN_METHOD = "signin_method"
INITIAL_PASSWORD_TYPED = "initial_password_typed"
MAX_NEXT_LENGTH = 500  # longer "next" values are not ours: they fall back to the default page

# Sent when the password and second factor of a sign-in were right, before it completes, with
# `request`, `user`, `method` and `next_url`: a receiver (another app's rule, such as a company's
# requirement of Microsoft sign-in) may return a SigninRefusal, and then nobody is signed in.
signin_completing = Signal()

# Sent with `request` and `user` when an operator has moved a user to another company, or made
# them operator staff (what the user had through the old company, such as a Microsoft
# connection, goes; staff have none: operator access never rests on a customer's tenant).
standing_changed = Signal()


@dataclass(frozen=True)
class SigninRefusal:
    """Why a sign-in with the right secrets is refused (for the audit log), where the browser
    goes instead, and what that page finds in the session."""

    reason: str
    url: str
    session: dict


class SigninRefused(Exception):
    """complete_signin refused the sign-in: the browser goes to `url`."""

    def __init__(self, url):
        super().__init__(url)
        self.url = url


def safe_next(request, fallback="portal"):
    """The `next` parameter if it points at a path on this site, otherwise `fallback`."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if (
        len(candidate) <= MAX_NEXT_LENGTH
        and candidate.startswith("/")
        and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return candidate
    return reverse(fallback)


def start_pending(request, user, next_url):
    # A new, empty session: nothing a previous visitor of this browser left in it (such as a
    # half-made authenticator set-up) carries over to this user.
    request.session.flush()
    request.session[PENDING] = {
        "user_id": user.pk,
        "expires": time.time() + settings.SIGNIN_PENDING_LIFETIME,
        "next": next_url,
        # A password change elsewhere in the meantime cancels this half-finished sign-in.
        "auth_hash": user.get_session_auth_hash(),
    }


# Read on both requests of the second step of every password sign-in: composed once.
_pending = Prepared(
    lambda user_id: User.objects.filter(pk=user_id, is_active=True).select_related("totp", "company"), user_id=int
)


def pending_user(request):
    """The user whose password was accepted in this session a few minutes ago, or None."""
    pending = request.session.get(PENDING)
    if not pending:
        return None
    user = _pending.one(user_id=pending["user_id"])
    if (
        pending["expires"] < time.time()
        or user is None
        or not constant_time_compare(pending["auth_hash"], user.get_session_auth_hash())
    ):
        forget_pending(request)
        return None
    return user


def pending_ran_out(request):
    """Whether this session holds a half-finished sign-in whose time is up (pending_user then
    forgets it)."""
    pending = request.session.get(PENDING)
    return bool(pending) and pending["expires"] < time.time()


def forget_pending(request):
    for key in (PENDING, "enrol_seed"):
        request.session.pop(key, None)


def enrolment_seed(request, user, key="enrol_seed"):
    """The seed being set up in this session for `user`: made once, kept encrypted in the
    session until a code from it is confirmed, and never handed to another user."""
    stored = request.session.get(key)
    if stored and stored["user_id"] == user.pk:
        with contextlib.suppress(ValueError):  # encrypted with a key taken out since: a new one
            return crypto.decrypt(stored["seed"])
    seed = TOTPDevice.new_seed()
    request.session[key] = {"user_id": user.pk, "seed": crypto.encrypt(seed), "made_at": time.time()}
    return seed


def enrolment_started(request, key):
    """When the set-up in this session began (a time.time()); None for one begun before this was kept."""
    return (request.session.get(key) or {}).get("made_at")


def enrolment_context(user, seed):
    """What the set-up page shows: the QR code (SVG) and the same key for typing in by hand."""
    uri = TOTPDevice.provisioning_uri(seed, user)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=5, title=_("QR code for your authenticator app"))
    manual_key = " ".join(seed[i : i + 4] for i in range(0, len(seed), 4))
    return {"qr_svg": qr_svg, "manual_key": manual_key}


def give_recovery_codes(request, user):
    """Make new recovery codes and keep them in the session for the one page that shows them."""
    # Encrypted, as the seeds are: the session row is in the database until the page is seen.
    request.session[NEW_RECOVERY_CODES] = crypto.encrypt(" ".join(RecoveryCode.replace_for(user)))
    AuditEvent.objects.record(Action.RECOVERY_CODES_GENERATED, request=request, actor=user, target=user)


def take_recovery_codes(request):
    """The codes kept for the one page that shows them, now gone from the session; [] if none."""
    stored = request.session.pop(NEW_RECOVERY_CODES, None)
    if isinstance(stored, list):  # kept by the release before this one, in plain text
        return stored
    if not isinstance(stored, str):
        return []
    try:
        return crypto.decrypt(stored).split()
    except ValueError:  # encrypted with a key taken out since
        return []


def finish_enrolment(request, user, seed, step):
    """The first authenticator is confirmed: store it, make recovery codes, finish the sign-in.
    SigninRefused, to the code step, when another browser holding the password set one up first."""
    if TOTPDevice.enrol(user, seed, step, first=True) is None:
        request.session.pop("enrol_seed", None)
        messages.warning(
            request,
            _(
                "An authenticator app was set up for your account in another browser a moment ago, so this one "
                "was not. Enter the code from that app."
            ),
        )
        raise SigninRefused(reverse("signin_verify"))
    AuditEvent.objects.record(Action.SECOND_FACTOR_ENROLLED, request=request, actor=user, target=user)
    next_url = complete_signin(request, user, "totp_enrolment")
    give_recovery_codes(request, user)  # after the sign-in, which starts a new session
    return next_url


def complete_signin(request, user, method):
    """Finish a sign-in: new session key, lifetimes started, audited, and the account's failed
    guesses forgiven when this sign-in proved its password (not with Microsoft: whoever holds the
    Microsoft account could otherwise start the count of password guesses afresh by signing in
    again, and guess the password that guards the second factor). Returns where the user was
    going; SigninRefused when a receiver of signin_completing refuses it (audited as that refusal
    only, and the half-finished sign-in ends)."""
    next_url = request.session.get(PENDING, {}).get("next") or reverse("portal")
    proved_password = method != "microsoft"
    for _receiver, refusal in signin_completing.send(
        sender=User, request=request, user=user, method=method, next_url=next_url
    ):
        if refusal is not None:
            if proved_password:
                throttle.clear_account(user)  # the password and the code were right
            AuditEvent.objects.record(
                Action.SIGNIN_FAILED,
                request=request,
                target=user,
                outcome=Outcome.DENIED,
                method=signin_kind(method),
                reason=refusal.reason,
            )
            logout(request)
            request.session.update(refusal.session)
            raise SigninRefused(refusal.url)
    forget_pending(request)
    login(request, user, backend="tenantlink.accounts.backends.AccountBackend")  # rotates the session key
    now = time.time()
    # The sign-in's moment exactly: a session opened with Microsoft is compared with when its
    # licence and integration changed (sso.flows.still_usable), to the fraction of a second.
    request.session["signed_in_at"] = now
    request.session["last_seen"] = int(now)
    request.session[SIGNIN_METHOD] = method  # "totp", "recovery_code", "totp_enrolment", "microsoft"
    if proved_password and user.must_change_password:
        # The password just typed is the initial one: changing it need not ask for it again
        # (profile.change_password). Not when operator staff ask for a change later.
        request.session[INITIAL_PASSWORD_TYPED] = True
    if proved_password:
        throttle.clear_account(user)
    AuditEvent.objects.record(Action.SIGNIN_SUCCEEDED, request=request, target=user, method=method)
    remember_language(user)
    if user.language:  # this request's messages ("signed in with a recovery code") in the user's language too
        translation.activate(user.language)
    return next_url


def remember_language(user):
    """Keep the language this sign-in was made in (the sign-in page's choice, else the browser's)
    for emails to a user who chose none: an email sent by someone else's request must not come in
    that person's language. Written only when it changed (none stored reads as the portal's
    default, as User.addressed reads it): one UPDATE, composed once."""
    language = translation.get_language()
    if language in dict(settings.LANGUAGES) and language != (user.last_language or settings.LANGUAGE_CODE):
        user.last_language = language
        update(user, "last_language")


def is_recent_full_signin(request):
    """A sign-in with password and second factor within RECENT_SIGNIN_WINDOW seconds."""
    full = request.session.get(SIGNIN_METHOD) not in (None, "microsoft")
    return full and time.time() - request.session.get("signed_in_at", 0) <= settings.RECENT_SIGNIN_WINDOW


def is_recent_signin(request):
    """A full sign-in or a password confirmation within RECENT_SIGNIN_WINDOW seconds. A Microsoft
    sign-in is not enough: whoever holds the Microsoft account (its tenant's administrators
    too) must not be able to replace the portal's own second factor without the password."""
    confirmed = time.time() - request.session.get("reauthenticated_at", 0) <= settings.RECENT_SIGNIN_WINDOW
    return confirmed or is_recent_full_signin(request)


def send_invitation(request, user, action=Action.USER_INVITED):
    """Email the user a single-use link to choose a password, and audit it as `action`. False
    when the mail server could not take the message; the user is kept, and the invitation can be
    sent again."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.SITE_URL + reverse("accept_invitation", args=[uid, token])
    context = {
        "user": user,
        "link": link,
        "company": user.company,
        "inviter": request.user,
        "SITE_NAME": settings.SITE_NAME,
        "expires": timezone.now() + datetime.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
    }
    try:
        with user.addressed():
            send_mail(
                _("You are invited to %(site)s") % {"site": settings.SITE_NAME},
                render_to_string("accounts/email/invitation.txt", context),
                None,
                [user.email],
            )
    except (smtplib.SMTPException, OSError) as error:
        log.warning("Invitation to user %s not sent: %s", user.pk, error.__class__.__name__)
        AuditEvent.objects.record(action, request=request, target=user, outcome=Outcome.FAILURE)
        return False
    AuditEvent.objects.record(action, request=request, target=user)
    return True


def send_invitation_again(request, user):
    """A new link for someone who has never signed in, and the earlier links end (they went
    astray, or were forwarded): the link's token is made from a new unusable password, stored
    before the message is sent, only while the password is still the one read. What happened:
    "sent"; "not_sent" (the mail server did not take it: the earlier link works again);
    "accepted" (the person chose a password meanwhile: nothing sent); "not_awaiting" (deactivated
    a moment ago: nothing sent); "crossed" (another invitation to them went out at the same
    moment, from another window: only the last one's link works)."""
    read = user.password
    user.set_unusable_password()
    awaiting = User.objects.filter(pk=user.pk, password=read, last_login__isnull=True, is_active=True)
    if not awaiting.update(password=user.password):
        user.refresh_from_db(fields=["password", "is_active"])
        if not user.is_active:
            return "not_awaiting"
        return "accepted" if user.has_usable_password() else "crossed"
    if not send_invitation(request, user, Action.USER_INVITED_AGAIN):
        # (A server that took the message and then failed to say so leaves that link dead: the
        # administrator is told it was not sent, and sends it again.)
        User.objects.filter(pk=user.pk, password=user.password).update(password=read)
        user.password = read
        return "not_sent"
    return "sent" if User.objects.filter(pk=user.pk, password=user.password).exists() else "crossed"


def end_other_sessions(request, user):
    """Sign the user out everywhere but in this session, after a change to how they sign in:
    whoever holds another of their sessions (a forgotten browser, a stolen phone's) must not
    outlast it. Half-finished sign-ins elsewhere end too (start_pending keeps the hash)."""
    user.end_all_sessions()
    update_session_auth_hash(request, user)  # a new key, and the new hash, for this session


def done_by(request, user, without_request="operator"):
    """Who changed the user's account, for the words of an email: "self", "administrator" (of
    their company), "operator" (operator staff, in the operator admin or, by default, on the
    command line) or `without_request` when there is no request (a command, the leaver check)."""
    if request is None:
        return without_request
    if not request.user.is_authenticated or request.user == user:
        return "self"
    if request.user.is_operator or request.user.company_id != user.company_id:
        return "operator"
    return "administrator"


def _signed_out(what, by):
    """Where the change signed the user out, for the words of a notice: "elsewhere" (their own
    change in My Profile, whose session stays), "everywhere", or "" (nowhere)."""
    if what in ("reactivated", "wrong_codes", "email_changed", "role_changed"):
        return ""
    if by == "self" and what in ("password_changed", "authenticator_replaced", "recovery_codes_replaced"):
        return "elsewhere"
    return "everywhere"


def _notice_subject(what):
    return {
        "password_changed": _("The password of your %(site)s account was changed"),
        "password_sign_in_off": _("Password sign-in was turned off for your %(site)s account"),
        "second_factor_reset": _("The second factor of your %(site)s account was reset"),
        "authenticator_replaced": _("A new authenticator app was set up for your %(site)s account"),
        "recovery_codes_replaced": _("New recovery codes were made for your %(site)s account"),
        "wrong_codes": _("Someone who knows your %(site)s password entered wrong codes"),
        "deactivated": _("Your %(site)s account was deactivated"),
        "reactivated": _("Your %(site)s account was reactivated"),
        "email_changed": _("The email address of your %(site)s account was changed"),
        "role_changed": _("Your role in %(site)s was changed"),
    }[what] % {"site": settings.SITE_NAME}


def moment_in_words(moment):
    """`moment` as an email says it to the person it is addressed to (inside User.addressed()):
    in their language's format and their time zone, named, since the reader may be elsewhere."""
    local = timezone.localtime(moment)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} ({timezone.get_current_timezone_name()})"


def notify(request, user, what, to=None):
    """Tell the user by email of a change to how they sign in or who they are (`what`, see
    _notice_subject): if it was not them, they should know at once; if someone else did it, who.
    Sent to their address, or `to` (the one an address change replaced), when the change is
    committed (never for one rolled back, and no mail server is waited for while rows are
    locked); a user without an email address gets none. No secret is ever in it: no code, no
    password, no link that signs anyone in. A mail server that does not take it is logged: the
    change stands either way."""
    recipient = to or user.email
    if not recipient or (what in ("deactivated", "reactivated") and user.is_invited):
        return  # no address; or someone invited who never accepted, to whom neither means anything
    by = done_by(request, user)
    context = {
        "user": user,
        "what": what,
        "at": timezone.now(),
        "by": by,
        "signed_out": _signed_out(what, by),
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
    }

    def send():
        try:
            with user.addressed():
                body = render_to_string(
                    "accounts/email/security.txt", {**context, "when": moment_in_words(context["at"])}
                )
                send_mail(_notice_subject(what), body, None, [recipient])
        except (smtplib.SMTPException, OSError) as error:
            log.warning("Security notice %s to user %s not sent: %s", what, user.pk, error.__class__.__name__)

    transaction.on_commit(send)


def wrong_code(request, user):
    """A wrong code after the right password. From the few in a row that tell that someone else
    probably knows the password (throttle.wrong_code_noticed), its person is told, at most once a
    day, so that a guesser cannot fill their mailbox."""
    if throttle.wrong_code_noticed(user) and user.email and throttle.may_tell_of_wrong_codes(user):
        notify(request, user, "wrong_codes")
