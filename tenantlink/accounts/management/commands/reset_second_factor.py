from django.core.management.base import BaseCommand, CommandError

from tenantlink.accounts.flows import notify
from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent


class Command(BaseCommand):
    help = "Remove a user's authenticator app and recovery codes; they enrol again at next sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        try:
            user = User.objects.get(username__iexact=username.strip())
        except User.DoesNotExist:
            raise CommandError(f"There is no user {username!r}.") from None
        had = user.has_second_factor
        if not user.reset_second_factor():
            raise CommandError(f"{user.username} has no second factor and no recovery codes: nothing to reset.")
        AuditEvent.objects.record(Action.SECOND_FACTOR_RESET, actor_label="command line", target=user)
        notify(None, user, "second_factor_reset")  # by operator staff, as the email says
        if had:
            self.stdout.write(
                f"Reset the second factor of {user.username}. They set up a new authenticator at next sign-in."
            )
        else:
            self.stdout.write(f"{user.username} had no second factor; their recovery codes, if any, were removed.")
