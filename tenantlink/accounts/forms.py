import functools
import pathlib
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from tenantlink.accounts import flows, throttle
from tenantlink.accounts.models import USERNAME_TAKEN, RecoveryCode, TOTPDevice, User
from tenantlink.accounts.validators import MAX_PASSWORD_LENGTH
from tenantlink.audit import labels
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib.validators import is_time_zone

# One message for every failed sign-in: wrong username, wrong password, deactivated account or a
# paused account all read the same, so the page never tells an attacker which one it was.
SIGNIN_FAILED = _(
    "We could not sign you in with these details. Check them and try again. "
    "After repeated failures, sign-in is paused for a few minutes."
)
TOO_MANY_TAKEN_NAMES = _(
    "Your company has entered many usernames that are taken today, so no more are checked for now. "
    "Try again tomorrow, or ask the operator of the portal."
)
CODE_FAILED = _(
    "That code was not accepted. Enter the current code from your authenticator app, or an unused "
    "recovery code. After repeated failures, sign-in is paused for a few minutes."
)
CODE_USED = _(
    "That code, or a newer one, has been used already: each code counts once. Enter the next code your app shows."
)
RECOVERY_CODE_USED = _(
    "That recovery code has been used already: each one works once. Enter the code your app shows, or another "
    "recovery code."
)
NOT_A_CODE = _("That is not a code. Enter the 6 digits your authenticator app shows, or a recovery code.")
NOT_AN_APP_CODE = _("That is not a code. Enter the 6 digits your authenticator app shows.")


class CodeInput(forms.TextInput):
    """A one-time code's input, empty again when the form comes back: a refused code left in it
    would have the next one typed on after it."""

    def format_value(self, value):
        return None


class SignInForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=MAX_PASSWORD_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request, *args, **kwargs):
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)
        if self.initial.get("username") or self.data.get("username"):  # filled in already: on to the password
            del self.fields["username"].widget.attrs["autofocus"]
            self.fields["password"].widget.attrs["autofocus"] = True

    def clean(self):
        username = self.cleaned_data.get("username", "")
        password = self.cleaned_data.get("password", "")
        if not username or not password:
            return self.cleaned_data
        # Looked up only to count attempts against the right account and to audit; the answer
        # is the same whether or not it exists.
        # Usernames are ASCII: a name that is not finds nobody, on every database alike (PostgreSQL's
        # lower() would read the Kelvin sign as "k", and the throttle keys it as nobody's).
        known = User.objects.with_username(username).select_related("totp").first() if username.isascii() else None
        user = None
        counted = throttle.begin_attempt(self.request, username, known)
        if counted and known is not None:
            # The account found above, checked directly: one password hash computed, and the
            # account not read a second time as authenticate() would.
            if known.check_password(password) and known.is_active:
                user = known
        elif counted:
            make_password(password)  # the same work as a real check, so timing does not tell
        # Not counted: the name (known or not, alike) or the address is paused, and the attempt is
        # refused without hashing, so a flood of guesses at a paused name costs no hashing.
        if user is None and counted:
            throttle.attempt_failed(self.request, username, known)
        if user is None:
            AuditEvent.objects.record(
                Action.SIGNIN_FAILED,
                request=self.request,
                target=known,
                # A name that is not a username is often a password typed into the wrong field.
                target_label="" if known else labels.UNKNOWN_USERNAME,
                outcome=Outcome.FAILURE,
                step="password",
            )
            raise ValidationError(SIGNIN_FAILED, code="invalid")
        throttle.attempt_succeeded(self.request, user)
        self.user = user
        return self.cleaned_data


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "class": "code"}),
    )

    def __init__(self, request, user, *args, **kwargs):
        self.request = request
        self.user = user
        self.used_recovery_code = False
        super().__init__(*args, **kwargs)

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        user = self.user
        if not (TOTPDevice.looks_like(code) or RecoveryCode.looks_like(code)):
            # Neither shape (a typo, letters in a code): said so, and no guess counted against the account.
            raise ValidationError(NOT_A_CODE, code="not_a_code")
        reused = None

        def check():
            nonlocal reused
            if user.totp.verify(code):
                return True
            self.used_recovery_code = RecoveryCode.use(user, code)
            if self.used_recovery_code:
                return True
            # A right code used a moment ago (the form sent twice, or from several tabs at once) is
            # refused, but it is no guess: it must not pause the account it has just signed in.
            if user.totp.was_used(code):
                reused = CODE_USED
            elif RecoveryCode.was_used(user, code):
                reused = RECOVERY_CODE_USED
            return throttle.NOT_A_GUESS if reused else False

        # This is the second step: the password was right. Codes wrong until the account pauses
        # tell that someone else probably knows it, and its person is told.
        outcome = throttle.checked(self.request, user, check, when_wrong=lambda: flows.wrong_code(self.request, user))
        if outcome is not True:
            used = outcome is throttle.NOT_A_GUESS
            AuditEvent.objects.record(
                Action.SIGNIN_FAILED,
                request=self.request,
                target=user,
                outcome=Outcome.FAILURE,
                step="second_factor",
                **({"reason": "code_used"} if used else {}),
            )
            raise (
                ValidationError(reused or CODE_USED, code="used")
                if used
                else ValidationError(CODE_FAILED, code="invalid")
            )
        if self.used_recovery_code:
            AuditEvent.objects.record(Action.RECOVERY_CODE_USED, request=self.request, actor=user, target=user)
        return code


