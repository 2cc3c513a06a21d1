"""Flow 2 and the integration half of flow 6: company administrators connect their Microsoft
Entra tenants (admin consent), verify, disable, enable and delete them. Every integration is
found through tenantlink.companies.scoping, so another company's answer 404."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.companies.models import Licence
from tenantlink.companies.scoping import company_admin_required, company_objects, get_company_object
from tenantlink.lib.middleware import not_for_head
from tenantlink.sso import adoption, consent, leavers, microsoft, requirement
from tenantlink.sso.forms import AddIntegrationForm, LeaverPolicyForm
from tenantlink.sso.models import Integration, PendingAuthorization
from tenantlink.sso.reasons import GRANT_ADMIN_CONSENT, NEEDS_ADMIN_CONSENT

NOT_CONFIGURED = gettext_lazy(
    "Single sign-on with Microsoft is not configured on this installation. Ask the operator of the portal."
)
NOT_THIS_SETUP = gettext_lazy(
    "This answer from Microsoft does not belong to a set-up started in this browser, or it came "
    "too late or a second time, so nothing was changed. Start again with “Retry consent”."
)


def _refusal(request):
    """Why integrations cannot be added, enabled, verified or approved now; None when they can."""
    if not microsoft.is_configured():
        return NOT_CONFIGURED
    if not request.user.company.has_sso():
        return _(
            "Your company has no valid single sign-on licence, so integrations cannot be added, "
            "enabled or approved. Existing ones are kept and work again when the licence is renewed."
        )
    return None


def _refused(request):
    refusal = _refusal(request)
    if refusal:
        messages.error(request, refusal)
    return refusal is not None


def _integration(request, integration_id):
    return get_company_object(request, Integration.objects.select_related("company"), pk=integration_id)


def _explain(request, integration, error):
    """Tell the administrator what went wrong, what to do, and the error code for support."""
    text = error.message
    if error.reason in NEEDS_ADMIN_CONSENT:
        text += " " + GRANT_ADMIN_CONSENT % {"app": settings.SITE_NAME}
    if error.code:
        text += " " + _("(Error code: %(code)s)") % {"code": error.code}
    messages.error(request, text)


@company_admin_required
def overview(request):
    company = request.user.company
    integrations = list(company_objects(request, Integration.objects).select_related("created_by").with_adoption())
    for integration in integrations:
        integration.leaver_form = LeaverPolicyForm(
            auto_id=f"leavers-{integration.pk}-%s", initial={"policy": integration.leaver_policy}
        )
    last_licence = company.licences.filter(product=Licence.Product.SSO).first()
    context = {
        "configured": microsoft.is_configured(),
        "licence": company.current_licence(Licence.Product.SSO),
        "last_licence": last_licence,
        "integrations": integrations,
        "chart": adoption.company_chart(company),
        "grant_admin_consent": GRANT_ADMIN_CONSENT % {"app": settings.SITE_NAME},
        # Seen here first after an integration is disabled or deleted: the pause is recorded now.
        "requirement": requirement.evaluate(company),
        "can_require": not company.microsoft_required and requirement.refusal(company) is None,
    }
    return render(request, "sso/integrations.html", context)


@company_admin_required
@require_http_methods(["GET", "POST"])
def add(request):
    if _refused(request):
        return redirect("sso_integrations")
    form = AddIntegrationForm(request.user.company, data=request.POST if request.method == "POST" else None)
    if form.is_valid() and form.existing:
        # The name typed this time, if any; an UPDATE, which also finds it deleted meanwhile.
        name = form.cleaned_data["display_name"]
        if not Integration.objects.filter(pk=form.existing.pk).update(display_name=name):
            messages.info(request, _("%(name)s was already deleted. Nothing changed.") % {"name": name})
            return redirect("sso_integrations")
        form.existing.display_name = name
        return redirect(consent.start_consent(request, form.existing))
    if form.is_valid():
        try:
            with transaction.atomic():
                integration = consent.add_integration(request, form.tenant_id, form.cleaned_data["display_name"])
        except IntegrityError:  # the same tenant, added at the same moment in another tab
            form.add_error("tenant", _("This tenant is already in your list."))
        else:
            return redirect(consent.start_consent(request, integration))
    return render(request, "sso/add.html", {"form": form})


@company_admin_required
@require_POST
def retry_consent(request, integration_id):
    integration = _integration(request, integration_id)
    if _refused(request):
        return redirect("sso_integrations")
    return redirect(consent.start_consent(request, integration))


@login_required
@require_GET
@not_for_head
def consent_callback(request):
    """Microsoft sends the administrator back here after admin consent (the one fixed redirect URI)."""
    pending = PendingAuthorization.take(
        request,
        request.GET.get("state"),
        PendingAuthorization.Purpose.CONSENT,
        PendingAuthorization.Purpose.LEAVER_CONSENT,
    )
    if pending is None or pending.user_id != request.user.pk or pending.integration is None:
        AuditEvent.objects.record(
            Action.SSO_CONSENT_FAILED,
            request=request,
            outcome=Outcome.DENIED,
            reason="state",
            reported_tenant=microsoft.reported_tenant(request.GET),
        )
        messages.error(request, NOT_THIS_SETUP)
        return redirect("sso_integrations" if request.user.is_company_admin else "portal")
    request.came_back_from_microsoft = True  # the administrator signed in there (tenantlink.sso.middleware)
    integration = pending.integration
    if not request.user.is_company_admin or integration.company_id != request.user.company_id:
        raise PermissionDenied
    if pending.purpose == PendingAuthorization.Purpose.LEAVER_CONSENT:
        return _leaver_consent_callback(request, integration)
    return _activation(request, integration, consent.finish_consent(request, integration, request.GET))


def tenant_sign_in_callback(request, pending):
    """Someone of the tenant signed in there for a new integration (consent.start_tenant_sign_in);
    Microsoft sends every sign-in back to the one sign-in callback, which hands it over here."""
    integration = pending.integration
    if not request.user.is_authenticated or request.user.pk != pending.user_id or integration is None:
        messages.error(request, NOT_THIS_SETUP)
        return redirect("signin" if not request.user.is_authenticated else "portal")
    if not request.user.is_company_admin or integration.company_id != request.user.company_id:
        raise PermissionDenied
    if _refused(request):
        return redirect("sso_integrations")
    return _activation(request, integration, consent.finish_tenant_sign_in(request, pending, request.GET))


def _activation(request, integration, result):
    """The page after a step of flow 2 at Microsoft: the next step, or what came of it."""
    if result == consent.SIGN_IN_FIRST:
        return redirect(consent.start_tenant_sign_in(request, integration))
    if result == "licence":
        messages.error(
            request,
            _(
                "Your company's single sign-on licence ended while you were at Microsoft, so "
                "%(name)s was not activated. It can be approved again when the licence is renewed."
            )
            % {"name": integration.display_name},
        )
    elif result is not None:
        _explain(request, integration, result)
    else:
        messages.success(
            request, _("%(name)s is active: Microsoft confirmed the approval.") % {"name": integration.display_name}
        )
    return redirect("sso_integrations")


def _leaver_consent_callback(request, integration):
    # What turning it on needs must still hold: the licence may have ended, or the integration
    # been disabled, while the administrator was at Microsoft.
    inactive = integration.status != Integration.Status.ACTIVE
    if _refused(request) or inactive:
        if inactive:
            messages.error(request, _("The leaver check needs an active integration."))
        leavers.give_up_waiting(request, integration, "integration" if inactive else "licence")
        return redirect("sso_integrations")
    error = leavers.finish_consent(request, integration, request.GET)
    if error is not None:
        _explain(request, integration, error)
    else:
        messages.success(
            request,
            _("The leaver check of %(name)s is on: Microsoft granted the permission.")
            % {"name": integration.display_name},
        )
    return redirect("sso_integrations")


@company_admin_required
@require_POST
def verify(request, integration_id):
    integration = _integration(request, integration_id)
    if _refused(request):
        return redirect("sso_integrations")
    error = consent.verify(request, integration)
    if error == consent.SIGN_IN_FIRST:
        return redirect(consent.start_tenant_sign_in(request, integration))
    if error is not None:
        _explain(request, integration, error)
    else:
        messages.success(request, _("Microsoft confirms %(name)s.") % {"name": integration.display_name})
    return redirect("sso_integrations")


@company_admin_required
@require_http_methods(["GET", "POST"])
def disable(request, integration_id):
    """It signs out at once everyone signed in with Microsoft through it: the button asks first."""
    integration = _integration(request, integration_id)
    if request.method == "GET" and integration.status == Integration.Status.ACTIVE:
        context = {"integration": integration, "connected": integration.connections.count()}
        return render(request, "sso/disable.html", context)
    if request.method == "GET" or not integration.disable():
        messages.info(request, _("%(name)s was not active, so nothing changed.") % {"name": integration.display_name})
    else:
        consent.record(request, Action.SSO_INTEGRATION_DISABLED, integration)
        messages.success(
            request,
            _("%(name)s is disabled: its users cannot sign in with Microsoft until it is enabled again.")
            % {"name": integration.display_name},
        )
    return redirect("sso_integrations")


@company_admin_required
@require_POST
def enable(request, integration_id):
    integration = _integration(request, integration_id)
    if _refused(request):
        return redirect("sso_integrations")
    if not integration.enable():
        messages.info(request, _("%(name)s was not disabled, so nothing changed.") % {"name": integration.display_name})
    else:
        consent.record(request, Action.SSO_INTEGRATION_ENABLED, integration)
        messages.success(request, _("%(name)s is enabled again.") % {"name": integration.display_name})
    return redirect("sso_integrations")


@company_admin_required
@require_http_methods(["GET", "POST"])
def delete(request, integration_id):
    integration = _integration(request, integration_id)
    if request.method == "POST":
        removed = consent.delete_integration(request, integration)
        if removed is None:
            messages.info(
                request, _("%(name)s was already deleted. Nothing changed.") % {"name": integration.display_name}
            )
            return redirect("sso_integrations")
        messages.success(
            request,
            ngettext(
                "%(name)s is deleted; %(count)d Microsoft connection was removed.",
                "%(name)s is deleted; %(count)d Microsoft connections were removed.",
                removed,
            )
            % {"name": integration.display_name, "count": removed},
        )
        return redirect("sso_integrations")
    connected = integration.connections.count()
    return render(request, "sso/delete.html", {"integration": integration, "connected": connected})
