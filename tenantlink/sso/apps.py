import logging

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class Config(AppConfig):
    name = "tenantlink.sso"
    label = "sso"
    verbose_name = _("Single sign-on")

    def ready(self):
        from tenantlink.accounts.flows import company_changed, signin_completing
        from tenantlink.sso import flows, requirement

        signin_completing.connect(requirement.refusal_at_signin, dispatch_uid="tenantlink.sso.requirement")
        company_changed.connect(flows.drop_other_companies_connections, dispatch_uid="tenantlink.sso.company_changed")
        # Said once per process, for the operator; the pages only say "not configured".
        if settings.ENTRA_CONFIGURATION_PROBLEM:
            logging.getLogger(__name__).warning(
                "Single sign-on with Microsoft is off: %s", settings.ENTRA_CONFIGURATION_PROBLEM
            )
