from django.apps import AppConfig


class Config(AppConfig):
    name = "tenantlink.accounts"
    label = "accounts"
