from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
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
        check_email_backend()


def check_email_backend():
    """The class EMAIL_BACKEND names, found at start rather than at the first invitation (which
    would then only log that it was not sent). The settings check its module only: importing a
    backend there would import the settings it is being read for."""
    try:
        backend = import_string(settings.EMAIL_BACKEND)
    except ImportError:
        backend = None
    # Django asks only for send_messages (a backend need not subclass its base): not a module,
    # nor a class of something else.
    if not (isinstance(backend, type) and callable(getattr(backend, "send_messages", None))):
        raise ImproperlyConfigured(
            f"EMAIL_BACKEND names no email backend class that exists: {settings.EMAIL_BACKEND!r} "
            "(such as django.core.mail.backends.smtp.EmailBackend)."
        )