class ConfirmCodeForm(forms.Form):
    """Confirms a new authenticator: the code must match the seed being enrolled."""

    code = forms.CharField(
        label=_("Code from the app"),
        max_length=12,
        widget=CodeInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "class": "code"}
        ),
    )

    def __init__(self, seed, *args, **kwargs):
        self.seed = seed
        self.step = None
        super().__init__(*args, **kwargs)

    def clean_code(self):
        code = self.cleaned_data["code"]
        if not TOTPDevice.looks_like(code):
            raise ValidationError(NOT_AN_APP_CODE, code="not_a_code")
        self.step = TOTPDevice.matching_step(self.seed, code)
        if self.step is None:
            raise ValidationError(
                _(
                    "That code does not match. Check that the app shows the account you just added and enter its current code."
                ),
                code="mismatch",
            )
        return code


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    def __init__(self, request, *args, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self):
        password = self.cleaned_data["password"]
        user = self.request.user
        if not throttle.checked(self.request, user, lambda: user.check_password(password)):
            AuditEvent.objects.record(
                Action.REAUTHENTICATED, request=self.request, target=user, outcome=Outcome.FAILURE
            )
            raise ValidationError(
                _("The password is not correct, or there have been too many attempts."), code="invalid"
            )
        return password


class RulesOnTheNewPassword:
    """For Django's forms that set a password: the password rules' errors go beside the new
    password, where the focus then starts, not beside its confirmation as Django puts them."""

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password1")
        return forms.Form.clean(self)


class NewPasswordForm(RulesOnTheNewPassword, SetPasswordForm):
    """Choosing a password (an invitation)."""


class ChangePasswordForm(RulesOnTheNewPassword, PasswordChangeForm):
    """Django's form (current password required), with wrong guesses counted by the throttle.
    `just_typed`: the current password is the initial one an administrator set, typed moments ago
    at a full sign-in (password and second factor): not asked for again."""

    def __init__(self, request, *args, just_typed=False, **kwargs):
        self.request = request
        super().__init__(request.user, *args, **kwargs)
        if just_typed:
            del self.fields["old_password"]
            self.fields["new_password1"].widget.attrs["autofocus"] = True

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not throttle.checked(self.request, self.user, lambda: self.user.check_password(old_password)):
            raise ValidationError(
                _("Your old password was entered incorrectly, or there have been too many attempts. Please try again."),
                code="password_incorrect",
            )
        return old_password

    def clean(self):
        data = super().clean()
        # The current password is right (clean_old_password), so a new one equal to it changes nothing.
        new = data.get("new_password1")
        same = new == data.get("old_password") if "old_password" in self.fields else self.user.check_password(new)
        if new and same:
            self.add_error(
                "new_password1",
                ValidationError(
                    _("The new password is the same as your current one. Choose a different one."),
                    code="password_unchanged",
                ),
            )
        return data

    def save(self, commit=True):
        """The new password, unless the password changed since this request read it (the form
        sent from two tabs at once: the first one's change stands, and the second is told): the
        user then, else None (User.replace_password)."""
        changed = self.user.replace_password(
            self.user.password, self.cleaned_data["new_password1"], must_change_password=False
        )
        return self.user if changed else None


