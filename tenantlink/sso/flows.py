"""Flows 3–5: users connect their Microsoft account, sign in with it, and remove it (flow 2, an
administrator connecting a tenant, is in consent.py).

Nothing Microsoft's redirect carries is trusted by itself: the `state` must be one this browser
was given for this purpose (and, to connect, this user), and the account is the ID token's
(tid, oid) after every check (id_tokens.py)."""

import datetime
import hashlib
import logging
import secrets
import smtplib
import uuid

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from tenantlink.accounts import throttle
from tenantlink.accounts.flows import complete_signin, done_by, is_recent_full_signin, moment_in_words
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.lib import net, queries
from tenantlink.lib.queries import Prepared
from tenantlink.sso import id_tokens, microsoft, requirement
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import Connection, DeclinedOffer, Integration, PendingAuthorization

log = logging.getLogger(__name__)


CONNECTION_KEY = "microsoft_connection"  # in a session opened with Microsoft: the connection's id
ANSWERED_KEY = "microsoft_answered"  # the last answer this session finished: its state's digest, and where it led


def remember_answered(request, state, next_url):
    """Back from the page that Microsoft's answer led to goes back to Microsoft, which answers
    again with the same, used, state: answered_before() lets that land where the first one did."""
    request.session[ANSWERED_KEY] = {"state": hashlib.sha256(state.encode()).hexdigest(), "next": next_url}


def answered_before(request, state):
    """Where this session's last finished answer led, if `state` is that answer's; else None."""
    answered = request.session.get(ANSWERED_KEY)
    if not answered or not state:
        return None
    return (
        answered["next"]
        if constant_time_compare(answered["state"], hashlib.sha256(state.encode()).hexdigest())
        else None
    )


class Refusal(Exception):
    """A Microsoft sign-in or connection that must not happen; `reason` picks the message.
    `details`: what the audit event may say of the account, when its token was valid.
    `redeeming`: Microsoft's token endpoint refused the code the browser brought (its words are
    Microsoft's answer to the portal, about a code anyone may have made up)."""

    def __init__(self, reason, code="", user=None, details=None, redeeming=False):
        self.reason, self.code, self.user, self.details = reason, code, user, details or {}
        self.redeeming = redeeming
        super().__init__(reason)


def active_integrations(company):
    """The company's usable integrations: none without a valid licence."""
    if company is None or not company.has_sso():
        return []
    return list(company.sso_integrations.filter(status=Integration.Status.ACTIVE))


def may_connect(user):
    # Operator staff keep the portal's own password and second factor: their access to every
    # company must not rest on one customer's Microsoft tenant.
    if user.is_operator:
        return False
    return bool(active_integrations(user.company)) and not Connection.objects.filter(user=user).exists()


def flow_secrets():
    """A new flow's nonce and PKCE verifier (its `state` is its PendingAuthorization's)."""
    # PKCE verifier: 43–128 characters (RFC 7636); token_urlsafe(64) gives 86.
    return {"nonce": secrets.token_urlsafe(32), "code_verifier": secrets.token_urlsafe(64)}


def start_connect(request, next_url):
    """The Microsoft sign-in address for connecting the signed-in user's account. With one active
    integration, Microsoft is asked for that tenant only; with several, for any work account."""
    integrations = active_integrations(request.user.company)
    single = integrations[0] if len(integrations) == 1 else None
    flow = flow_secrets()
    state = PendingAuthorization.begin(
        request, PendingAuthorization.Purpose.CONNECT, user=request.user, integration=single, next_url=next_url, **flow
    )
    tenant = single.tenant_id if single else "organizations"
    return microsoft.authorize_url(tenant, state=state, prompt="select_account", **flow)


def start_signin(request, next_url, prompt=None):
    flow = flow_secrets()
    state = PendingAuthorization.begin(request, PendingAuthorization.Purpose.SIGNIN, next_url=next_url, **flow)
    # No prompt (but after a refusal, see views.signin): someone signed in at Microsoft goes straight through.
    return microsoft.authorize_url("organizations", state=state, prompt=prompt, **flow)


