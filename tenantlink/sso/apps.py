from django.apps import AppConfig


class Config(AppConfig):
    name = "tenantlink.sso"
    label = "sso"
    verbose_name = "Single sign-on"
