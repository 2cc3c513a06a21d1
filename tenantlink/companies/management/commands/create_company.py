from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company


class Command(BaseCommand):
    help = "Create a customer company."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The company's name, unique.")

    def handle(self, name, **options):
        name = name.strip()
        if not name:
            raise CommandError("The company name must not be empty.")
        try:
            Company._meta.get_field("name").clean(name, None)  # its length, and plain_text
        except ValidationError as error:
            raise CommandError(f"The company name cannot be used: {error.messages[0]}") from None
        if Company.objects.filter(name__iexact=name).exists():
            raise CommandError(f"A company named {name!r} exists already.")
        company = Company.objects.create(name=name)
        AuditEvent.objects.record(
            Action.COMPANY_CREATED, actor_label="command line", company=company, target_label=name
        )
        self.stdout.write(f"Created company {company.name!r} (id {company.pk}).")
