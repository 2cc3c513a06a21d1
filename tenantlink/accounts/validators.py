"""Rules for usernames and passwords beyond Django's own (settings.AUTH_PASSWORD_VALIDATORS)."""

from django.contrib.auth import password_validation
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tenantlink.audit import labels

# What the sign-in form takes: a longer password could be set, but never used to sign in.
MAX_PASSWORD_LENGTH = 4096


# Names the audit log shows as a process, not a person: no user may have one, or an event of
# theirs would read, once they are deleted, as the process's.
RESERVED_USERNAMES = set(labels.ACTORS)


class UsernameValidator(ASCIIUsernameValidator):
    """Django's rule (ASCII letters, digits and @.+-_), said as the field's help says it: Django's
    own words ("unaccented lowercase a-z and uppercase A-Z letters") read as a second rule."""

    message = gettext_lazy("A username may have only letters a–z, digits and @/./+/-/_. Choose another.")


def not_reserved(username):
    if username.lower() in RESERVED_USERNAMES:
        raise ValidationError(_("This username is reserved. Choose another."), code="reserved")


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    """Django's, with the message in this project's catalogues: Django's own Finnish catalogue
    has no translation of it, and a Finnish page showed it in English."""

    def get_error_message(self):
        return ngettext(
            "This password is too short: it must have at least %(min_length)d character.",
            "This password is too short: it must have at least %(min_length)d characters.",
            self.min_length,
        ) % {"min_length": self.min_length}


class SignInFormValidator:
    """What the sign-in form can take: at most MAX_PASSWORD_LENGTH characters, each one as it was
    typed. A byte that is not UTF-8 (a client that sent another encoding) is read as U+FFFD, and
    the password stored would not be the one the person believes they chose."""

    def validate(self, password, user=None):
        if "\ufffd" in password:
            raise ValidationError(
                _("This password has a character the portal could not read. Type it again, or choose another."),
                code="password_unreadable",
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                _("This password is too long: it may have at most %(max)d characters."),
                code="password_too_long",
                params={"max": MAX_PASSWORD_LENGTH},
            )

    def get_help_text(self):
        return _("Your password can have at most %(max)d characters.") % {"max": MAX_PASSWORD_LENGTH}


class VarietyValidator:
    """Refuses a password of a few characters repeated ("aaaaaaaaaaaa", "abababababab"): long
    enough for the length rule, guessed at once (NIST SP 800-63B: repetitive characters)."""

    MIN_DISTINCT = 5

    def validate(self, password, user=None):
        if len(set(password.casefold())) < self.MIN_DISTINCT:
            raise ValidationError(
                _("This password has too few different characters: use at least %(count)d."),
                code="password_too_repetitive",
                params={"count": self.MIN_DISTINCT},
            )

    def get_help_text(self):
        return _("Your password must use at least %(count)d different characters.") % {"count": self.MIN_DISTINCT}
