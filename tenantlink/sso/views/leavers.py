"""The leaver check of an integration (company administrators): turn it on through Microsoft's
admin consent for the Graph permission, choose what it does, turn it off, and confirm leavers
that the safety valve held back. The check itself runs in `manage.py check_leavers`."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.companies.scoping import company_admin_required
from tenantlink.sso import leavers
from tenantlink.sso.forms import LeaverPolicyForm
from tenantlink.sso.models import Integration
from tenantlink.sso.views.integrations import _integration, _refused


@company_admin_required
@require_http_methods(["GET", "POST"])
def turn_on(request, integration_id):
    """What the permission lets the portal read and who at Microsoft may grant it; then Microsoft."""
    integration = _integration(request, integration_id)
    if _refused(request):
        return redirect("sso_integrations")
    if integration.status != Integration.Status.ACTIVE:
        messages.error(request, _("The leaver check needs an active integration."))
        return redirect("sso_integrations")
    form = LeaverPolicyForm(
        data=request.POST if request.method == "POST" else None, initial={"policy": integration.leaver_policy}
    )
    if form.is_valid():
        return redirect(leavers.start_consent(request, integration, form.cleaned_data["policy"]))
    return render(request, "sso/leavers.html", {"integration": integration, "form": form})


@company_admin_required
@require_http_methods(["GET", "POST"])
def turn_off(request, integration_id):
    """People who leave keep their access once it is off, and turning it on again needs a
    Microsoft administrator: the button asks first."""
    integration = _integration(request, integration_id)
    if request.method == "GET":
        if integration.leaver_check == Integration.LeaverCheck.OFF:
            messages.info(
                request, _("The leaver check of %(name)s was already off.") % {"name": integration.display_name}
            )
            return redirect("sso_integrations")
        return render(request, "sso/leavers_off.html", {"integration": integration})
    if leavers.turn_off(request, integration):
        messages.success(request, _("The leaver check of %(name)s is off.") % {"name": integration.display_name})
    else:
        messages.info(request, _("The leaver check of %(name)s was already off.") % {"name": integration.display_name})
    return redirect("sso_integrations")


@company_admin_required
@require_POST
def change_policy(request, integration_id):
    integration = _integration(request, integration_id)
    form = LeaverPolicyForm(data=request.POST)
    if form.is_valid():
        leavers.change_policy(request, integration, form.cleaned_data["policy"])
        messages.success(
            request, _("Saved what the leaver check of %(name)s does.") % {"name": integration.display_name}
        )
    else:
        messages.error(request, _("Nothing was saved: choose one of the answers for what the leaver check does."))
    return redirect("sso_integrations")


@company_admin_required
@require_POST
def confirm(request, integration_id):
    integration = _integration(request, integration_id)
    count = leavers.confirm_held(request, integration, request.POST.get("held", ""))
    if not count:
        messages.error(
            request, _("The leavers held back have changed since you looked. Check them again before confirming.")
        )
    else:
        messages.success(
            request,
            ngettext(
                "Confirmed: the next run of the leaver check removes the access of %(count)d person.",
                "Confirmed: the next run of the leaver check removes the access of %(count)d people.",
                count,
            )
            % {"count": count},
        )
    return redirect("sso_integrations")
