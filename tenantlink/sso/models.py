"""Single sign-on with Microsoft: a company's integrations (one per Entra tenant), users'
connections to a Microsoft identity, the pending state of a flow at Microsoft, and the cache of
Microsoft's discovery documents and keys."""

import datetime
import hashlib
import secrets
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenantlink.accounts.models import User
from tenantlink.lib.queries import Prepared, insert
from tenantlink.lib.validators import plain_text
from tenantlink.sso.reasons import FAILURE_REASONS, NEEDS_ADMIN_CONSENT


def _count(queryset, group):
    """A subquery that counts the rows of `queryset` (already tied to the outer row)."""
    return Coalesce(models.Subquery(queryset.order_by().values(group).annotate(n=models.Count("pk")).values("n")), 0)


class IntegrationQuerySet(models.QuerySet):
    def with_adoption(self):
        """Each integration with `connected`, its connected users who are active, and
        `active_users`, its company's active users (not operator staff given the company): counted
        for the rows fetched only, through the indexes on the user's company and the connection's
        integration."""
        active = User.objects.of_company(models.OuterRef("company")).filter(is_active=True)
        connected = Connection.objects.filter(integration=models.OuterRef("pk"), user__is_active=True)
        return self.annotate(active_users=_count(active, "company"), connected=_count(connected, "integration"))


class HeldLeavers(NamedTuple):
    people: list  # (connection, reason), at most Integration.HELD_SHOWN
    more: int  # held and still connected, but not in `people`


