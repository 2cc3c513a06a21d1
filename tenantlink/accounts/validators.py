"""Password rules beyond Django's own (settings.AUTH_PASSWORD_VALIDATORS)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# What the sign-in form takes: a longer password could be set, but never used to sign in.
MAX_PASSWORD_LENGTH = 4096


class MaximumLengthValidator:
    def validate(self, password, user=None):
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                _("This password is too long: it may have at most %(max)d characters."),
                code="password_too_long",
                params={"max": MAX_PASSWORD_LENGTH},
            )

    def get_help_text(self):
        return _("Your password can have at most %(max)d characters.") % {"max": MAX_PASSWORD_LENGTH}
