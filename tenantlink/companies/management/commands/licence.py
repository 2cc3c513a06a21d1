import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import LAST_LICENCE_MOMENT, Company, Licence


def find_company(name):
    try:
        return Company.objects.get(name__iexact=name.strip())
    except Company.DoesNotExist:
        raise CommandError(f"There is no company named {name!r}.") from None


class Command(BaseCommand):
    help = "Grant, extend or revoke a company's SSO licence, or show its licences."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["grant", "revoke", "show"])
        parser.add_argument("company", help="The company's name.")
        until = parser.add_mutually_exclusive_group()
        until.add_argument("--until", type=datetime.date.fromisoformat, help="Last day of validity, YYYY-MM-DD.")
        until.add_argument("--days", type=int, help="Valid for this many days from now.")

    def handle(self, action, company, until=None, days=None, **options):
        company = find_company(company)
        if action == "show":
            return self.show(company)
        if action == "revoke":
            count = company.revoke_licences(Licence.Product.SSO)
            if not count:
                raise CommandError(f"{company.name} has no SSO licence to revoke.")
            AuditEvent.objects.record(
                Action.LICENCE_REVOKED,
                actor_label="command line",
                company=company,
                target_label=company.name,
                product="sso",
            )
            self.stdout.write(
                f"Revoked the SSO licence of {company.name}. Microsoft sign-in is refused until it is renewed."
            )
            return
        if until is None and days is None:
            raise CommandError("Say how long the licence is valid: --until YYYY-MM-DD or --days N.")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        try:
            if days is not None:
                ends = timezone.now() + datetime.timedelta(days=days)
            else:
                ends = datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time.min, datetime.UTC)
        except OverflowError:  # past the calendar's last day
            ends = None
        if ends is None or ends > LAST_LICENCE_MOMENT:
            raise CommandError("The last day of validity can be 9998-12-31 at the latest.")
        if ends <= timezone.now():
            raise CommandError("The licence must end in the future.")
        before = company.current_licence(Licence.Product.SSO)
        previous_end = before.valid_until if before else None
        licence, created = company.grant_licence(Licence.Product.SSO, ends)
        if not created and licence.valid_until == previous_end:
            self.stdout.write(
                f"{company.name} already holds an SSO licence {_validity(previous_end)}; nothing changed."
            )
            return
        action = Action.LICENCE_GRANTED if created else Action.LICENCE_EXTENDED
        AuditEvent.objects.record(
            action,
            actor_label="command line",
            company=company,
            target_label=company.name,
            product="sso",
            valid_until=licence.valid_until.isoformat(),
        )
        verb = "Granted" if created else "Extended"
        self.stdout.write(f"{verb} the SSO licence of {company.name}: {_validity(licence.valid_until)}.")

    def show(self, company):
        licences = company.licences.all()
        if not licences:
            self.stdout.write(f"{company.name} has no licences.")
        for licence in licences:
            self.stdout.write(
                f"{licence.product}  {licence.valid_from:%Y-%m-%d} – {licence.valid_until:%Y-%m-%d}  {licence.status}"
            )


def _validity(ends):
    """A licence that ends at midnight UTC (--until DAY) is valid through the day before."""
    if ends.time() == datetime.time.min:
        return f"valid through {ends - datetime.timedelta(days=1):%Y-%m-%d} (until {ends:%Y-%m-%d} 00:00 UTC)"
    return f"valid until {ends:%Y-%m-%d %H:%M} UTC"
