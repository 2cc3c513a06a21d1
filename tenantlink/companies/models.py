import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenantlink.lib.queries import Prepared
from tenantlink.lib.validators import plain_text


class Company(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True, validators=[plain_text])
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # The administrator's choice "Require Microsoft sign-in for members" (tenantlink.sso.requirement
    # decides when it applies). Kept on the company row, which every sign-in reads anyway, so that
    # companies without it cost no query at all.
    microsoft_required = models.BooleanField(
        _("Microsoft sign-in required for members"), default=False, db_default=False
    )
    # Whether the requirement was last found paused (no valid licence or no active integration):
    # changed only by a conditional UPDATE, so that each pause and its end is audited once.
    microsoft_requirement_paused = models.BooleanField(
        _("requirement of Microsoft sign-in paused"), default=False, db_default=False
    )

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def current_licence(self, product, at=None):
        """The licence for `product` that is valid at `at` (now by default), or None."""
        return self.licences.valid(product, at).order_by("-valid_until").first()

    def has_sso(self, at=None):
        # Asked on the first page after every password sign-in (may the user connect Microsoft?).
        return _sso_licence.exists(company_id=self.pk, at=at or timezone.now())

    def grant_licence(self, product, valid_until, valid_from=None):
        """Grant a licence, or extend the one that is in force (renewal keeps its history)."""
        valid_from = valid_from or timezone.now()
        if valid_until <= valid_from:
            raise ValueError(_("The licence must end after it starts."))
        licence = self.current_licence(product)
        if licence is not None:
            licence.valid_until = max(licence.valid_until, valid_until)
            licence.save(update_fields=["valid_until"])
            return licence, False
        return self.licences.create(product=product, valid_from=valid_from, valid_until=valid_until), True

    def require_microsoft(self):
        """Turn the requirement on; False when it was on already (another tab, another process)."""
        return self._set_microsoft_required(True)

    def stop_requiring_microsoft(self):
        """Turn the requirement off; False when it was off already."""
        return self._set_microsoft_required(False)

    def _set_microsoft_required(self, required):
        changed = Company.objects.filter(pk=self.pk, microsoft_required=not required).update(
            microsoft_required=required, microsoft_requirement_paused=False
        )
        self.microsoft_required, self.microsoft_requirement_paused = required, False
        return bool(changed)

    def revoke_licences(self, product):
        """Revoke every unrevoked licence of `product`; return how many were revoked."""
        now = timezone.now()
        return self.licences.filter(product=product, revoked=False).update(
            revoked=True, revoked_at=now, interrupted_at=now
        )


class LicenceQuerySet(models.QuerySet):
    def valid(self, product, at=None):
        """The licences for `product` in force at `at` (now by default): as Licence.is_valid."""
        at = at or timezone.now()
        return self.filter(product=product, revoked=False, valid_from__lte=at, valid_until__gt=at)


# Licence dates the portal can show in every time zone: a moment in year 1 or 9999 leaves the
# calendar once shifted by a zone's offset (a page showing it would fail). An operator's "for ever"
# fits well within these.
FIRST_LICENCE_MOMENT = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
LAST_LICENCE_MOMENT = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)  # the end of 9998-12-31


def licence_date(value):
    if not FIRST_LICENCE_MOMENT <= value <= LAST_LICENCE_MOMENT:
        raise ValidationError(_("Enter a date from the year 2000 to 9998."), code="out_of_range")


class Licence(models.Model):
    class Product(models.TextChoices):
        SSO = "sso", _("Single sign-on with Microsoft")

    company = models.ForeignKey(Company, models.CASCADE, related_name="licences", verbose_name=_("company"))
    product = models.CharField(_("product"), max_length=20, choices=Product.choices, default=Product.SSO)
    valid_from = models.DateTimeField(_("valid from"), default=timezone.now, validators=[licence_date])
    valid_until = models.DateTimeField(_("valid until"), validators=[licence_date])
    revoked = models.BooleanField(_("revoked"), default=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    # When the licence last stopped being in force while its row went on (revoked, or its dates
    # changed so that it lapsed), kept when it is in force again: a session opened with Microsoft
    # before then does not come back with it (sso.flows.still_usable).
    interrupted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = LicenceQuerySet.as_manager()

    class Meta:
        verbose_name = _("licence")
        verbose_name_plural = _("licences")
        ordering = ["-valid_until"]

    def __str__(self):
        # Dates in UTC, whatever zone is active: a licence just saved from a form holds its times
        # in the administrator's zone, one read back from the database in UTC, and the audit log
        # names the licence by this text.
        start, end = (moment.astimezone(datetime.UTC) for moment in (self.valid_from, self.valid_until))
        return f"{self.company} · {self.get_product_display()} · {start:%Y-%m-%d} – {end:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        # However it was changed (command, operator admin): the time of each revocation, and of
        # each interruption (see interrupted_at): revoked, or dates that end it now; or, when a
        # lapsed licence is extended, the moment it had lapsed.
        now, changed = timezone.now(), set()
        stored = Licence.objects.filter(pk=self.pk).first() if self.pk else None
        if self.revoked and (self.revoked_at is None or (stored is not None and not stored.revoked)):
            self.revoked_at = now
            changed.add("revoked_at")
        if stored is not None:
            was_valid, is_valid = stored.is_valid(now), self.is_valid(now)
            if was_valid and not is_valid:
                self.interrupted_at = now
                changed.add("interrupted_at")
            elif is_valid and not stored.revoked and stored.valid_until <= now:  # lapsed, extended
                self.interrupted_at = max(self.interrupted_at or stored.valid_until, stored.valid_until)
                changed.add("interrupted_at")
        if changed and kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], *changed}
        super().save(*args, **kwargs)

    def clean(self):
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": _("The licence must end after it starts.")})

    def is_valid(self, at=None):
        at = at or timezone.now()
        return not self.revoked and self.valid_from <= at < self.valid_until

    @property
    def state(self):
        """ "revoked", "not_yet" (it starts later), "expired" or "valid". A revoked licence may well
        run until a later date, so its end date says nothing then."""
        if self.revoked:
            return "revoked"
        now = timezone.now()
        if now < self.valid_from:
            return "not_yet"
        if now >= self.valid_until:
            return "expired"
        return "valid"

    @property
    def status(self):
        return {
            "revoked": _("Revoked"),
            "not_yet": _("Not yet valid"),
            "expired": _("Expired"),
            "valid": _("Valid"),
        }[self.state]


# Composed once (Company.has_sso).
_sso_licence = Prepared(
    lambda company_id, at: Licence.objects.valid(Licence.Product.SSO, at).filter(company=company_id),
    "exists",
    company_id=int,
    at=datetime.datetime,
)