# How the token endpoint refuses a code it never gave, or gave and took back: what a made-up answer
# gets, counted against the client's address (the rest would pause whole offices for the operator's
# expired client secret, or Microsoft's bad day).
_MADE_UP_CODE = {"code_expired", "refused"}
# Refusals of the person that Microsoft may give on the way back or when the code is redeemed.
_PERSON_REFUSED = {"AADSTS50105": "not_assigned", "AADSTS53003": "conditional_access"}


def _authorization_error(params):
    code = microsoft.error_code(params)
    error = params.get("error", "")
    if code in microsoft.APPROVAL_REQUIRED_CODES or error == "consent_required":
        return Refusal("approval_required", code)
    if code == "AADSTS65004":  # the person declined the permissions asked for
        return Refusal("cancelled", code)
    if code == "AADSTS50020":
        return Refusal("wrong_tenant", code)
    if code in _PERSON_REFUSED:
        return Refusal(_PERSON_REFUSED[code], code)
    if error in ("temporarily_unavailable", "server_error"):
        return Refusal("unavailable", code or error)
    if error == "access_denied" and code in ("", "access_denied"):
        return Refusal("cancelled", code or error)
    return Refusal("refused", code or net.printable(error, 40))


def microsoft_identity(request, pending, params):
    """The validated ID-token claims of the account Microsoft sent back; Refusal otherwise.
    Microsoft's own errors first, then the code, redeemed once, then the token's every check. A
    code that fails counts against the client's address (tenantlink.accounts.throttle)."""
    if params.get("error"):
        raise _authorization_error(params)
    code = params.get("code", "")
    if not code or len(code) > 4000:
        raise Refusal("bad_answer", "no code")
    if not throttle.begin_microsoft_answer(request):
        raise Refusal("paused", "address")
    tenant = pending.integration.tenant_id if pending.integration else "organizations"
    try:
        claims = id_tokens.validate(microsoft.redeem_code(tenant, code, pending.code_verifier), pending.nonce)
    except MicrosoftError as error:
        if error.reason in _MADE_UP_CODE:
            throttle.microsoft_answer_failed(request)
        else:  # Microsoft's trouble, or the portal's (its registration, a key just rolled): nobody's guess
            throttle.microsoft_answer_passed(request)
        # The token endpoint's refusals of a person read as on the way back.
        raise Refusal(_PERSON_REFUSED.get(error.code, error.reason), error.code, redeeming=True) from None
    throttle.microsoft_answer_passed(request)
    if pending.integration and claims["tid"] != str(pending.integration.tenant_id):
        raise Refusal("wrong_tenant", "tid")
    return claims


def account_labels(claims):
    """What the audit log may say of the Microsoft account of valid claims."""
    return {
        "tid": claims["tid"],
        "oid": claims["oid"],
        "microsoft_username": net.printable(claims.get("preferred_username", ""), 254),
    }


