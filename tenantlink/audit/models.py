import datetime
import itertools

from django.conf import settings
from django.db import models
from django.db.models.fields.json import KT
from django.db.models.functions import ExtractMinute, Floor, TruncDate, TruncHour
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenantlink.audit import labels
from tenantlink.lib import metrics
from tenantlink.lib.net import client_address, user_agent
from tenantlink.lib.queries import insert


class Action(models.TextChoices):
    SIGNIN_SUCCEEDED = "signin.succeeded", _("Signed in")
    SIGNIN_FAILED = "signin.failed", _("Sign-in failed")
    SIGNIN_LOCKED = "signin.locked", _("Sign-in paused after repeated failures")
    SIGNIN_UNLOCKED = "signin.unlocked", _("Sign-in pause ended")
    SIGNED_OUT = "signout", _("Signed out")
    REAUTHENTICATED = "reauthenticated", _("Confirmed password")
    PASSWORD_CHANGED = "password.changed", _("Changed password")
    INVITATION_ACCEPTED = "invitation.accepted", _("Accepted invitation")
    SECOND_FACTOR_ENROLLED = "second_factor.enrolled", _("Set up authenticator app")
    SECOND_FACTOR_RESET = "second_factor.reset", _("Reset second factor")
    SEEDS_REENCRYPTED = "second_factor.seeds_reencrypted", _("Re-encrypted authenticator seeds with the newest key")
    RECOVERY_CODES_GENERATED = "recovery_codes.generated", _("Generated recovery codes")
    RECOVERY_CODE_USED = "recovery_code.used", _("Used a recovery code")
    USER_CREATED = "user.created", _("Created user")
    USER_INVITED = "user.invited", _("Invited user")
    USER_INVITED_AGAIN = "user.invited_again", _("Sent the invitation again")
    USER_DEACTIVATED = "user.deactivated", _("Deactivated user")
    USER_REACTIVATED = "user.reactivated", _("Reactivated user")
    USER_CHANGED = "user.changed", _("Changed user")
    COMPANY_CREATED = "company.created", _("Created company")
    LICENCE_GRANTED = "licence.granted", _("Granted licence")
    LICENCE_EXTENDED = "licence.extended", _("Extended licence")
    LICENCE_REVOKED = "licence.revoked", _("Revoked licence")
    SSO_INTEGRATION_ADDED = "sso.integration.added", _("Added a single sign-on integration")
    SSO_CONSENT_STARTED = "sso.consent.started", _("Sent to Microsoft for admin consent")
    # What Microsoft's redirect says, which nobody signs: the integration works only once verified.
    SSO_CONSENT_SUCCEEDED = "sso.consent.succeeded", _("Microsoft reported admin consent")
    SSO_CONSENT_FAILED = "sso.consent.failed", _("Admin consent not given")
    SSO_VERIFIED = "sso.integration.verified", _("Integration verified with Microsoft")
    SSO_VERIFICATION_FAILED = "sso.integration.verification_failed", _("Integration verification failed")
    SSO_INTEGRATION_DISABLED = "sso.integration.disabled", _("Disabled a single sign-on integration")
    SSO_INTEGRATION_ENABLED = "sso.integration.enabled", _("Enabled a single sign-on integration")
    SSO_INTEGRATION_DELETED = "sso.integration.deleted", _("Deleted a single sign-on integration")
    SSO_CONNECTED = "sso.connected", _("Connected a Microsoft account")
    SSO_CONNECT_FAILED = "sso.connect_failed", _("Connecting a Microsoft account failed")
    SSO_DISCONNECTED = "sso.disconnected", _("Removed a Microsoft connection")
    SSO_OFFER_DECLINED = "sso.offer_declined", _("Declined Microsoft sign-in")
    SSO_SESSION_ENDED = "sso.session_ended", _("Microsoft session ended")
    SSO_REQUIRED_ON = "sso.required.on", _("Required Microsoft sign-in for members")
    SSO_REQUIRED_OFF = "sso.required.off", _("Stopped requiring Microsoft sign-in")
    SSO_REQUIRED_PAUSED = "sso.required.paused", _("Requirement of Microsoft sign-in paused")
    SSO_REQUIRED_RESUMED = "sso.required.resumed", _("Requirement of Microsoft sign-in resumed")
    SSO_LEAVER_CHECK_REQUESTED = "sso.leavers.requested", _("Asked Microsoft for the leaver check's permission")
    SSO_LEAVER_CHECK_ON = "sso.leavers.on", _("Leaver check turned on")
    SSO_LEAVER_CHECK_OFF = "sso.leavers.off", _("Leaver check turned off")
    SSO_LEAVER_POLICY_CHANGED = "sso.leavers.policy", _("Changed what the leaver check does")
    SSO_LEAVER_CHECK_FAILED = "sso.leavers.failed", _("Leaver check failing")
    SSO_LEAVERS_HELD = "sso.leavers.held", _("Leaver check held back: too many leavers at once")
    SSO_LEAVERS_CONFIRMED = "sso.leavers.confirmed", _("Confirmed the leavers held back")
    SSO_LEAVER = "sso.leaver", _("Access removed: Microsoft account disabled or deleted")
    # Changes made by operator staff in the Django admin (/staff/) that no portal action covers.
    STAFF_ADDED = "staff.added", _("Added by operator staff")
    STAFF_CHANGED = "staff.changed", _("Changed by operator staff")
    STAFF_DELETED = "staff.deleted", _("Deleted by operator staff")


