"""Flow 2: a company administrator connects an Entra tenant through Microsoft's admin consent,
and the integration is verified; and, at the end of its life, deleted with its connections.

Nothing Microsoft's redirect carries is trusted by itself: the `state` must be one this browser
was given for this administrator and integration, and the `tenant` in the callback is only
recorded — the integration becomes active when Microsoft issues the app a token for the tenant
we stored (microsoft.confirm_app_in_tenant), and, the first time, after someone of that tenant
signed in there (start_tenant_sign_in)."""

from django.db import IntegrityError, transaction

from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.sso import flows, microsoft
from tenantlink.sso.flows import Refusal
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import Integration, PendingAuthorization


def record(request, action, integration, outcome=Outcome.SUCCESS, **details):
    """An audit event about `integration`, with its tenant."""
    return AuditEvent.objects.record(
        action,
        request=request,
        company=integration.company,
        target_label=integration.label,
        outcome=outcome,
        tenant=str(integration.tenant_id),
        **details,
    )


def add_integration(request, tenant_id, display_name):
    integration = Integration.objects.create(
        company=request.user.company, tenant_id=tenant_id, display_name=display_name, created_by=request.user
    )
    record(request, Action.SSO_INTEGRATION_ADDED, integration)
    return integration


def start_consent(request, integration):
    """The admin-consent address at Microsoft for `integration`, with a new single-use state."""
    state = PendingAuthorization.begin(
        request, PendingAuthorization.Purpose.CONSENT, user=request.user, integration=integration
    )
    record(request, Action.SSO_CONSENT_STARTED, integration)
    return microsoft.admin_consent_url(integration.tenant_id, state)


# verify's answer when the app is in the tenant, but nobody of the tenant has signed in there for
# this integration yet: the administrator is sent to start_tenant_sign_in.
SIGN_IN_FIRST = "sign_in_first"


def verify(request, integration, consent_completed=False, signed_in=None):
    """Ask Microsoft whether the app is in the integration's tenant; store and audit the answer.
    Returns None when it is and the integration works, SIGN_IN_FIRST when the integration has
    never worked and waits for someone of the tenant to sign in there (Microsoft is asked nothing
    before that), otherwise the MicrosoftError.
    `signed_in`: who of the tenant just signed in there for it (finish_tenant_sign_in), recorded
    with the outcome.

    The app being in a tenant shows that somebody there approved it once, not for which company:
    after one company deletes its integration the app stays approved in the tenant, and anyone
    can send a consent callback saying "approved" for their own `state`. So an integration that
    has never worked starts working only with a sign-in there of one of the tenant's own people."""
    details = signed_in or {}
    if integration.needs_tenant_sign_in and signed_in is None:
        # Nothing about the tenant is asked or told before then: whether the app is approved there
        # and whether another company holds it would tell any licensed administrator about any
        # organization (adding it, then Verify again or a consent answer of their own writing).
        if consent_completed:  # else (Verify again) nothing new is known: it stays as it is
            integration.waits("sign_in_pending", consent_completed=True)
        return SIGN_IN_FIRST
    try:
        if _held_by_another_company(integration):
            raise MicrosoftError("tenant_taken")
        # Someone just signed in there for the app, so it is there: "not found" is Microsoft's
        # servers not knowing it yet.
        microsoft.confirm_app_in_tenant(integration.tenant_id, just_approved=consent_completed or bool(signed_in))
        try:
            with transaction.atomic():
                integration.verified(consent_completed=consent_completed, tenant_signed_in=signed_in is not None)
        except IntegrityError:  # another company's became active meanwhile (the database decides)
            raise MicrosoftError("tenant_taken") from None
    except MicrosoftError as error:
        # A "no" from Microsoft makes the integration unusable. Microsoft being unreachable, or
        # refusing our own registration, says nothing about the tenant: a working integration
        # stays as it is.
        transient = error.reason in ("unavailable", "busy", "bad_answer", "configuration")
        # Approved, and not confirmed yet (or Microsoft could not be asked): Verify again later.
        if error.reason == "approval_propagating" or (
            transient and consent_completed and integration.status not in Integration.WORKING
        ):
            integration.waits(error.reason, error.code, consent_completed=True)
            return _not_verified(request, integration, error, False, **details)
        stops = not transient or integration.status not in Integration.WORKING
        return _not_verified(request, integration, error, stops, **details)
    record(request, Action.SSO_VERIFIED, integration, **details)
    return None


