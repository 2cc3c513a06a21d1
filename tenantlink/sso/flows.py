"""Flow 2: a company administrator connects an Entra tenant through Microsoft's admin consent.

Nothing Microsoft's redirect carries is trusted by itself: the `state` must be one this browser
was given for this administrator and integration, and the `tenant` in the callback is only
recorded — the integration becomes active when Microsoft issues the app a token for the tenant
we stored (microsoft.confirm_app_in_tenant)."""

from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.sso import microsoft
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


def verify(request, integration, consent_completed=False):
    """Ask Microsoft whether the app is in the integration's tenant; store and audit the answer.
    Returns None when it is, otherwise the MicrosoftError."""
    try:
        microsoft.confirm_app_in_tenant(integration.tenant_id)
    except MicrosoftError as error:
        # A "no" from Microsoft makes the integration unusable. Microsoft being unreachable, or
        # refusing our own registration, says nothing about the tenant: a working integration
        # stays as it is.
        transient = error.reason in ("unavailable", "bad_answer", "configuration")
        if (
            consent_completed
            or not transient
            or integration.status
            not in (
                Integration.Status.ACTIVE,
                Integration.Status.DISABLED,
            )
        ):
            integration.fail(error.reason, error.code)
        record(
            request, Action.SSO_VERIFICATION_FAILED, integration, Outcome.FAILURE, code=error.code, reason=error.reason
        )
        return error
    integration.verified(consent_completed=consent_completed)
    record(request, Action.SSO_VERIFIED, integration)
    return None


def _consent_error(params):
    """MicrosoftError for the error a consent callback carries (branch on codes, never on text)."""
    code = microsoft.error_code(params)
    error = params.get("error", "")
    if code == "AADSTS65004":
        return MicrosoftError("declined", code)
    if code == "AADSTS50020":
        return MicrosoftError("wrong_tenant", code)
    if code in ("AADSTS65001", "AADSTS90094", "AADSTS90095", "AADSTS900941") or error == "consent_required":
        return MicrosoftError("approval_required", code)
    if error == "access_denied":
        # Cancelled at Microsoft, or left the "Need admin approval" page: neither says more.
        return MicrosoftError("cancelled", code or error)
    return MicrosoftError("refused", code or error)


def finish_consent(request, integration, params):
    """Microsoft sent the administrator back. Returns None when the integration is active now,
    "licence" when the licence ended meanwhile (nothing changed), else the MicrosoftError."""
    if not integration.company.has_sso():
        record(request, Action.SSO_CONSENT_FAILED, integration, Outcome.DENIED, reason="licence")
        return "licence"
    if params.get("error"):
        error = _consent_error(params)
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
    if params.get("admin_consent", "").lower() != "true":
        error = MicrosoftError("bad_answer", "no admin_consent")
        integration.fail(error.reason, error.code)
        record(request, Action.SSO_CONSENT_FAILED, integration, Outcome.FAILURE, code=error.code)
        return error
    # The reported tenant is written down for the record only; it is never used.
    record(request, Action.SSO_CONSENT_SUCCEEDED, integration, reported_tenant=params.get("tenant", "")[:64])
    return verify(request, integration, consent_completed=True)
