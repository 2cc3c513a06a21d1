"""Brute-force protection for password and second-factor attempts.

Attempts are counted per account and per client address. An attempt is counted *before* the
secret is checked and given back only when it succeeds, so many guesses sent at the same moment
cannot all slip through before the first failure is written. When a key has used up its attempts
inside the window, sign-in for that key pauses for THROTTLE_LOCKOUT seconds; the pause ends by
itself. Both the start and the end of a pause are audited.
"""

import datetime
import hashlib
import unicodedata

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenantlink.accounts.models import Throttle
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib.net import client_address


def account_key(username, user=None):
    """The account's key: its id when the name belongs to a user (so every spelling that finds
    the user counts against the same key), otherwise a digest of the normalised name (so a
    name that does not exist is throttled just the same, and is never stored as typed)."""
    if user is not None:
        return f"user:{user.pk}"
    normalised = unicodedata.normalize("NFKC", username.strip()).casefold()
    return "name:" + hashlib.sha256(normalised.encode()).hexdigest()


UNKNOWN_USERNAME = "(unknown username)"


def _address_key(request):
    return f"address:{client_address(request)}"


def _keys(request, username, user):
    return [
        (account_key(username, user), settings.THROTTLE_ACCOUNT_FAILURES),
        (_address_key(request), settings.THROTTLE_ADDRESS_FAILURES),
    ]


def _label(key, user):
    if key.startswith("address:"):
        return key
    return user.username if user else UNKNOWN_USERNAME


def begin_attempt(request, username, user=None):
    """Count one attempt for the account and the address. False, and nothing counted, when
    either is paused: then the secret must not be checked at all."""
    now = timezone.now()
    window = datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
    ended, started = [], []
    with transaction.atomic():
        throttles = []
        # Always lock the rows in the same order (sorted by key), so that two requests cannot
        # wait for each other.
        for key, limit in sorted(_keys(request, username, user)):
            throttle, _created = Throttle.objects.select_for_update().get_or_create(
                key=key, defaults={"window_started_at": now}
            )
            if throttle.locked_until and throttle.locked_until <= now:
                ended.append(throttle.key)
                throttle.failures, throttle.window_started_at, throttle.locked_until = 0, now, None
            elif not throttle.locked_until and now - throttle.window_started_at > window:
                throttle.failures, throttle.window_started_at = 0, now
            if not throttle.locked_until and throttle.failures >= limit:
                throttle.locked_until = now + datetime.timedelta(seconds=settings.THROTTLE_LOCKOUT)
                started.append(throttle)
            throttles.append(throttle)
        allowed = not any(throttle.locked_until for throttle in throttles)
        for throttle in throttles:
            if allowed:
                throttle.failures += 1
            throttle.save()
    for key in ended:
        AuditEvent.objects.record(Action.SIGNIN_UNLOCKED, request=request, target=user, target_label=_label(key, user))
    for throttle in started:
        AuditEvent.objects.record(
            Action.SIGNIN_LOCKED,
            request=request,
            target=user,
            target_label=_label(throttle.key, user),
            outcome=Outcome.DENIED,
            attempts=throttle.failures,
            until=throttle.locked_until.isoformat(),
        )
    return allowed


def attempt_succeeded(request, user):
    """The secret was right: give this attempt back to the account and the address. Failed
    attempts stay counted until the whole sign-in succeeds (clear_account), so a stolen password
    cannot be used to guess second-factor codes without limit."""
    # Row by row in the order begin_attempt locks them: one UPDATE … WHERE key IN (…) locks rows
    # in an order of the database's choosing, and two sign-ins of one user could then deadlock.
    with transaction.atomic():
        for key in sorted([account_key(user.username, user), _address_key(request)]):
            Throttle.objects.filter(key=key, failures__gt=0).update(failures=F("failures") - 1)


def clear_account(user):
    """A complete sign-in forgives the account's earlier failures (not the address's)."""
    Throttle.objects.filter(key=account_key(user.username, user)).delete()


def address_paused(request):
    """True while the client's address is paused. Saying so reveals nothing about any account."""
    return Throttle.objects.filter(key=_address_key(request), locked_until__gt=timezone.now()).exists()


def checked(request, user, check):
    """Run `check()`, a password or code check for a known user, under the throttle: False
    without running it while the account or address is paused."""
    if not begin_attempt(request, user.username, user):
        return False
    if check():
        attempt_succeeded(request, user)
        return True
    return False
