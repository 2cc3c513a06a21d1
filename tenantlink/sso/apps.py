import logging

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class Config(AppConfig):
    name = "tenantlink.sso"
    label = "sso"
    verbose_name = _("Single sign-on")

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from tenantlink.accounts.flows import signin_completing, standing_changed
        from tenantlink.sso import flows, microsoft, requirement
        from tenantlink.sso.views import signin as signin_views

        signin_completing.connect(requirement.refusal_at_signin, dispatch_uid="tenantlink.sso.requirement")
        standing_changed.connect(flows.drop_connections_not_its_own, dispatch_uid="tenantlink.sso.standing_changed")
        user_logged_out.connect(signin_views.note_sign_out, dispatch_uid="tenantlink.sso.signed_out")
        # Said once per process, for the operator; the pages only say "not configured".
        if settings.ENTRA_CONFIGURATION_PROBLEM:
            logging.getLogger(__name__).warning(
                "Single sign-on with Microsoft is off: %s", settings.ENTRA_CONFIGURATION_PROBLEM
            )
        elif problem := microsoft.environment_problem():
            microsoft.ENVIRONMENT_PROBLEM = problem
            logging.getLogger(__name__).warning("Single sign-on with Microsoft is off: %s", problem)