class Outcome(models.TextChoices):
    SUCCESS = "success", _("Success")
    FAILURE = "failure", _("Failure")
    DENIED = "denied", _("Denied")


# How the adoption picture splits sign-ins: the `method` of a sign-in event is "microsoft" or one
# of the ways to give the second factor after the password ("totp", "recovery_code", "totp_enrolment").
MICROSOFT = "microsoft"
PASSWORD = "password"


def signin_kind(method):
    return MICROSOFT if method == MICROSOFT else PASSWORD


def _tally(rows):
    """{(day or slot, PASSWORD or MICROSOFT): count} from grouped (day or slot, method, count) rows."""
    counts = {}
    for when, method, count in rows:
        key = (when, signin_kind(method))
        counts[key] = counts.get(key, 0) + count
    return counts


class AuditEventManager(models.Manager):
    def signins(self):
        return self.filter(action=Action.SIGNIN_SUCCEEDED)

    def signins_per_day(self, since, zone, company=None):
        """{(local date, PASSWORD or MICROSOFT): count} of the successful sign-ins from `since`,
        days counted in `zone`. One grouped query; for a company it reads the index on (company,
        action, created_at), so it costs that company's sign-ins, whatever the size of the log."""
        events = self.signins().filter(created_at__gte=since)
        if company is not None:
            events = events.filter(company=company)
        rows = events.values_list(TruncDate("created_at", tzinfo=zone), KT("details__method"))
        return _tally(rows.annotate(models.Count("id")).order_by())

    def record(
        self,
        action,
        *,
        request=None,
        actor=None,
        actor_label="",
        company=None,
        target=None,
        target_label="",
        outcome=Outcome.SUCCESS,
        **details,
    ):
        """Write one audit event. `details` must be small and never hold a secret.

        The actor defaults to the signed-in user of `request`; the company to the target's or
        actor's company, so that company administrators see the event in their log."""
        event = self._event(action, request, actor, actor_label, company, target, target_label, outcome, details)
        insert(event)  # written on every sign-in: the statement composed once
        # Every sign-in and pause is audited here, so the metrics are counted here too.
        if action in (Action.SIGNIN_SUCCEEDED, Action.SIGNIN_FAILED):
            metrics.count_signin(details.get("method") or details.get("step"), outcome)
        elif action == Action.SIGNIN_LOCKED:
            metrics.LOCKOUTS.labels("address" if event.target_label.startswith("address:") else "account").inc()
        return event

    def record_each(self, action, targets, *, request=None, **details):
        """One event per person of an action that touches many at once (deleting an integration
        removes everybody's connection), written in batches: `targets` gives (user, details of
        that user's event) pairs, and `details` is added to each. The number written."""
        # Each event as record() writes it: actor and company from the request and the person.
        events = (
            self._event(action, request, None, "", None, user, "", Outcome.SUCCESS, {**own, **details})
            for user, own in targets
        )
        written = 0
        while batch := list(itertools.islice(events, 1000)):
            written += len(self.bulk_create(batch))
        return written

    def _event(self, action, request, actor, actor_label, company, target, target_label, outcome, details):
        if actor is None and request is not None and request.user.is_authenticated:
            actor = request.user
        # By id: the company row itself is not needed, and reading it would cost a query.
        company_id = company.pk if company is not None else None
        if company_id is None:
            company_id = _company_id_of(target) or _company_id_of(actor)
        return self.model(
            action=action,
            actor=actor,
            actor_label=actor_label or (actor.username if actor else ""),
            company_id=company_id,
            target_user=target,
            target_label=target_label or (target.username if target else ""),
            client_ip=(client_address(request) or None) if request else None,
            user_agent=user_agent(request) if request else "",
            outcome=outcome,
            details=details,
        )


def _company_id_of(user):
    """The company whose log shows a user's events: none for operator staff, even given a company
    (their sign-ins, from their addresses, are the operator's business, not that company's)."""
    if user is None or user.is_operator:
        return None
    return user.company_id


