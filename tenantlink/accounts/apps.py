from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class Config(AppConfig):
    name = "tenantlink.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in

        from tenantlink.accounts.models import record_last_login

        # Django's receiver saves the user with an UPDATE the ORM composes anew at every sign-in.
        # Ours takes its dispatch_uid, so Django's documented way to turn it off still works.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        user_logged_in.connect(record_last_login, dispatch_uid="update_last_login")
