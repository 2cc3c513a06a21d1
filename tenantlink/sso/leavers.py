"""The leaver check: people whom their company's Microsoft administrator disabled or deleted in
Entra ID lose access to the portal. An opt-in per integration, after a Microsoft Global
Administrator (or Privileged Role Administrator) grants the Graph application permission
User.Read.All; then `manage.py check_leavers` looks up every connected user and applies the
integration's policy.

Only "disabled" (accountEnabled false) and "deleted" (404 Request_ResourceNotFound) act on
anyone. Every other answer — refused token, withdrawn consent, 403, 5xx, garbage, timeouts —
changes nobody: the check shows *Failing* and the administrators are told once. A run that would
act on more than LEAVER_SAFETY_SHARE of an integration's connected users (and more than
LEAVER_SAFETY_MINIMUM) acts on none until an administrator confirms. Nothing is undone by itself.

Several runners may run at once (on several machines): each claims an integration with a lease
(a conditional UPDATE) under a random token of its own, renews and ends only a lease that still
carries that token, and each action is a conditional UPDATE or DELETE, so that a second runner's
action on the same user is a no-op and is not recorded twice."""

import datetime
import hashlib
import logging
import secrets
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from tenantlink.accounts.models import User
from tenantlink.audit import labels
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.sso import graph, microsoft
from tenantlink.sso.consent import consent_error, record
from tenantlink.sso.flows import notify
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import Connection, Integration, Leaver, PendingAuthorization

log = logging.getLogger(__name__)

LEAVER_SAFETY_SHARE = 0.2
LEAVER_SAFETY_MINIMUM = 5
LEASE = datetime.timedelta(minutes=10)  # renewed after every batch
RUNNER = labels.LEAVER_CHECK  # the audit log's actor for what a run does
CHECKED = (Integration.LeaverCheck.ON, Integration.LeaverCheck.FAILING)


# --- Turning it on and off (company administrators) ------------------------------------------------


def start_consent(request, integration, policy):
    """Where the administrator approves the permission at Microsoft. A check that is off waits
    for it; one that runs (on, or failing) runs on meanwhile: an approval abandoned at Microsoft
    must not stop it."""
    # The trip first, then the wait for it: a runner gives up only on a wait without a trip.
    state = PendingAuthorization.begin(
        request, PendingAuthorization.Purpose.LEAVER_CONSENT, user=request.user, integration=integration
    )
    if integration.set_leaver_check(Integration.LeaverCheck.WAITING, only_from=(Integration.LeaverCheck.OFF,)):
        # Not checked since it was turned on: the page shows no last check, and /metrics/leavers
        # counts from the request, not from a check before it was turned off.
        Integration.objects.filter(pk=integration.pk).update(
            leaver_policy=policy, leaver_requested_at=timezone.now(), leaver_checked_at=None
        )
        integration.leaver_policy = policy
    else:  # a running check: the policy chosen applies at once, as with "Save"
        change_policy(request, integration, policy)
    record(request, Action.SSO_LEAVER_CHECK_REQUESTED, integration, policy=policy)
    return microsoft.admin_consent_url(integration.tenant_id, state, scope=microsoft.APP_ONLY_SCOPE)


