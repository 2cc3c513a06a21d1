from django.core.management.base import BaseCommand

from tenantlink.companies.management.commands.licence import find_company
from tenantlink.sso import requirement

STATES = {
    "off": "is off",
    "configuration": "is on, but paused: single sign-on is not configured on this installation",
    "licence": "is on, but paused: the company has no valid SSO licence",
    "integration": "is on, but paused: no integration is active",
}


class Command(BaseCommand):
    help = (
        "Show whether a company requires its members to sign in with Microsoft, or turn it off (--off), "
        "for example when its Microsoft set-up locks people out. Turning it on is the administrator's, "
        "after the dry run on the Single sign-on page."
    )

    def add_arguments(self, parser):
        parser.add_argument("company", help="The company's name.")
        parser.add_argument("--off", action="store_true", help="Stop requiring Microsoft sign-in.")

    def handle(self, company, off=False, **options):
        company = find_company(company)
        if off:
            if requirement.turn_off(company, actor_label="command line"):
                self.stdout.write(f"{company.name} no longer requires Microsoft sign-in.")
            else:
                self.stdout.write(f"{company.name} did not require Microsoft sign-in; nothing changed.")
            return
        state = requirement.evaluate(company)
        applies = "is on" if state.applies else STATES[state.reason]
        self.stdout.write(f"Required Microsoft sign-in for members of {company.name} {applies}.")