def _not_verified(request, integration, error, stops, **details):
    """Store (when it `stops` the integration) and audit a verification that did not succeed."""
    if stops:
        integration.fail(error.reason, error.code)
    record(
        request,
        Action.SSO_VERIFICATION_FAILED,
        integration,
        Outcome.FAILURE,
        code=error.code,
        reason=error.reason,
        **details,
    )
    return error


def start_tenant_sign_in(request, integration):
    """Microsoft's sign-in for the integration's tenant only. Right after approving there, the
    administrator goes through without a question."""
    flow = flows.flow_secrets()
    state = PendingAuthorization.begin(
        request, PendingAuthorization.Purpose.TENANT_SIGNIN, user=request.user, integration=integration, **flow
    )
    return microsoft.authorize_url(integration.tenant_id, state=state, **flow)


# Why a sign-in at the tenant did not count, kept as its refusal gave it ("tenant_sign_in" else).
_TENANT_SIGN_IN_REASONS = {
    "wrong_tenant",
    "guest",
    "unavailable",
    "busy",
    "bad_answer",
    "bad_token",
    "new_key",
    "configuration",
}


def finish_tenant_sign_in(request, pending, params):
    """Someone signed in at the integration's tenant (start_tenant_sign_in). One of the tenant's
    own people, not a guest there (whose `idp` names their home: anyone can be invited as a
    guest), lets the integration work once Microsoft confirms the app again. verify's answer, or
    the MicrosoftError."""
    integration = pending.integration
    try:
        claims = flows.microsoft_identity(request, pending, params)  # of the integration's tenant, or refused
        if not _is_member(claims):
            raise Refusal("guest", "idp", details=_signed_in_as(claims))
    except Refusal as refusal:
        reason = refusal.reason if refusal.reason in _TENANT_SIGN_IN_REASONS else "tenant_sign_in"
        # Before anyone of the tenant signed in for it, Microsoft's code for refusing a code tells
        # whether the app is approved there (AADSTS700016, or a code it does not know): for a code
        # the administrator may have made up, that is the answer verify() keeps to itself.
        code = "" if refusal.redeeming and integration.needs_tenant_sign_in else refusal.code
        if integration.status == Integration.Status.PENDING:  # it goes on waiting for a sign-in that counts
            integration.waits(reason, code)
        error = MicrosoftError(reason, code)
        return _not_verified(request, integration, error, False, step="tenant_sign_in", **refusal.details)
    return verify(request, integration, signed_in=_signed_in_as(claims))


def _is_member(claims):
    """Whether the person of a valid ID token's `claims` is one of its tenant's own people, not a
    guest there. A guest's token names the organization that signed them in (`idp`: their home
    tenant's https://sts.windows.net/{tid}/, or live.com, google.com, …); a member's names none,
    or exactly the tenant itself."""
    tid = claims["tid"]
    return claims.get("idp", claims["iss"]) in (f"https://sts.windows.net/{tid}/", claims["iss"])


def _signed_in_as(claims):
    """Who signed in at the tenant, for the audit log."""
    labels = flows.account_labels(claims)
    return {"signed_in_oid": labels["oid"], "microsoft_username": labels["microsoft_username"]}


def _held_by_another_company(integration):
    """Whether another company's integration of the same tenant works (active or disabled), when
    this one does not yet. The app being in the tenant shows that someone there approved it, not
    who: without this, any licensed company could claim a tenant another one has connected, by
    adding it and choosing Verify (or by sending its own consent callback)."""
    if integration.status in Integration.WORKING:
        return False
    others = Integration.objects.filter(tenant_id=integration.tenant_id, status__in=Integration.WORKING)
    return others.exclude(company=integration.company_id).exists()


