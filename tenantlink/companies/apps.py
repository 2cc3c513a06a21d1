from django.apps import AppConfig


class Config(AppConfig):
    name = "tenantlink.companies"
    label = "companies"
