import datetime

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from tenantlink.accounts.models import Throttle


class Command(BaseCommand):
    help = "Delete expired sessions and sign-in throttle counts that no longer matter. Run it daily."

    def handle(self, **options):
        now = timezone.now()
        window_start = now - datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
        # A count whose window has passed is reset at the next attempt anyway; a pause that has
        # ended is too. Every name ever typed at the sign-in page would otherwise stay forever.
        throttles, _ = Throttle.objects.filter(
            Q(locked_until__isnull=True, window_started_at__lt=window_start) | Q(locked_until__lte=now)
        ).delete()
        sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
        self.stdout.write(f"Deleted {throttles} expired throttle counts and {sessions} expired sessions.")