def consent_error(params):
    """MicrosoftError for the error a consent callback carries (branch on codes, never on text)."""
    code = microsoft.error_code(params)
    error = params.get("error", "")
    if code == "AADSTS65004":
        return MicrosoftError("declined", code)
    if code == "AADSTS50020":
        return MicrosoftError("wrong_tenant", code)
    if code in microsoft.APPROVAL_REQUIRED_CODES or error == "consent_required":
        return MicrosoftError("approval_required", code)
    if error in ("temporarily_unavailable", "server_error"):
        return MicrosoftError("unavailable", code or error)
    if error == "access_denied":
        # Cancelled at Microsoft, or left the "Need admin approval" page: neither says more.
        return MicrosoftError("cancelled", code or error)
    return MicrosoftError("refused", code or error)


def finish_consent(request, integration, params):
    """Microsoft sent the administrator back. Returns None when the integration is active now,
    "licence" when the licence ended meanwhile (nothing activated), else the MicrosoftError."""
    if params.get("error"):  # Microsoft's answer first, so its code is never lost
        error = consent_error(params)
        # Approving again and then cancelling changes nothing at Microsoft: an integration that
        # works (active, or disabled by the administrator) stays as it is.
        if integration.status not in Integration.WORKING:
            integration.fail(error.reason, error.code)
        record(
            request,
            Action.SSO_CONSENT_FAILED,
            integration,
            Outcome.FAILURE,
            code=error.code,
            error=params["error"][:60],
            subcode=params.get("error_subcode", "")[:60],
        )
        return error
    if not integration.company.has_sso():
        record(request, Action.SSO_CONSENT_FAILED, integration, Outcome.DENIED, reason="licence")
        return "licence"
    if params.get("admin_consent", "").lower() != "true":
        error = MicrosoftError("bad_answer", "no admin_consent")
        if integration.status not in Integration.WORKING:  # says nothing of the tenant either
            integration.fail(error.reason, error.code)
        record(request, Action.SSO_CONSENT_FAILED, integration, Outcome.FAILURE, code=error.code)
        return error
    # The reported tenant is written down for the record only; it is never used.
    record(request, Action.SSO_CONSENT_SUCCEEDED, integration, reported_tenant=microsoft.reported_tenant(params))
    return verify(request, integration, consent_completed=True)


def delete_integration(request, integration):
    """Delete the integration with its connections (by its company's administrator); the number of
    connections removed, or None when it was gone already."""
    with transaction.atomic():
        if not lock_for_deletion(integration):
            return None
        removed = record_connections_going(request, integration)  # under the lock: all there are
        integration.delete()
        record(request, Action.SSO_INTEGRATION_DELETED, integration, removed_connections=removed)
    return removed


def lock_for_deletion(integration):
    """Inside a transaction: whether the integration still exists, locked. Of two deleting it at
    the same moment the second waits and finds it gone, instead of recording its deletion (and
    everybody's connection going) twice; and nobody connects through it meanwhile, unrecorded."""
    return Integration.objects.select_for_update().filter(pk=integration.pk).exists()


def record_connections_going(request, integration):
    """Before an integration is deleted (by its company's administrator or by operator staff):
    each person whose connection goes with it has that in their own audit history, as if they had
    removed it, with the reason. Nobody is emailed: one decision for the whole company. The
    number of connections."""
    connections = integration.connections.select_related("user").only("tid", "oid", "user").order_by("pk")
    return AuditEvent.objects.record_each(
        Action.SSO_DISCONNECTED,
        ((c.user, {"tenant": str(c.tid), "oid": str(c.oid)}) for c in connections.iterator(chunk_size=1000)),
        request=request,
        reason="integration_deleted",
    )