class Integration(models.Model):
    """One Microsoft Entra ID tenant connected to a company, each company at most one per tenant.
    A tenant works (active or disabled) for one company only: another company's attempt to add it
    stays pending or fails, and is told the tenant is taken."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending consent")
        ACTIVE = "active", _("Active")
        DISABLED = "disabled", _("Disabled")
        FAILED = "failed", _("Consent failed")

    # Connected: in use, or switched off for a while by its administrator.
    WORKING = (Status.ACTIVE, Status.DISABLED)

    class LeaverCheck(models.TextChoices):
        OFF = "off", _("Off")
        WAITING = "waiting", _("Waiting for permission")
        ON = "on", _("On")
        FAILING = "failing", _("Failing")

    class LeaverPolicy(models.TextChoices):
        DEACTIVATE = "deactivate", _("Deactivate the portal user")
        DISCONNECT = "disconnect", _("Remove the Microsoft connection only")

    company = models.ForeignKey(
        "companies.Company", models.CASCADE, related_name="sso_integrations", verbose_name=_("company")
    )
    tenant_id = models.UUIDField(_("tenant ID"))
    display_name = models.CharField(_("display name"), max_length=200, validators=[plain_text])
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(_("reason"), max_length=40, blank=True)
    failure_code = models.CharField(_("Microsoft error code"), max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    consent_completed_at = models.DateTimeField(_("consent completed at"), null=True, blank=True)
    last_verified_at = models.DateTimeField(_("last verified at"), null=True, blank=True)
    # When someone of the tenant signed in there for this integration: the app being in a tenant
    # shows that somebody there approved it, not for which company (consent.verify).
    tenant_signed_in_at = models.DateTimeField(_("tenant sign-in"), null=True, blank=True)
    # When it last became active (confirmed by Microsoft, or enabled again): a session opened with
    # Microsoft before then ends, also one that made no request while it was not (None: since it
    # was added).
    active_since = models.DateTimeField(null=True, blank=True, editable=False)
    # The leaver check (opt-in): people disabled or deleted at Microsoft lose access here.
    # Database defaults too: processes of the previous release, still running while this one's
    # migration is applied, insert integrations without these columns.
    leaver_check = models.CharField(
        _("leaver check"), max_length=20, choices=LeaverCheck.choices, default=LeaverCheck.OFF, db_default="off"
    )
    leaver_policy = models.CharField(
        _("leaver policy"),
        max_length=20,
        choices=LeaverPolicy.choices,
        default=LeaverPolicy.DEACTIVATE,
        db_default="deactivate",
    )
    leaver_failure_reason = models.CharField(
        _("leaver check failure"), max_length=40, blank=True, default="", db_default=""
    )
    leaver_failure_code = models.CharField(
        _("leaver check failure code"), max_length=40, blank=True, default="", db_default=""
    )
    # Administrators are told once that the check fails, not at every run.
    leaver_failure_notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    leaver_checked_at = models.DateTimeField(_("last leaver check"), null=True, blank=True)
    # When an administrator last went to Microsoft to grant the permission: a check still waiting
    # long after that was never granted.
    leaver_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The safety valve: how many leavers the last run found but did not act on, a digest naming
    # exactly those leavers under the policy of that run, and the digest an administrator then
    # confirmed: a later run acts only on that very set, under that very policy.
    leaver_held = models.PositiveIntegerField(_("leavers waiting for confirmation"), default=0, db_default=0)
    leaver_held_digest = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    # Who they are, for the administrator to see before confirming: "connection:reason,…".
    leaver_held_list = models.TextField(blank=True, default="", db_default="", editable=False)
    leaver_confirmed_digest = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    # A runner claims the integration until then, so that runners on several machines share the work.
    leaver_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # A random token of that claim: only the runner that holds it renews or ends the lease, so that
    # a runner stuck past its lease cannot take back, or end, the lease of the runner now checking.
    leaver_lease_owner = models.CharField(max_length=32, blank=True, default="", db_default="", editable=False)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        verbose_name = _("single sign-on integration")
        verbose_name_plural = _("single sign-on integrations")
        ordering = ["display_name", "tenant_id"]
        constraints = [
            models.UniqueConstraint("company", "tenant_id", name="sso_integration_tenant_once_per_company"),
            # A tenant works for one company only: two verifying at the same moment cannot both win.
            models.UniqueConstraint(
                "tenant_id",
                condition=models.Q(status__in=["active", "disabled"]),  # WORKING
                name="sso_integration_tenant_works_once",
            ),
        ]

    def __str__(self):
        return f"{self.display_name} ({self.tenant_id})"

    @property
    def label(self):
        """How the audit log names the integration."""
        return f"{self.display_name} ({self.tenant_id})"[:200]

    @property
    def adoption_percent(self):
        """The share of the company's active users connected, from with_adoption()'s counts."""
        if not self.active_users:
            return 0
        return min(100, round(100 * self.connected / self.active_users))

    @property
    def adoption_shown(self):
        """adoption_percent as written beside the bar: never 0 once someone is connected, nor 100
        while someone is not (1 of 310 is "<1", 309 of 310 ">99")."""
        percent = self.adoption_percent
        if percent == 0 and self.connected:
            return "<1"
        if percent == 100 and self.connected < self.active_users:
            return ">99"
        return str(percent)

    @property
    def failure_message(self):
        return FAILURE_REASONS.get(self.failure_reason, "")

    @property
    def status_label(self):
        """The status in words: one that waits after an approval (for Microsoft's confirmation, or
        for a sign-in at the tenant that counts) waits for verification, not for consent."""
        if self.is_waiting:
            return _("Waiting for verification")
        return self.get_status_display()

    @property
    def needs_admin_consent(self):
        return self.failure_reason in NEEDS_ADMIN_CONSENT

    @property
    def needs_tenant_sign_in(self):
        """Whether someone of the tenant must sign in there before this integration may work: it
        does not work yet, and nobody did since it was added."""
        return self.tenant_signed_in_at is None and self.status not in self.WORKING

    @property
    def approved_at_microsoft(self):
        """Whether Microsoft approved the app in the tenant at some point (it worked, consent came
        back approved, or a verification found the app there): then the app stays approved there
        after the integration is deleted. One whose approval never got that far leaves nothing of
        its own at Microsoft."""
        return self.status in self.WORKING or self.consent_completed_at is not None or self.last_verified_at is not None

    @property
    def may_verify(self):
        """Whether "Verify again" can do anything: it worked once (Microsoft is asked again), or
        an approval came back or a sign-in at the tenant is awaited (that sign-in is what is
        left). Not for one whose approval never came back: "Retry consent" is what it needs."""
        return not self.needs_tenant_sign_in or self.consent_completed_at is not None or self.is_waiting

    @property
    def is_waiting(self):
        """Approved, and waiting to be verified (waits())."""
        return self.status == self.Status.PENDING and bool(self.failure_reason)

    def waits(self, reason, code="", consent_completed=False):
        """Not usable yet, for `reason`: "sign_in_pending" (the consent came back approved;
        someone of the tenant has yet to sign in there), a reason why such a sign-in did
        not count ("guest", "wrong_tenant", …; it still waits for one that does),
        "approval_propagating" (the consent came back approved; Microsoft does not confirm it yet),
        or why Microsoft could not be asked right after an approval ("unavailable", …)."""
        fields = {"failure_reason": reason, "failure_code": code[:40]}
        if consent_completed:
            fields["consent_completed_at"] = timezone.now()
        self._record(self.Status.PENDING, **fields)

    def _record(self, new_status, **fields):
        """Write the outcome of a call to Microsoft, which may have taken seconds: meanwhile an
        administrator may have disabled the integration (it stays disabled) or deleted it (it
        stays deleted: an UPDATE, never the INSERT a save() of a vanished row would do)."""
        status = models.Case(
            models.When(status=self.Status.DISABLED, then=models.Value(self.Status.DISABLED)),
            default=models.Value(new_status),
        )
        Integration.objects.filter(pk=self.pk).update(status=status, **fields)
        for name, value in fields.items():
            setattr(self, name, value)
        current = Integration.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        self.status = current or new_status

    def verified(self, consent_completed=False, tenant_signed_in=False):
        """Microsoft confirmed the app in the tenant: usable, unless an administrator disabled it."""
        now = timezone.now()
        fields = {"last_verified_at": now, "failure_reason": "", "failure_code": ""}
        if self.status != self.Status.ACTIVE:
            fields["active_since"] = now
        if consent_completed:
            fields["consent_completed_at"] = now
        if tenant_signed_in:
            fields["tenant_signed_in_at"] = now
        self._record(self.Status.ACTIVE, **fields)

    def fail(self, reason, code=""):
        """Consent or verification did not succeed: the integration cannot be used."""
        self._record(self.Status.FAILED, failure_reason=reason, failure_code=code[:40])

    HELD_SHOWN = 50

    def held_leavers(self):
        """The people the safety valve holds back and still connected, by username: the first
        HELD_SHOWN as (connection with its user, why Microsoft says they left), and how many more."""
        reasons = {}
        for item in self.leaver_held_list.split(","):
            pk, _colon, reason = item.partition(":")
            if pk.isdigit():  # anything else is not this version's: left out, not a broken page
                reasons[int(pk)] = reason
        connections = Connection.objects.filter(integration=self, pk__in=reasons)
        labels = dict(Leaver.Reason.choices)
        people = [
            (connection, labels.get(reasons[connection.pk], reasons[connection.pk]))
            for connection in connections.select_related("user").order_by("user__username")[: self.HELD_SHOWN]
        ]
        more = connections.count() - len(people) if len(people) == self.HELD_SHOWN else 0
        return HeldLeavers(people, more)

    @property
    def leaver_failure_message(self):
        return FAILURE_REASONS.get(self.leaver_failure_reason, "")

    def set_leaver_check(self, state, reason="", code="", only_from=None):
        """Move the leaver check to `state`; with `only_from`, only if it is still in one of those
        states (an administrator may have turned it off while Microsoft was being asked). Whether
        it moved."""
        rows = Integration.objects.filter(pk=self.pk)
        if only_from is not None:
            rows = rows.filter(leaver_check__in=only_from)
        fields = {"leaver_check": state, "leaver_failure_reason": reason, "leaver_failure_code": code[:40]}
        if state != self.LeaverCheck.FAILING:
            fields["leaver_failure_notified_at"] = None
        if not rows.update(**fields):
            return False
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def _move(self, from_status, to_status, **fields):
        """One conditional UPDATE: False when the integration was not `from_status` (say, a second
        tab moved it a moment before), so that the change is made and recorded once."""
        if not Integration.objects.filter(pk=self.pk, status=from_status).update(status=to_status, **fields):
            return False
        self.status = to_status
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def disable(self):
        return self._move(self.Status.ACTIVE, self.Status.DISABLED)

    def enable(self):
        return self._move(self.Status.DISABLED, self.Status.ACTIVE, active_since=timezone.now())


class Connection(models.Model):
    """A portal user's Microsoft work account. A Microsoft identity is (tid, oid) and nothing
    else: names and addresses are mutable, set by whoever runs the tenant, and kept for display."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="microsoft_connection", verbose_name=_("user")
    )
    integration = models.ForeignKey(
        Integration, models.CASCADE, related_name="connections", verbose_name=_("integration")
    )
    tid = models.UUIDField(_("tenant ID"))
    oid = models.UUIDField(_("object ID"))
    display_name = models.CharField(_("name at Microsoft"), max_length=200, blank=True)
    username = models.CharField(_("Microsoft username"), max_length=254, blank=True)
    connected_at = models.DateTimeField(_("connected at"), default=timezone.now)
    last_signin_at = models.DateTimeField(_("last Microsoft sign-in"), null=True, blank=True)

    class Meta:
        verbose_name = _("Microsoft connection")
        verbose_name_plural = _("Microsoft connections")
        constraints = [models.UniqueConstraint("tid", "oid", name="sso_connection_identity_once")]

    def __str__(self):
        return f"{self.user} ↔ {self.account}"

    @property
    def account(self):
        """The Microsoft account as people know it: "Name (username)", whichever of the two the
        token carried, else its object ID (Microsoft need not send a name or a username)."""
        if self.display_name and self.username:
            return f"{self.display_name} ({self.username})"
        return self.display_name or self.username or str(self.oid)