def finish_consent(request, integration, params):
    """Microsoft sent the administrator back from approving the permission. None when the check
    is on now, otherwise the MicrosoftError. On only when a token Microsoft issues now carries
    User.Read.All: the callback's parameters prove nothing.

    Declined or not finished at Microsoft: a check that was off stays off (and the page says
    why); one that ran runs on as it was. Approved, but Microsoft does not (yet) issue the
    permission: the check is on and failing, and each run asks again (a grant can take a few
    minutes to show in Microsoft's tokens)."""
    error, approved = None, False
    if params.get("error"):
        error = consent_error(params)
        if error.reason in ("cancelled", "approval_required"):
            error = MicrosoftError("permission_missing", error.code)
    elif params.get("admin_consent", "").lower() != "true":
        error = MicrosoftError("bad_answer", "no admin_consent")
    else:
        approved = True
        try:
            _token, roles = graph.app_only_token(integration.tenant_id, fresh=True)
            if graph.READ_USERS_ROLE not in roles:
                error = MicrosoftError("permission_missing", "no User.Read.All")
        except MicrosoftError as refused:
            error = refused
    # Each move only from a state the administrators left it in: one may have turned it off meanwhile.
    if error is None:
        if integration.set_leaver_check(
            Integration.LeaverCheck.ON, only_from=(Integration.LeaverCheck.WAITING, Integration.LeaverCheck.FAILING)
        ):
            record(request, Action.SSO_LEAVER_CHECK_ON, integration, policy=integration.leaver_policy)
            return None
        integration.refresh_from_db(fields=["leaver_check"])
        if integration.leaver_check == Integration.LeaverCheck.ON:
            return None
        return MicrosoftError("turned_off")  # in another tab, or given up waiting
    if approved:
        moved = integration.set_leaver_check(
            Integration.LeaverCheck.FAILING,
            error.reason,
            error.code,
            only_from=(Integration.LeaverCheck.WAITING, *CHECKED),
        )
        if moved:
            Integration.objects.filter(pk=integration.pk).update(leaver_failure_notified_at=timezone.now())
    else:
        integration.set_leaver_check(
            Integration.LeaverCheck.OFF, error.reason, error.code, only_from=(Integration.LeaverCheck.WAITING,)
        )
    record(request, Action.SSO_LEAVER_CHECK_FAILED, integration, Outcome.FAILURE, reason=error.reason, code=error.code)
    return error


def give_up_waiting(request, integration, reason):
    """The permission came back when the check may no longer be turned on (`reason`: the licence
    ended or the integration is not active): it stays off, whatever Microsoft answered."""
    integration.set_leaver_check(Integration.LeaverCheck.OFF, only_from=(Integration.LeaverCheck.WAITING,))
    record(request, Action.SSO_LEAVER_CHECK_FAILED, integration, Outcome.DENIED, reason=reason)


def turn_off(request, integration):
    """False when it was off already (say, turned off in a second tab a moment before)."""
    if not integration.set_leaver_check(
        Integration.LeaverCheck.OFF, only_from=(Integration.LeaverCheck.WAITING, *CHECKED)
    ):
        return False
    Integration.objects.filter(pk=integration.pk).update(
        leaver_held=0, leaver_held_digest="", leaver_held_list="", leaver_confirmed_digest=""
    )
    graph.forget_app_only_token(integration.tenant_id)
    record(request, Action.SSO_LEAVER_CHECK_OFF, integration)
    return True


def change_policy(request, integration, policy):
    if Integration.objects.filter(pk=integration.pk).exclude(leaver_policy=policy).update(leaver_policy=policy):
        integration.leaver_policy = policy
        record(request, Action.SSO_LEAVER_POLICY_CHANGED, integration, policy=policy)


def confirm_held(request, integration, digest):
    """Let a later run act on exactly the leavers the safety valve held back, under the same
    policy: if Microsoft then names other people, or the policy changed, they are held again.
    `digest` names the held set the administrator saw: a run that held another set since makes
    the confirmation count for nothing (0)."""
    held = integration.leaver_held
    if digest and Integration.objects.filter(pk=integration.pk, leaver_held_digest=digest).update(
        leaver_confirmed_digest=digest
    ):
        record(request, Action.SSO_LEAVERS_CONFIRMED, integration, leavers=held)
        return held
    return 0


def _held_list(leavers):
    """These leavers (connection and reason), as Integration.leaver_held_list keeps them."""
    return ",".join(f"{pk}:{reason}" for pk, reason in sorted(leavers))


def _digest(leavers, policy):
    """Names exactly these leavers (connection and reason) under this policy."""
    return hashlib.sha256(f"{policy};{_held_list(leavers)}".encode()).hexdigest()


# --- The check ---------------------------------------------------------------------------------------


