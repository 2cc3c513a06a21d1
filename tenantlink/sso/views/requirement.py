"""Require Microsoft sign-in: the administrator's dry run, turning it on and off, and the page a
member sees whose password sign-in was refused because of it (tenantlink.sso.requirement)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenantlink.companies.scoping import company_admin_required
from tenantlink.sso import requirement
from tenantlink.sso.views.integrations import NOT_CONFIGURED

# Why the requirement cannot be turned on now.
CANNOT_TURN_ON = {
    "configuration": NOT_CONFIGURED,
    "licence": gettext_lazy("Microsoft sign-in can be required only while your company holds a valid licence."),
    "integration": gettext_lazy("Microsoft sign-in can be required only while at least one integration is active."),
}


@company_admin_required
@require_http_methods(["GET", "POST"])
def review(request):
    """The dry run (who is connected, who is not yet, what each will see), then turning it on."""
    company = request.user.company
    if company.microsoft_required:
        messages.info(request, _("Members must already sign in with Microsoft."))
        return redirect("sso_integrations")
    refusal = requirement.refusal(company)
    if refusal:
        messages.error(request, CANNOT_TURN_ON[refusal])
        return redirect("sso_integrations")
    if request.method == "POST":
        requirement.turn_on(request, company)
        messages.success(request, _("Members must now sign in with Microsoft. Administrators are exempt."))
        return redirect("sso_integrations")
    return render(request, "sso/require.html", {"groups": requirement.members(company)})


@company_admin_required
@require_POST
def turn_off(request):
    if requirement.turn_off(request.user.company, request=request):
        messages.success(request, _("Members may sign in with password and second factor again."))
    else:
        messages.info(request, _("Microsoft sign-in was not required, so nothing changed."))
    return redirect("sso_integrations")


@require_GET
def refused(request):
    """After a correct password and second factor of a member who must use Microsoft: why they
    are not signed in, and the button. Only this browser's refused sign-in fills it in."""
    if request.user.is_authenticated:
        return redirect("portal")
    refused_signin = request.session.get(requirement.REFUSED)
    if not refused_signin:
        return redirect("signin")
    return render(request, "sso/required.html", refused_signin)
