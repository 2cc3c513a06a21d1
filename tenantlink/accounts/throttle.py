"""Brute-force protection for password and second-factor attempts.

Failures are counted per account (the username as typed, whether or not it exists, so the
throttle itself reveals nothing) and per client address. Reaching the limit inside the window
pauses sign-in for that key for THROTTLE_LOCKOUT seconds; the pause ends by itself.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenantlink.accounts.models import Throttle
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib.net import client_address


def keys_for(request, username):
    return [
        (f"account:{username.strip().casefold()}", settings.THROTTLE_ACCOUNT_FAILURES),
        (f"address:{client_address(request)}", settings.THROTTLE_ADDRESS_FAILURES),
    ]


def is_locked(request, username):
    """True while any of the keys for this attempt is paused. A pause that has run out is
    cleared here and audited as ended."""
    now = timezone.now()
    locked = False
    for key, _limit in keys_for(request, username):
        throttle = Throttle.objects.filter(key=key, locked_until__isnull=False).first()
        if throttle is None:
            continue
        if throttle.locked_until > now:
            locked = True
        elif Throttle.objects.filter(pk=throttle.pk, locked_until=throttle.locked_until).update(
            locked_until=None, failures=0, window_started_at=now
        ):
            AuditEvent.objects.record(Action.SIGNIN_UNLOCKED, request=request, target_label=key)
    return locked


def address_paused(request):
    """True while the client's address is paused. Saying so reveals nothing about any account."""
    key = f"address:{client_address(request)}"
    return Throttle.objects.filter(key=key, locked_until__gt=timezone.now()).exists()


def register_failure(request, username, user=None):
    """Count one failed attempt; start and audit a pause for each key that reached its limit."""
    now = timezone.now()
    window = datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
    for key, limit in keys_for(request, username):
        with transaction.atomic():
            throttle, _created = Throttle.objects.select_for_update().get_or_create(
                key=key, defaults={"window_started_at": now}
            )
            if throttle.locked_until and throttle.locked_until > now:
                continue
            if now - throttle.window_started_at > window or throttle.locked_until:
                throttle.failures, throttle.window_started_at, throttle.locked_until = 0, now, None
            throttle.failures += 1
            started_pause = throttle.failures >= limit
            if started_pause:
                throttle.locked_until = now + datetime.timedelta(seconds=settings.THROTTLE_LOCKOUT)
            throttle.save()
        if started_pause:
            AuditEvent.objects.record(
                Action.SIGNIN_LOCKED,
                request=request,
                target=user,
                target_label=key,
                outcome=Outcome.DENIED,
                failures=throttle.failures,
                until=throttle.locked_until.isoformat(),
            )


def clear_account(username):
    """A complete sign-in forgives the account's earlier failures (not the address's)."""
    Throttle.objects.filter(key=f"account:{username.strip().casefold()}").delete()