def licensed_integrations():
    """Integrations a leaver check may run for: usable, under a valid licence."""
    valid_licence = Licence.objects.valid(Licence.Product.SSO).filter(company=OuterRef("company"))
    return Integration.objects.filter(Exists(valid_licence), status__in=Integration.WORKING)


def checked_integrations():
    """Integrations that every pass checks: the check on, or failing (to see whether it works again)."""
    return licensed_integrations().filter(leaver_check__in=CHECKED)


def _due(started):
    """Integrations to check, not yet checked in the pass that began at `started`."""
    return checked_integrations().filter(Q(leaver_checked_at__isnull=True) | Q(leaver_checked_at__lt=started))


class LeaseLost(Exception):
    """This runner was stuck past its lease, and another runner has claimed the integration since."""


def _claim(pk, started):
    """The integration, if this runner got it: nobody else holds a lease and it is still due. Its
    `leaver_lease_owner` is this claim's own random token."""
    now, owner = timezone.now(), secrets.token_hex(16)
    claimed = (
        _due(started)
        .filter(Q(leaver_lease_until__isnull=True) | Q(leaver_lease_until__lt=now), pk=pk)
        .update(leaver_lease_until=now + LEASE, leaver_lease_owner=owner)
    )
    if not claimed:
        return None
    return Integration.objects.select_related("company").filter(pk=pk, leaver_lease_owner=owner).first()


def _leased(integration):
    """The integration's row while this runner's claim still holds it."""
    return Integration.objects.filter(pk=integration.pk, leaver_lease_owner=integration.leaver_lease_owner)


def _renew(integration):
    """Keep the lease for another LEASE; LeaseLost when another runner holds it now."""
    if not _leased(integration).update(leaver_lease_until=timezone.now() + LEASE):
        raise LeaseLost


def _release(integration):
    """Checked: the lease ends, unless another runner holds it now (then that runner says when the
    integration was checked)."""
    _leased(integration).update(leaver_lease_until=None, leaver_lease_owner="", leaver_checked_at=timezone.now())


def _by_runner(action, integration, outcome=Outcome.SUCCESS, **details):
    """An audit event about `integration` that a run of the check did, not a person."""
    record(None, action, integration, outcome, actor_label=RUNNER, **details)


def _forget_abandoned_requests(now):
    """A check still waiting for the permission long after the administrator went to Microsoft
    (the trip's lifetime, and time for its answer to be checked) was never granted: it is off,
    and the page says so."""
    trip = PendingAuthorization.objects.filter(
        purpose=PendingAuthorization.Purpose.LEAVER_CONSENT, integration=OuterRef("pk"), expires_at__gt=now
    )
    patience = datetime.timedelta(seconds=settings.SSO_PENDING_LIFETIME + 3 * settings.ENTRA_HTTP_TIMEOUT + 60)
    waiting = Integration.objects.filter(leaver_check=Integration.LeaverCheck.WAITING).exclude(Exists(trip))
    for integration in waiting.filter(Q(leaver_requested_at__lt=now - patience) | Q(leaver_requested_at=None)):
        if integration.set_leaver_check(
            Integration.LeaverCheck.OFF, "permission_missing", only_from=(Integration.LeaverCheck.WAITING,)
        ):
            _by_runner(Action.SSO_LEAVER_CHECK_FAILED, integration, Outcome.FAILURE, reason="abandoned")


def check_all():
    """One pass over every integration with the check on. A summary of what it did."""
    started = timezone.now()
    _forget_abandoned_requests(started)
    summary = {"integrations": 0, "checked": 0, "acted": 0, "held": 0, "failing": 0}
    for pk in list(_due(started).order_by("pk").values_list("pk", flat=True)):
        integration = _claim(pk, started)
        if integration is None:
            continue  # another runner has it
        summary["integrations"] += 1
        try:
            outcome = check(integration)
        except LeaseLost:
            log.warning("Leaver check of integration %s stopped: its lease ran out and another runner has it", pk)
            outcome = {}
        except Exception:  # noqa: BLE001 (one integration's surprise must not stop the pass for all others)
            log.exception("Leaver check of integration %s stopped", pk)
            outcome = {"failing": 1}
        finally:
            _release(integration)
        for key, value in outcome.items():
            summary[key] += value
    return summary