def finish_connect(request, pending, params):
    """Connect the Microsoft account of the callback to the signed-in user; the Connection,
    or Refusal. Nothing is written unless every check passed."""
    user = request.user
    try:
        claims = microsoft_identity(request, pending, params)
        if not is_recent_full_signin(request):
            raise Refusal("not_recent")
        tid, oid = claims["tid"], claims["oid"]
        if tid == microsoft.PERSONAL_ACCOUNTS_TENANT:
            raise Refusal("personal_account")
        if user.is_operator:
            raise Refusal("staff")
        integration = next((i for i in active_integrations(user.company) if str(i.tenant_id) == tid), None)
        if integration is None:
            raise Refusal("tenant_not_integrated", tid)
        try:
            with transaction.atomic():
                connection = Connection.objects.create(
                    user=user,
                    integration=integration,
                    tid=tid,
                    oid=oid,
                    display_name=net.printable(claims.get("name", ""), 200),
                    username=net.printable(claims.get("preferred_username") or claims.get("email") or "", 254),
                )
        except IntegrityError:  # the database decides races: two connects, or the integration deleted meanwhile
            if not Integration.objects.filter(pk=integration.pk).exists():
                raise Refusal("tenant_not_integrated", tid) from None
            raise Refusal("already_connected" if Connection.objects.filter(user=user).exists() else "taken") from None
        # Connected after all: "Don't ask again" (or turning it off) no longer stands, and should an
        # administrator remove this connection, the offer comes back at the next sign-in.
        DeclinedOffer.objects.filter(user=user).delete()
    except Refusal as refusal:
        AuditEvent.objects.record(
            Action.SSO_CONNECT_FAILED,
            request=request,
            target=user,
            outcome=Outcome.FAILURE,
            reason=refusal.reason,
            code=refusal.code,
        )
        raise
    AuditEvent.objects.record(
        Action.SSO_CONNECTED, request=request, target=user, tenant=tid, oid=oid, microsoft_username=connection.username
    )
    notify(request, user, "connected", connection)
    return connection


def _identity(tid, oid, now):
    valid_licence = Licence.objects.valid(Licence.Product.SSO, now).filter(company=OuterRef("user__company"))
    return (
        Connection.objects.select_related("user__company", "integration")
        .annotate(licensed=Exists(valid_licence))
        # Only through an integration of the user's own company (a user moved to another company
        # by an operator is not signed in through the old one's).
        .filter(tid=tid, oid=oid, integration__company=F("user__company"))
    )


_connection_of = Prepared(_identity, tid=uuid.UUID, oid=uuid.UUID, now=datetime.datetime)


def connection_of(tid, oid):
    """The connection of the Microsoft account (tid, oid: GUIDs), with its user, the user's
    company and the integration, and `licensed`: whether the user's company holds a valid SSO
    licence. One query, composed once: the sign-in's lookup."""
    return _connection_of.one(tid=uuid.UUID(str(tid)), oid=uuid.UUID(str(oid)), now=timezone.now())


def finish_signin(request, pending, params):
    """Sign in the portal user connected to the Microsoft account of the callback; where to go
    next, or Refusal. The account is found by (tid, oid) and by nothing else."""
    user, claims = None, {}
    try:
        claims = microsoft_identity(request, pending, params)
        tid, oid = claims["tid"], claims["oid"]
        if tid == microsoft.PERSONAL_ACCOUNTS_TENANT:
            raise Refusal("personal_account")
        connection = connection_of(tid, oid)
        if connection is None:
            # "Connect it first" only where connecting works: not through a tenant still waiting
            # for its approval, nor another company's that failed, nor one switched off.
            usable = Integration.objects.filter(tenant_id=tid, status=Integration.Status.ACTIVE).exists()
            raise Refusal("not_connected" if usable else "unknown_tenant")
        user = connection.user
        if not user.is_active:
            raise Refusal("deactivated")
        if user.is_operator:
            raise Refusal("staff")
        if user.company is None or not connection.licensed:
            raise Refusal("licence")
        if connection.integration.status != Integration.Status.ACTIVE:
            raise Refusal("integration_disabled")
    except Refusal as refusal:
        details = refusal.details = account_labels(claims) if claims else {}
        AuditEvent.objects.record(
            Action.SIGNIN_FAILED,
            request=request,
            target=user,
            target_label="" if user else details.get("microsoft_username", ""),
            outcome=Outcome.DENIED,
            method="microsoft",
            reason=refusal.reason,
            code=refusal.code,
            **details,
        )
        raise
    next_url = pending.next_url or reverse("portal")
    complete_signin(request, user, "microsoft")
    request.session[CONNECTION_KEY] = connection.pk
    connection.last_signin_at = timezone.now()
    queries.update(connection, "last_signin_at")
    return next_url


