from django.apps import AppConfig


class Config(AppConfig):
    name = "tenantlink.audit"
    label = "audit"