def _looked_up(integration):
    """The connections whose Microsoft account is disabled or deleted, with the reason, and how
    many connections there are; MicrosoftError when Microsoft does not say so clearly about
    every one of them."""
    token, roles = graph.app_only_token(integration.tenant_id)
    if graph.READ_USERS_ROLE not in roles:  # granted since this runner's token was issued?
        token, roles = graph.app_only_token(integration.tenant_id, fresh=True)
    if graph.READ_USERS_ROLE not in roles:
        raise MicrosoftError("permission_missing", "no User.Read.All")
    leavers, total, last = [], 0, 0
    # Users already deactivated have lost access: they are neither looked up nor counted.
    # Of the integration's company's own users only: a user an operator moved to another company,
    # or made operator staff, is not this company's to act on.
    rows = Connection.objects.filter(
        integration=integration,
        user__is_active=True,
        user__company=integration.company_id,
        user__is_staff=False,
        user__is_superuser=False,
    )
    rows = rows.order_by("pk").values_list("pk", "oid")
    while batch := list(rows.filter(pk__gt=last)[: graph.BATCH_SIZE]):
        last = batch[-1][0]
        total += len(batch)
        enabled = graph.accounts_enabled(token, [str(oid) for _pk, oid in batch])
        for pk, oid in batch:
            state = enabled[str(oid)]  # every one answered, or accounts_enabled raised
            if state is not True:
                leavers.append((pk, Leaver.Reason.DELETED if state is None else Leaver.Reason.DISABLED))
        _renew(integration)  # before anyone is acted on: not when another runner has the integration
    return leavers, total


def check(integration):
    """Check one integration's connected users and act on its leavers."""
    try:
        leavers, total = _looked_up(integration)
    except MicrosoftError as error:
        _failing(integration, error)
        return {"failing": 1}
    # Asking Microsoft took a while: act only as the administrators want it now.
    integration.refresh_from_db(fields=["leaver_check", "leaver_policy", "leaver_confirmed_digest"])
    if integration.leaver_check not in CHECKED:
        return {"checked": total}
    if integration.leaver_check == Integration.LeaverCheck.FAILING and integration.set_leaver_check(
        Integration.LeaverCheck.ON, only_from=CHECKED
    ):
        _by_runner(Action.SSO_LEAVER_CHECK_ON, integration, policy=integration.leaver_policy, recovered=True)
    too_many = len(leavers) > LEAVER_SAFETY_MINIMUM and len(leavers) > LEAVER_SAFETY_SHARE * total
    digest = _digest(leavers, integration.leaver_policy)
    if too_many and digest != integration.leaver_confirmed_digest:
        _hold(integration, leavers, total, digest)
        return {"checked": total, "held": len(leavers)}
    acted = []
    try:
        for pk, reason in leavers:
            if done := _act(integration, pk, reason):
                acted.append(done)
    finally:  # an error part-way: those already acted on are still told about
        Integration.objects.filter(pk=integration.pk).update(
            leaver_held=0, leaver_held_digest="", leaver_held_list="", leaver_confirmed_digest=""
        )
        if acted:
            deactivated = any(leaver.policy == Integration.LeaverPolicy.DEACTIVATE for leaver in acted)
            tell_administrators(integration, "acted", acted=acted, deactivated=deactivated)
    return {"checked": total, "acted": len(acted)}


