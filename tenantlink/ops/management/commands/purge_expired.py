import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from tenantlink.accounts import throttle
from tenantlink.accounts.models import Session, Throttle
from tenantlink.audit.models import SLOT_HISTORY, AuditEvent, SigninSlot
from tenantlink.sso import requirement
from tenantlink.sso.models import CachedDocument, PendingAuthorization

# A discovery document or key set in use is fetched again every ENTRA_METADATA_LIFETIME; one not
# fetched for this long belongs to a tenant nobody signs in with any more, and is too old to
# stand in for Microsoft anyway.
CACHED_DOCUMENT_MAX_AGE = datetime.timedelta(days=30)


class Command(BaseCommand):
    help = (
        "Delete what is no longer needed: expired sessions, throttle counts and Microsoft flows "
        "that were never finished, Microsoft documents not fetched for 30 days, and audit events "
        "older than AUDIT_RETENTION_DAYS; record pauses of required Microsoft sign-in; and count the sign-ins "
        "of the last month not counted yet for the operator admin's adoption page (and delete older counts). "
        "Run it daily."
    )

    def handle(self, **options):
        now = timezone.now()
        window_start = now - datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
        # A count whose window has passed is reset at the next attempt anyway; a pause that has
        # ended is too. Every name ever typed at the sign-in page would otherwise stay forever.
        # A count with a longer window of its own (a day) lasts it.
        longer, passed = Q(), Q()
        for start, window in throttle.LONGER_WINDOWS.items():
            longer |= Q(key__startswith=start)
            passed |= Q(key__startswith=start, window_started_at__lt=now - window)
        throttles, _ = Throttle.objects.filter(
            Q(locked_until__isnull=True, window_started_at__lt=window_start) & ~longer
            | Q(locked_until__lte=now)
            | passed
        ).delete()
        sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
        pending = PendingAuthorization.purge_expired()
        document_age = max(CACHED_DOCUMENT_MAX_AGE, datetime.timedelta(seconds=2 * settings.ENTRA_METADATA_LIFETIME))
        documents, _ = CachedDocument.objects.filter(fetched_at__lt=now - document_age).delete()
        self.stdout.write(
            f"Deleted {throttles} expired throttle counts, {sessions} expired sessions, {pending} unfinished "
            f"Microsoft flows and {documents} old Microsoft documents."
        )
        # So that the audit log shows a pause (or its end) even on a day nobody signed in.
        changed = requirement.check_all()
        self.stdout.write(f"Required Microsoft sign-in paused or resumed for {changed} companies.")
        # Counted before old audit events go, so that a short retention loses no sign-in from the counts.
        counted_until = SigninSlot.objects.fill(now)
        slots = SigninSlot.objects.delete_old(now)
        self.stdout.write(
            f"Sign-ins are counted up to {counted_until:%Y-%m-%d %H:%M} UTC; deleted {slots} counts older than "
            f"{SLOT_HISTORY.days} days."
        )
        if settings.AUDIT_RETENTION_DAYS:
            cutoff = now - datetime.timedelta(days=settings.AUDIT_RETENTION_DAYS)
            events, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
            self.stdout.write(f"Deleted {events} audit events from before {cutoff:%Y-%m-%d}.")
        else:
            self.stdout.write("Audit events are kept forever (AUDIT_RETENTION_DAYS=0).")