class PersonForm(forms.ModelForm):
    """What an administrator enters about a user of their company, the same rules whether new or
    changed: the model's (plain text, lengths, a valid address) and a display name required."""

    class Meta:
        model = User
        fields = ["display_name", "email", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["display_name"].required = True


class CompanyUserForm(PersonForm):
    """An administrator creates a user of their own company."""

    HOW_PASSWORD = "password"
    HOW_INVITE = "invite"

    how = forms.ChoiceField(
        label=_("How will the user get in?"),
        choices=[
            (HOW_INVITE, _("Send an invitation link by email")),
            (HOW_PASSWORD, _("Set an initial password (the user must change it at first sign-in)")),
        ],
        widget=forms.RadioSelect,
        initial=HOW_INVITE,
    )
    initial_password = forms.CharField(
        label=_("Initial password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    # Kept as the language they last used (User.last_language), not as a choice of their own: their
    # first sign-in replaces it with the language they use, and they may choose one in Settings.
    email_language = forms.ChoiceField(
        label=_("Language of their emails"),
        choices=settings.LANGUAGES,
        required=False,  # a form without it (an older page still open) writes in the administrator's
        help_text=_(
            "The invitation is written in this language. Once they sign in, their emails follow the language they use."
        ),
    )

    field_order = ["username", "display_name", "email", "email_language", "role", "how", "initial_password"]

    class Meta(PersonForm.Meta):
        fields = ["username", *PersonForm.Meta.fields]

    def __init__(self, company, *args, **kwargs):
        self.company = company
        super().__init__(*args, **kwargs)
        # The administrator's own language: the people they add likely share it.
        self.fields["email_language"].initial = translation.get_language()

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if not throttle.may_look_up_name(self.company):
            raise ValidationError(TOO_MANY_TAKEN_NAMES, code="throttled")
        if User.objects.with_username(username).exists():
            raise self.username_taken()
        throttle.name_was_free(self.company)
        return username

    @staticmethod
    def username_taken():
        return ValidationError(USERNAME_TAKEN, code="taken")

    def clean(self):
        data = super().clean()
        how = data.get("how")
        if how == self.HOW_INVITE and not data.get("email") and "email" not in self.errors:  # not also "invalid"
            self.add_error("email", _("An invitation needs an email address."))
        if how == self.HOW_PASSWORD:
            password = data.get("initial_password")
            if not password:
                self.add_error("initial_password", _("Enter an initial password."))
            else:
                candidate = User(
                    username=data.get("username", ""),
                    email=data.get("email", ""),
                    display_name=data.get("display_name", ""),
                )
                try:
                    password_validation.validate_password(password, candidate)
                except ValidationError as error:
                    self.add_error("initial_password", error)
        return data

    def save(self, commit=True):
        user = super().save(commit=False)
        user.company = self.company
        # Until their first sign-in says otherwise, write to them (the invitation) in the language chosen.
        user.last_language = self.cleaned_data.get("email_language") or translation.get_language() or ""
        if self.cleaned_data["how"] == self.HOW_PASSWORD:
            user.set_password(self.cleaned_data["initial_password"])
            user.must_change_password = True
        else:
            user.set_unusable_password()
        if commit:
            user.save()
        return user


class CompanyUserEditForm(PersonForm):
    """An administrator changes a user of their own company: display name, email address, role.
    Not the username (people sign in with it, and the audit log names them by it), nor a
    password. Not their own role either: another administrator changes that, so that nobody
    leaves the company without an administrator by a slip of their own."""

    def __init__(self, administrator, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # What the page showed goes back with the form, so that only what was changed on it is
            # saved: an older tab must not undo another's change of a field it left alone.
            field.show_hidden_initial = True
        role = self.fields["role"]
        if self.instance.pk == administrator.pk:
            role.disabled = True  # shown, and its stored value kept whatever a request sends
            role.help_text = _("You cannot change your own role. Another administrator can.")
        else:
            role.help_text = _(
                "Administrators manage the company's users and single sign-on and read its audit log. "
                "A change takes effect at once, also where the user is signed in now."
            )
        if self.instance.awaits_invitation:
            # The invitation's link is made from the address too (Django's token): a new address
            # ends the links sent to the old one.
            self.fields["email"].help_text = _(
                "They have not accepted their invitation yet. A new address ends the links sent to the old one; "
                "“Send invitation again” on their page then sends one to the new address."
            )

    def changes(self):
        """{field: value} to save: the fields changed on the page, against what it showed; every
        field of a client that did not send what it showed."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name in self.changed_data or self.add_initial_prefix(name) not in self.data
        }

    def clean_email(self):
        email = self.cleaned_data["email"]
        # Not signed in yet and no password of their own: an invitation is their only way in.
        if not email and self.instance.is_invited:
            raise ValidationError(_("An invitation needs an email address."), code="required")
        if email.lower() == self.instance.email.lower():
            return self.instance.email  # the same mailbox: not a new address (it would end invitation links)
        return email


REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


@functools.cache
def canonical_time_zones():
    """The zones of the time-zone database's zone.tab: one name for each region of a country, its
    current one. The database also answers to old names, kept so that stored values go on working
    (Europe/Kiev for Europe/Kyiv, Asia/Calcutta for Asia/Kolkata, US/Pacific): zone.tab lists none
    of them. A database without zone.tab gives every Region/City name."""
    available = zoneinfo.available_timezones()
    for directory in zoneinfo.TZPATH:
        zone_tab = pathlib.Path(directory, "zone.tab")
        if zone_tab.is_file():
            rows = [line.split("\t") for line in zone_tab.read_text(encoding="utf-8").splitlines()]
            return tuple(sorted({row[2] for row in rows if len(row) > 2 and not row[0].startswith("#")} & available))
    return tuple(sorted(zone for zone in available if zone.split("/")[0] in REGIONS))


def time_zone_choices(current=""):
    """The portal's default (named), UTC and the canonical zones; and `current`, a user's stored
    zone, also when it is an old name, so that it shows selected and the form saves unchanged."""
    zones = canonical_time_zones()
    if current and current != "UTC" and current not in zones and is_time_zone(current):
        zones = sorted([*zones, current])
    default = _("Portal default (%(zone)s)") % {"zone": settings.DEFAULT_USER_TIME_ZONE.replace("_", " ")}
    return [("", default), ("UTC", "UTC"), *((zone, zone.replace("_", " ")) for zone in zones)]


class PreferencesForm(forms.ModelForm):
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("The browser's language")), *settings.LANGUAGES],
        required=False,
        help_text=_("The language of the portal's pages and of the emails it sends you."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,  # the choices depend on the user's own zone: __init__
        help_text=_("Dates and times in the portal are shown in this time zone."),
    )

    class Meta:
        model = User
        fields = ["language", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices(self.instance.time_zone)

    def save(self, commit=True):
        # Only these columns, not the whole row read at the start of the request: a deactivation
        # or "sign out everywhere" made meanwhile would be written back as it was.
        self.instance.save(update_fields=self.Meta.fields)
        return self.instance