def disconnect(request, connection, company=None):
    """Remove a Microsoft connection (by its user or an administrator); audited (in the log of
    `company`, else the user's), user told. False when it was gone already (say, removed in a
    second tab a moment before)."""
    user = connection.user
    if not Connection.objects.filter(pk=connection.pk).delete()[0]:
        return False
    AuditEvent.objects.record(
        Action.SSO_DISCONNECTED,
        request=request,
        target=user,
        company=company,
        tenant=str(connection.tid),
        oid=str(connection.oid),
    )
    notify(request, user, "disconnected", connection)
    return True


def drop_connections_not_its_own(sender, request, user, **kwargs):
    """accounts.flows.standing_changed: a Microsoft account signs a user in through their
    company's integration; moved to another company, the user keeps none through the old one's,
    and made operator staff, none at all (else the customer's tenant would hold, and its leaver
    check could end, operator access)."""
    connections = Connection.objects.filter(user=user).select_related("integration__company")
    if not user.is_operator:
        connections = connections.exclude(integration__company=user.company_id)
    for connection in connections:  # in the log of the company whose tenant it was
        disconnect(request, connection, company=connection.integration.company)


def _usable(connection_id, user_id, now, since):
    # Valid now, and since the sign-in: not one granted after a lapse, nor one interrupted since.
    # A licence row's valid_from stands for the first (the licence command extends the row in
    # force and starts a new one only after a lapse; a row handed over to a new one without a gap
    # is read by its valid_from as it stands); its interrupted_at for the second (revoked and
    # restored, or its dates changed in the operator admin so that it lapsed for a while).
    valid_licence = Licence.objects.valid(Licence.Product.SSO, now).filter(
        Q(interrupted_at__isnull=True) | Q(interrupted_at__lt=since),
        company=OuterRef("integration__company"),
        valid_from__lte=since,
    )
    active = Q(integration__active_since__isnull=True) | Q(integration__active_since__lte=since)
    return Connection.objects.filter(
        active, Exists(valid_licence), pk=connection_id, user=user_id, integration__status=Integration.Status.ACTIVE
    )


_still_usable = Prepared(
    _usable, "exists", connection_id=int, user_id=int, now=datetime.datetime, since=datetime.datetime
)


def still_usable(connection_id, user, signed_in_at):
    """Whether a session opened with Microsoft at `signed_in_at` (a time.time()) may go on: the
    connection exists, its integration has been active and the company's licence valid since then
    (a session that made no request while the integration was disabled, or the licence lapsed,
    does not come back with them; a deactivated user is signed out by Django), and the user has
    not been made operator staff since (operator access never rests on a customer's tenant). One
    query, composed once: it runs on every request of such a session."""
    if user.is_operator:
        return False
    since = datetime.datetime.fromtimestamp(signed_in_at, datetime.UTC)
    return _still_usable.exists(connection_id=int(connection_id), user_id=user.pk, now=timezone.now(), since=since)


def notify(request, user, what, connection):
    """Tell the user by email that a Microsoft account was connected or disconnected: if it was
    not them, they should know at once; if someone else did it, who. `request` is None for the
    leaver check."""
    if not user.email:
        return
    context = {
        "user": user,
        "what": what,
        "connection": connection,
        "by": done_by(request, user, without_request="leaver_check"),
        # Disconnected while the company requires Microsoft sign-in: not back to the password.
        "required": what == "disconnected" and requirement.asked_of(user),
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
    }
    try:
        with user.addressed():
            subject = {
                "connected": _("A Microsoft account was connected to your %(site)s account"),
                "disconnected": _("Microsoft sign-in was removed from your %(site)s account"),
            }[what] % {"site": settings.SITE_NAME}
            body = render_to_string("sso/email/connection.txt", {**context, "when": moment_in_words(timezone.now())})
            send_mail(subject, body, None, [user.email])
    except (smtplib.SMTPException, OSError) as error:
        log.warning("Connection notice to user %s not sent: %s", user.pk, error.__class__.__name__)
