import contextlib
import datetime
import hashlib
import hmac
import secrets
import time
import zoneinfo

import pyotp
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession, BaseSessionManager
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from tenantlink.accounts.validators import UsernameValidator, not_reserved
from tenantlink.lib import crypto
from tenantlink.lib.queries import Prepared, update
from tenantlink.lib.validators import known_time_zone, plain_text

USERNAME_TAKEN = _("This username is taken. Choose another one.")
LAST_ADMINISTRATOR = _(
    "This is the company's last administrator: make someone else an administrator first, "
    "else nobody could manage the company's users."
)


# A person's status as the user list and the user's page show it (User.standing): its words, its
# badge, and who has it, as a filter (the same rules, in the database).
_UNUSABLE = models.Q(password__startswith=UNUSABLE_PASSWORD_PREFIX)
_ACTIVE = models.Q(is_active=True)
STANDINGS = {
    "active": (_("Active"), "ok", _ACTIVE & ~_UNUSABLE & models.Q(totp__isnull=False)),
    "no_second_factor": (_("No second factor yet"), "warn", _ACTIVE & ~_UNUSABLE & models.Q(totp__isnull=True)),
    "invited": (_("Invited"), "warn", _ACTIVE & _UNUSABLE & models.Q(last_login__isnull=True)),
    "password_off": (_("Password sign-in off"), "warn", _ACTIVE & _UNUSABLE & models.Q(last_login__isnull=False)),
    "deactivated": (_("Deactivated"), "bad", models.Q(is_active=False)),
}