class Leaver(models.Model):
    """A portal user whose Microsoft account was disabled or deleted, and what the leaver check did
    about it. Kept after the connection is gone, so that the user's page can say why."""

    class Reason(models.TextChoices):
        DISABLED = "disabled", _("The Microsoft account was disabled")
        DELETED = "deleted", _("The Microsoft account was deleted")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="leaver_records")
    integration = models.ForeignKey(Integration, models.SET_NULL, null=True, blank=True, related_name="+")
    tid = models.UUIDField(_("tenant ID"))
    oid = models.UUIDField(_("object ID"))
    username = models.CharField(_("Microsoft username"), max_length=254, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    policy = models.CharField(_("action"), max_length=20, choices=Integration.LeaverPolicy.choices)
    acted_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-acted_at", "-id"]

    def __str__(self):
        return f"{self.user} ({self.reason}, {self.acted_at:%Y-%m-%d})"


class DeclinedOffer(models.Model):
    """The user chose "Don't ask again" when offered Microsoft sign-in after signing in; they can
    still connect in My Profile → Settings."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    declined_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.user} declined Microsoft sign-in on {self.declined_at:%Y-%m-%d}"


def _digest(value):
    return hashlib.sha256(value.encode()).hexdigest()


BROWSER_KEY = "sso_browser"


def browser_binding(request):
    """A random value kept in this browser's session (it survives the session key's rotation at
    sign-in). A pending flow is bound to its digest, so a `state` taken to another browser is
    worthless there."""
    value = request.session.get(BROWSER_KEY)
    if not value:
        value = request.session[BROWSER_KEY] = secrets.token_urlsafe(32)
    return _digest(value)


class PendingAuthorization(models.Model):
    """A flow waiting for Microsoft to send the browser back: admin consent, connecting an
    account, or signing in. Kept in the database (not a process's memory) so that the callback may
    land on any portal process; only a digest of `state` is stored."""

    class Purpose(models.TextChoices):
        CONSENT = "consent", _("Admin consent")
        CONNECT = "connect", _("Connect a Microsoft account")
        SIGNIN = "signin", _("Sign in with Microsoft")
        LEAVER_CONSENT = "leaver_consent", _("Admin consent for the leaver check")
        TENANT_SIGNIN = "tenant_signin", _("Sign in at the tenant of a new integration")

    state_digest = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    browser = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, null=True, blank=True, related_name="+")
    integration = models.ForeignKey(Integration, models.CASCADE, null=True, blank=True, related_name="+")
    nonce = models.CharField(max_length=100, blank=True)
    code_verifier = models.CharField(max_length=128, blank=True)
    next_url = models.CharField(max_length=500, blank=True)  # a path on this site, where to go afterwards
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.get_purpose_display()} until {self.expires_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def begin(cls, request, purpose, *, user=None, integration=None, **secrets_):
        """Store a new pending flow and return the `state` to send to Microsoft."""
        state = secrets.token_urlsafe(32)
        insert(  # on every Sign in with Microsoft: the statement composed once
            cls(
                state_digest=_digest(state),
                purpose=purpose,
                browser=browser_binding(request),
                user=user,
                integration=integration,
                expires_at=timezone.now() + datetime.timedelta(seconds=settings.SSO_PENDING_LIFETIME),
                **secrets_,
            )
        )
        return state

    @classmethod
    def take(cls, request, state, *purposes):
        """The pending flow that `state` names, if it was started for one of `purposes` in this
        browser and has not expired, removed so that it can never be used again; otherwise None."""
        if not isinstance(state, str) or not state or len(state) > 200 or not request.session.get(BROWSER_KEY):
            return None
        pending = _unexpired.one(state_digest=_digest(state), browser=browser_binding(request), now=timezone.now())
        if pending is None or pending.purpose not in purposes:
            return None
        # Two callbacks with the same state at once: only the one whose delete removed the row wins.
        if _by_id.delete(pk=pending.pk) != 1:
            return None
        return pending

    @classmethod
    def purge_expired(cls):
        return cls.objects.filter(expires_at__lte=timezone.now()).delete()[0]


# The take's two statements, composed once (the state's digest is unique).
_unexpired = Prepared(
    lambda state_digest, browser, now: PendingAuthorization.objects.filter(
        state_digest=state_digest, browser=browser, expires_at__gt=now
    ).select_related("integration__company", "user"),
    state_digest=str,
    browser=str,
    now=datetime.datetime,
)
_by_id = Prepared(lambda pk: PendingAuthorization.objects.filter(pk=pk), "delete", pk=int)


class CachedDocument(models.Model):
    """A discovery document or key set fetched from Microsoft, shared by every portal process."""

    URL_LENGTH = 500

    url = models.CharField(max_length=URL_LENGTH, unique=True)
    body = models.JSONField()
    fetched_at = models.DateTimeField()

    def __str__(self):
        return self.url
