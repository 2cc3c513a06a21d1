from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class Config(AppConfig):
    name = "tenantlink.companies"
    label = "companies"
    verbose_name = _("Companies")
