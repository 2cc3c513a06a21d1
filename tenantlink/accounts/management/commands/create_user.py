import secrets

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.management.commands.licence import find_company


class Command(BaseCommand):
    help = "Create a user of a company, with an initial password they must change at first sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--company", required=True, help="The company's name.")
        parser.add_argument("--role", choices=User.Role.values, default=User.Role.MEMBER)
        parser.add_argument("--display-name", default="")
        parser.add_argument("--email", default="")

    def handle(self, username, company, role, display_name, email, **options):
        company = find_company(company)
        username = username.strip()
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"The username {username!r} is taken.")
        user = User(
            username=username,
            company=company,
            role=role,
            display_name=display_name,
            email=email,
            must_change_password=True,
        )
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
            ) from None
        password = secrets.token_urlsafe(12)
        password_validation.validate_password(password, user)
        user.set_password(password)
        user.save()
        AuditEvent.objects.record(Action.USER_CREATED, actor_label="command line", target=user, role=role)
        self.stdout.write(f"Created {role} {username!r} in {company.name}.")
        self.stdout.write(f"Initial password (shown once; the user must change it at first sign-in): {password}")