class UserQuerySet(models.QuerySet):
    def of_company(self, company):
        """The company's own people: not operator staff, whom the operator admin may give a
        company too (they are not the company's to see or manage)."""
        return self.filter(company=company, is_staff=False, is_superuser=False)

    def of_standing(self, standing):
        """The people whose User.standing is that of STANDINGS[`standing`]."""
        return self.filter(STANDINGS[standing][2])


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # Usernames are unique regardless of case, so "Ada" and "ada" are one account. Every
        # password sign-in asks: the statement is composed once.
        user = _by_username.one(username=username)
        if user is None:
            raise self.model.DoesNotExist(f"No user {username!r}.")
        return user

    def with_username(self, username):
        """The user of `username` in any case, found through the index of the case-insensitive
        unique constraint (lower(username)): `username__iexact` compares UPPER() on PostgreSQL,
        which no index serves, so every sign-in would read the whole user table."""
        return self.alias(username_lower=Lower("username")).filter(username_lower=Lower(Value(username)))

    def create_user(self, username, password=None, **fields):
        user = self.model(username=username, email=self.normalize_email(fields.pop("email", "")), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, username, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(username, password, **fields)


_by_username = Prepared(lambda username: User.objects.with_username(username), username=str)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        ADMINISTRATOR = "administrator", _("Administrator")
        MEMBER = "member", _("Member")

    username = models.CharField(
        _("username"),
        max_length=150,
        unique=True,  # Django requires it; the constraint in Meta adds "regardless of case"
        error_messages={"unique": USERNAME_TAKEN},
        validators=[UsernameValidator(), not_reserved],
        help_text=_("Letters a–z, digits and @/./+/-/_ only. Unique regardless of upper or lower case."),
    )
    display_name = models.CharField(_("display name"), max_length=200, blank=True, validators=[plain_text])
    email = models.EmailField(_("email address"), blank=True)
    # Operator staff have no company; every customer user belongs to exactly one.
    company = models.ForeignKey(
        "companies.Company", models.PROTECT, null=True, blank=True, related_name="users", verbose_name=_("company")
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("operator staff"), default=False)
    must_change_password = models.BooleanField(_("must change password at next sign-in"), default=False)
    # Empty: the portal's default, as is a stored zone that the time-zone database stops knowing
    # (local_zone); old names it still knows (Europe/Kiev) stay valid.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[known_time_zone])
    # Empty: the sign-in page's choice or the browser's. db_default, so that code from before
    # this field (and plain INSERTs) can still add users.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, default="", db_default=""
    )
    # The language the user last signed in with (the sign-in page's choice or the browser's), for
    # emails to a user without a choice of their own: not the language of whoever's request sends them.
    last_language = models.CharField(
        _("language last used"), max_length=8, blank=True, default="", db_default="", editable=False
    )
    # Part of every session's check value: raising it ends all of the user's sessions at once.
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                Lower("username"), name="accounts_user_username_ci_unique", violation_error_message=USERNAME_TAKEN
            )
        ]

    def __str__(self):
        return self.username

    def clean_fields(self, exclude=None):
        """Only operator staff have no company: a customer user without one could still sign in,
        and no administrator would see them. And operator staff are no company's administrator.
        Checked here rather than in clean(), which has no `exclude`: a form without the company
        or role field (My Profile's settings) cannot correct it."""
        errors = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if (
            "company" not in (exclude or ())
            and "company" not in errors
            and self.company_id is None
            and not self.is_staff
        ):
            errors["company"] = [
                ValidationError(_("Choose a company. Only operator staff belong to none."), code="company_required")
            ]
        if (
            "role" not in (exclude or ())
            and "role" not in errors
            and self.role == self.Role.ADMINISTRATOR
            and self.is_operator
        ):
            errors["role"] = [  # is_company_admin would not count it: say so rather than store it
                ValidationError(
                    _("Operator staff are no company's administrator: choose Member, or take away the staff rights."),
                    code="staff_not_administrator",
                )
            ]
        if errors:
            raise ValidationError(errors)

    def get_full_name(self):
        return self.display_name or self.username

    def get_short_name(self):
        return self.get_full_name()

    def _get_session_auth_hash(self, secret=None):
        # Django binds sessions to the password hash; the generation adds "end every session"
        # without a password change (deactivation, a second-factor reset). A session opened with
        # Microsoft also ends with its connection: sso.middleware checks that at each request.
        return salted_hmac(
            "tenantlink.accounts.User.session_auth_hash",
            f"{self.password}:{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def local_zone(self):
        """The user's time zone, or the portal's default (also for a zone that no longer exists)."""
        if self.time_zone:
            with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
                return zoneinfo.ZoneInfo(self.time_zone)
        return zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)

    @contextlib.contextmanager
    def addressed(self):
        """Write to this user (an email) in their language and time zone, whoever's request it is:
        their chosen language, else the one they last signed in with, else the portal's default.
        Never the language of the request that sends it, which is someone else's (an administrator
        disconnecting them, the leaver check's process)."""
        language = self.language or self.last_language or settings.LANGUAGE_CODE
        with translation.override(language), timezone.override(self.local_zone()):
            yield

    def deactivate(self):
        """Refuse every sign-in and end every session (so that a reactivation does not bring an
        old session back). One conditional UPDATE: False when the user was already deactivated,
        say by someone else at the same moment, so that it is done and recorded once."""
        changed = User.objects.filter(pk=self.pk, is_active=True).update(
            is_active=False, session_generation=models.F("session_generation") + 1
        )
        self.refresh_from_db(fields=["is_active", "session_generation"])
        return bool(changed)

    def reactivate(self):
        """One conditional UPDATE: False when the user was already active (say, reactivated by
        someone else at the same moment), so that it is recorded once."""
        changed = User.objects.filter(pk=self.pk, is_active=False).update(is_active=True)
        self.is_active = True
        return bool(changed)

    def replace_password(self, read, raw_password, **columns):
        """Set `raw_password` (and `columns`), only while the stored hash is still `read`, the one
        this request saw: of two requests changing it at the same moment one wins, and the other
        gets False. Only these columns are written, never the rest of a row read earlier (an
        administrator's deactivation or "sign out everywhere" made meanwhile stays)."""
        self.set_password(raw_password)
        for name, value in columns.items():
            setattr(self, name, value)
        return bool(User.objects.filter(pk=self.pk, password=read).update(password=self.password, **columns))

    def change_details(self, **values):
        """Store `values` (display name, email address, role: what a company administrator edits)
        where they differ from this object's, writing only those columns, never the rest of a row
        read earlier (a deactivation or "sign out everywhere" made meanwhile stays). {name: (old,
        new)} of what changed, empty when nothing did. The company's last active administrator is
        not made a member (ValidationError on "role"). Read this object under a lock on its row:
        the old values are then the ones stored."""
        changes = {name: (getattr(self, name), new) for name, new in values.items() if getattr(self, name) != new}
        if "role" in changes and self.is_company_admin and not self._other_administrators().exists():
            raise ValidationError({"role": ValidationError(LAST_ADMINISTRATOR, code="last_administrator")})
        if changes:
            User.objects.filter(pk=self.pk).update(**{name: new for name, (_old, new) in changes.items()})
            for name, (_old, new) in changes.items():
                setattr(self, name, new)
        return changes

    def _other_administrators(self):
        return (
            User.objects.of_company(self.company_id)
            .filter(role=self.Role.ADMINISTRATOR, is_active=True)
            .exclude(pk=self.pk)
        )

    def end_all_sessions(self):
        User.objects.filter(pk=self.pk).update(session_generation=models.F("session_generation") + 1)
        self.refresh_from_db(fields=["session_generation"])

    @property
    def is_operator(self):
        """Operator staff or a superuser: the operator admin's people, never a company's (see
        User.objects.of_company), and never signed in or acted on through a customer's tenant."""
        return self.is_staff or self.is_superuser

    @property
    def is_company_admin(self):
        """Administrator of a customer company. Never operator staff, whom the operator admin may
        also give a company and a role: their rights there are the operator admin's, and a staff
        member who may change users could otherwise make themselves any company's administrator."""
        return (
            self.is_active
            and self.company_id is not None
            and self.role == self.Role.ADMINISTRATOR
            and not self.is_operator
        )

    @property
    def has_second_factor(self):
        return hasattr(self, "totp")

    @property
    def is_invited(self):
        """Invited, the invitation not accepted yet: no password of their own, never signed in. Not
        someone whose password sign-in operator staff turned off (they have signed in)."""
        return not self.has_usable_password() and self.last_login is None

    @property
    def awaits_invitation(self):
        """Invited, and not signed in yet: an invitation may be sent again (which ends the earlier
        links by changing the password hash, so also every session: there is none yet)."""
        return self.is_active and bool(self.email) and self.is_invited

    @property
    def standing(self):
        """The account's status as the user list and the user's page show it: (words, badge)."""
        if not self.is_active:
            key = "deactivated"
        elif self.is_invited:
            key = "invited"
        elif not self.has_usable_password():
            key = "password_off"
        else:
            key = "active" if self.has_second_factor else "no_second_factor"
        return STANDINGS[key][:2]

    def reset_second_factor(self):
        """Remove the authenticator and recovery codes, and end every session: usually the phone
        was lost or stolen, and whoever holds it must not stay signed in. The next sign-in walks
        through enrolment. False, and nobody signed out, when there was nothing to remove: two
        resets at the same moment (the user's row is locked) are one reset and one that finds it
        done, and a reset sent again from an old tab does not end the enrolment begun since."""
        with transaction.atomic():
            # NO KEY: audit events written about the user meanwhile (a foreign key) need not wait.
            User.objects.select_for_update(no_key=True).filter(pk=self.pk).exists()
            removed = TOTPDevice.objects.filter(user=self).delete()[0] + self.recovery_codes.all().delete()[0]
            # Forget the cached reverse relation, which would still say the device exists.
            self._state.fields_cache.pop("totp", None)
            if removed:
                self.end_all_sessions()
        return removed > 0