class AuditEvent(models.Model):
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    # Labels are snapshots: the log still reads right after a user is renamed or deleted.
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    company = models.ForeignKey(
        "companies.Company", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("company")
    )
    action = models.CharField(_("action"), max_length=64, choices=Action.choices)
    target_user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    target_label = models.CharField(_("target"), max_length=200, blank=True)
    client_ip = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventManager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="audit_company_created"),
            # A company's sign-ins per day (the Single sign-on page) and the log filtered by action.
            models.Index(fields=["company", "action", "created_at"], name="audit_company_action_created"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_display} → {self.target_display}"

    @property
    def actor_display(self):
        """Who did it, in the viewer's language (a process by its name, a person by username)."""
        return labels.actor(self.actor_label, person=self.actor_id is not None)

    @property
    def target_display(self):
        """Whom it was done to, in the viewer's language (a name nobody has, in their words)."""
        return labels.target(self.target_label, person=self.target_user_id is not None)

    def detail_items(self):
        return labels.details(self.details)


SLOT = datetime.timedelta(minutes=15)  # every time zone's offset from UTC is a multiple of 15 minutes
# How far back slots are counted: the last 30 days of any time zone (up to 14 hours ahead of UTC).
SLOT_HISTORY = datetime.timedelta(days=31)
# A sign-in's event is written a moment before its transaction commits, so a slot is counted only
# when it ended this long ago: no event of it can still appear afterwards.
SLOT_GRACE = datetime.timedelta(minutes=5)


def _slot_start(moment):
    moment = moment.astimezone(datetime.UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


class SigninSlotManager(models.Manager):
    def fill(self, now):
        """Count the sign-ins of every finished slot of the last SLOT_HISTORY that is not counted
        yet, from the audit log: once per slot, so the operator's picture of all companies does
        not read a month of everybody's sign-ins on every view. Slots without sign-ins are stored
        too (as zeros): the latest stored slot is how far counting got. The daily purge_expired
        does it too, so that a view has at most a day to count (the first run counts the month).
        Returns where counting stopped; later sign-ins are still only in the audit log."""
        until = _slot_start(now - SLOT_GRACE)
        last = self.aggregate(last=models.Max("start"))["last"]
        begin = _slot_start(now - SLOT_HISTORY)
        if last is not None:
            begin = max(begin, last + SLOT)
        if begin >= until:
            return begin
        rows = (
            AuditEvent.objects.signins()
            .filter(created_at__gte=begin, created_at__lt=until)
            .values_list(
                TruncHour("created_at", tzinfo=datetime.UTC),
                Floor(ExtractMinute("created_at", tzinfo=datetime.UTC) / 15),
                KT("details__method"),
            )
            .annotate(models.Count("id"))
            .order_by()
        )
        counts = _tally((hour + int(quarter) * SLOT, method, count) for hour, quarter, method, count in rows)
        slots = []
        start = begin
        while start < until:
            slots += [
                SigninSlot(start=start, kind=kind, count=counts.get((start, kind), 0)) for kind in (PASSWORD, MICROSOFT)
            ]
            start += SLOT
        # Two views at once count the same finished slots alike, so the second one's rows are dropped.
        self.bulk_create(slots, ignore_conflicts=True, batch_size=1000)
        return until

    def delete_old(self, now):
        """Delete the counts from before the SLOT_HISTORY that fill() keeps (the adoption page shows
        30 days; nothing reads older ones); how many went."""
        return self.filter(start__lt=_slot_start(now - SLOT_HISTORY)).delete()[0]

    def signins_per_day(self, since, zone, now):
        """Sign-ins of all companies per local day since `since`, as AuditEvent.objects.signins_per_day:
        the counted slots, and the audit log only for the last minutes that are not counted yet."""
        counted_until = self.fill(now)
        counts = AuditEvent.objects.signins_per_day(counted_until, zone)
        slots = self.filter(start__gte=since, start__lt=counted_until, count__gt=0)
        days = slots.values_list(TruncDate("start", tzinfo=zone), "kind").annotate(models.Sum("count")).order_by()
        for key, count in _tally(days).items():
            counts[key] = counts.get(key, 0) + count
        return counts


class SigninSlot(models.Model):
    """Successful sign-ins of all companies in one quarter of an hour (UTC), by kind: counted once
    from the audit log after the slot ended, for the operator's picture of all companies."""

    start = models.DateTimeField()
    kind = models.CharField(max_length=20)
    count = models.PositiveIntegerField()

    objects = SigninSlotManager()

    class Meta:
        constraints = [models.UniqueConstraint("start", "kind", name="signin_slot_once")]

    def __str__(self):
        return f"{self.start:%Y-%m-%d %H:%M} {self.kind}: {self.count}"