@transaction.atomic  # the action and its record: both or neither
def _act(integration, connection_pk, reason):
    """Apply the integration's policy to one leaver: a Leaver record, or None when there was
    nothing left to do (another runner did it, or the connection went meanwhile)."""
    connection = Connection.objects.select_related("user").filter(pk=connection_pk).first()
    if connection is None:
        return None
    user, policy = connection.user, integration.leaver_policy
    if policy == Integration.LeaverPolicy.DEACTIVATE:
        # Conditional: only the runner that deactivates records it. The connection stays, so
        # that the user's page shows which Microsoft account it was.
        if not user.deactivate():
            return None
    elif not Connection.objects.filter(pk=connection.pk).delete()[0]:
        return None
    else:  # they still sign in with their password: told, as after any disconnection, and why
        transaction.on_commit(lambda: notify(None, user, "disconnected", connection))
    leaver = Leaver.objects.create(
        user=user,
        integration=integration,
        tid=connection.tid,
        oid=connection.oid,
        username=connection.username,
        reason=reason,
        policy=policy,
    )
    AuditEvent.objects.record(
        Action.SSO_LEAVER,
        actor_label=RUNNER,
        company=integration.company,
        target=user,
        reason=reason,
        policy=policy,
        tenant=str(connection.tid),
        oid=str(connection.oid),
        microsoft_username=connection.username,
    )
    return leaver


def _failing(integration, error):
    """Nobody is changed. The check shows why; administrators are told the first time only."""
    log.warning("Leaver check of integration %s failing: %s", integration.pk, error)
    integration.set_leaver_check(Integration.LeaverCheck.FAILING, error.reason, error.code, only_from=CHECKED)
    first = Integration.objects.filter(pk=integration.pk, leaver_failure_notified_at__isnull=True).update(
        leaver_failure_notified_at=timezone.now()
    )
    if first:
        _by_runner(Action.SSO_LEAVER_CHECK_FAILED, integration, Outcome.FAILURE, reason=error.reason, code=error.code)
        tell_administrators(integration, "failing", error=error)


def _hold(integration, leavers, total, digest):
    """The safety valve: act on nobody, and ask an administrator to confirm (once per set of
    leavers; a confirmation of another set no longer counts)."""
    count, held_list = len(leavers), _held_list(leavers)
    changed = (
        Integration.objects.filter(pk=integration.pk)
        .exclude(leaver_held_digest=digest)
        .update(leaver_held=count, leaver_held_digest=digest, leaver_held_list=held_list, leaver_confirmed_digest="")
    )
    if changed:
        integration.leaver_held, integration.leaver_held_list = count, held_list
        _by_runner(Action.SSO_LEAVERS_HELD, integration, Outcome.DENIED, leavers=count, connected=total)
        tell_administrators(integration, "held", count=count, total=total, held=integration.held_leavers())
    else:  # the same set as before; held before this version, it kept no list: written now
        Integration.objects.filter(pk=integration.pk, leaver_held_digest=digest, leaver_held_list="").update(
            leaver_held_list=held_list
        )


def tell_administrators(integration, what, **context):
    """One email to each of the company's administrators: who lost access and why, that the
    check fails, or that leavers wait for confirmation. When the check has just deactivated the
    company's last administrators, operator staff are told instead, so that someone can give the
    company a new administrator."""
    company = integration.company
    administrators = (
        User.objects.of_company(company).filter(role=User.Role.ADMINISTRATOR, is_active=True).exclude(email="")
    )
    if not administrators.exists():
        administrators = User.objects.filter(is_staff=True, is_active=True).exclude(email="")
    for administrator in administrators:
        try:
            with administrator.addressed():  # each administrator's language and time zone
                subject = {
                    "acted": _("%(site)s: people who left %(company)s lost access"),
                    "failing": _("%(site)s: the leaver check of %(company)s is failing"),
                    "held": _("%(site)s: many leavers at once in %(company)s — please confirm"),
                }[what] % {"site": settings.SITE_NAME, "company": company.name}
                body = render_to_string(
                    "sso/email/leavers.txt",
                    {
                        "user": administrator,
                        "what": what,
                        "integration": integration,
                        "SITE_NAME": settings.SITE_NAME,
                        "SITE_URL": settings.SITE_URL,
                        **context,
                    },
                )
                send_mail(subject, body, None, [administrator.email])
        except (smtplib.SMTPException, OSError) as error:
            log.warning("Leaver notice to user %s not sent: %s", administrator.pk, error.__class__.__name__)