def record_last_login(sender, user, **kwargs):
    """Django's update_last_login (a user_logged_in receiver) with an UPDATE composed once: it
    runs at every sign-in. A user deleted meanwhile is not written (save() would raise)."""
    user.last_login = timezone.now()
    update(user, "last_login")


class TOTPDevice(models.Model):
    """A confirmed authenticator app. The seed is encrypted at rest; the last accepted time-step
    is stored so that a code, once accepted, can never be accepted again (replay protection)."""

    STEP = 30
    DIGITS = 6

    user = models.OneToOneField(User, models.CASCADE, related_name="totp")
    encrypted_seed = models.TextField()
    last_used_step = models.BigIntegerField(default=0)
    confirmed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return _("Authenticator of %(user)s") % {"user": self.user}

    @staticmethod
    def new_seed():
        return pyotp.random_base32()

    @staticmethod
    def provisioning_uri(seed, user):
        return pyotp.TOTP(seed).provisioning_uri(name=user.username, issuer_name=settings.TOTP_ISSUER)

    @staticmethod
    def current_step(at=None):
        return int((at if at is not None else time.time()) // TOTPDevice.STEP)

    @staticmethod
    def looks_like(code):
        """Whether `code` has a code's shape: DIGITS digits, spaces aside."""
        code = "".join(code.split())
        # isascii: other scripts' digits pass isdigit() but are not what any authenticator shows.
        return len(code) == TOTPDevice.DIGITS and code.isascii() and code.isdigit()

    @staticmethod
    def matching_step(seed, code, after_step=0, at=None):
        """The time-step (now ± one, for clock drift) whose code equals `code`, or None.
        Steps at or before `after_step` are never matched."""
        if not TOTPDevice.looks_like(code):
            return None
        code = "".join(code.split())
        totp = pyotp.TOTP(seed)
        now = TOTPDevice.current_step(at)
        for step in (now - 1, now, now + 1):
            if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def was_used(self, code, at=None):
        """Whether `code` is right, but of a time-step already used to sign in: the same form sent
        twice, or from several tabs at once (read afresh: another request may have used it)."""
        step = self.matching_step(self.seed, code, at=at)
        return step is not None and TOTPDevice.objects.filter(pk=self.pk, last_used_step__gte=step).exists()

    @staticmethod
    def _confirmed(seed, step):
        """The columns of an authenticator whose code of `step` has just confirmed it."""
        return {"encrypted_seed": crypto.encrypt(seed), "last_used_step": step, "confirmed_at": timezone.now()}

    @classmethod
    def enrol(cls, user, seed, step, first=False):
        """Store `seed` as the user's authenticator, replacing any earlier one; `step` is the
        time-step of the code that confirmed it, which therefore cannot be used to sign in.
        `first`: only while the user has none (a password alone never replaces one), else None,
        also when another request stored one a moment ago."""
        fields = cls._confirmed(seed, step)
        if first:
            device, created = cls.objects.get_or_create(user=user, defaults=fields)
            return device if created else None
        return cls.objects.update_or_create(user=user, defaults=fields)[0]

    @classmethod
    def replace(cls, user, seed, step, since=None):
        """Move the user to a new authenticator (`seed`, confirmed at `step`): False when the one
        they have was set up after `since` (a time.time(): in another browser, while they were
        setting up this one), so that a set-up begun earlier does not silently undo it."""
        devices = cls.objects.filter(user=user)
        if since is not None:
            devices = devices.filter(confirmed_at__lte=datetime.datetime.fromtimestamp(since, datetime.UTC))
        return bool(devices.update(**cls._confirmed(seed, step)))

    @property
    def seed(self):
        return crypto.decrypt(self.encrypted_seed)

    def verify(self, code, at=None):
        step = self.matching_step(self.seed, code, after_step=self.last_used_step, at=at)
        if step is None:
            return False
        # Conditional update: of two requests racing with the same code only one wins.
        won = TOTPDevice.objects.filter(pk=self.pk, last_used_step__lt=step).update(last_used_step=step)
        if won:
            self.last_used_step = step
        return bool(won)


class RecoveryCode(models.Model):
    """Single-use codes for when the authenticator is lost. Stored as SHA-256: each code has
    about 59 bits of randomness, so a slow password hash would add cost but no safety."""

    COUNT = 10
    ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes

    user = models.ForeignKey(User, models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="accounts_recoverycode_unique")]

    def __str__(self):
        if self.used_at:
            return _("Recovery code of %(user)s (used)") % {"user": self.user}
        return _("Recovery code of %(user)s (unused)") % {"user": self.user}

    @staticmethod
    def _hash(code):
        normalized = "".join(ch for ch in code.lower() if ch.isalnum())
        return hashlib.sha256(normalized.encode()).hexdigest()

    @classmethod
    def replace_for(cls, user):
        """Replace the user's recovery codes with new ones; return them in plain text, once."""
        codes = set()
        while len(codes) < cls.COUNT:
            raw = "".join(secrets.choice(cls.ALPHABET) for _ in range(12))
            codes.add(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        with transaction.atomic():
            cls.objects.filter(user=user).delete()
            cls.objects.bulk_create(cls(user=user, code_hash=cls._hash(code)) for code in codes)
        return sorted(codes)

    @classmethod
    def looks_like(cls, code):
        """Whether `code` has a recovery code's shape: 12 of ALPHABET, in any case, dashes and spaces aside."""
        normalized = "".join(ch for ch in code.lower() if ch.isalnum())
        return len(normalized) == 12 and all(ch in cls.ALPHABET for ch in normalized)

    @classmethod
    def use(cls, user, code):
        """Spend one recovery code; True only the first time a valid code is used."""
        if not any(ch.isalnum() for ch in code):
            return False
        spent = cls.objects.filter(user=user, code_hash=cls._hash(code), used_at__isnull=True).update(
            used_at=timezone.now()
        )
        return bool(spent)

    @classmethod
    def was_used(cls, user, code):
        """Whether `code` is one of the user's recovery codes, used already."""
        return cls.objects.filter(user=user, code_hash=cls._hash(code), used_at__isnull=False).exists()

    @classmethod
    def remaining(cls, user):
        return cls.objects.filter(user=user, used_at__isnull=True).count()


class Throttle(models.Model):
    """Sign-in attempts counted per key: "user:<id>", "name:<digest of a name nobody has>", or
    "address:<IPv4 address>" / "address:<IPv6 /64>" (accounts/throttle.py).

    Kept in the database rather than in process memory so that every portal process behind a
    load balancer sees the same counts."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.key


class SessionManager(BaseSessionManager):
    def get_queryset(self):
        return super().get_queryset().select_related("user__company")


class Session(AbstractBaseSession):
    """Django's database session, plus the signed-in user's id in a column of its own: a request
    reads its session, its user and the user's company in one query (tenantlink.accounts.sessions),
    and a deleted user's sessions go with them."""

    user = models.ForeignKey(User, models.CASCADE, null=True, blank=True, related_name="+")

    objects = SessionManager()

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"

    @classmethod
    def get_session_store_class(cls):
        from tenantlink.accounts.sessions import SessionStore

        return SessionStore
