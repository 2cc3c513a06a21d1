from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tenantlink.audit.staff_admin import StaffAuditMixin
from tenantlink.companies import admin as companies_admin
from tenantlink.companies.models import Company
from tenantlink.sso import adoption, consent, requirement
from tenantlink.sso.models import Connection, Integration

ADOPTION_PAGE_SIZE = 50


class ReadOnlyFields:
    """Operator staff look at integrations and connections to help a customer, and may delete
    one (audited); the company's administrators set them up through the portal, at Microsoft."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyFields, StaffAuditMixin, admin.ModelAdmin):
    list_display = [
        "display_name",
        "company",
        "tenant_id",
        "shown_status",
        "leaver_check",
        "consent_completed_at",
        "tenant_signed_in_at",
        "last_verified_at",
    ]
    list_filter = ["status"]
    search_fields = ["display_name", "company__name", "tenant_id"]
    change_list_template = "admin/sso/integration/change_list.html"

    @admin.display(description=_("status"), ordering="status")
    def shown_status(self, integration):
        return integration.status_label

    def delete_model(self, request, obj):
        with transaction.atomic():  # the delete page's own transaction, where there is one
            if consent.lock_for_deletion(obj):
                consent.record_connections_going(request, obj)
                super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for integration in queryset.order_by("pk"):  # locked in one order
                if consent.lock_for_deletion(integration):
                    consent.record_connections_going(request, integration)
            super().delete_queryset(request, queryset)

    def get_urls(self):
        adoption_view = self.admin_site.admin_view(self.adoption_view)
        return [path("adoption/", adoption_view, name="sso_integration_adoption"), *super().get_urls()]

    def adoption_view(self, request):
        """The Single sign-on page's adoption picture across all companies: sign-ins per day of
        everyone (counted once per quarter hour, see SigninSlot) and each integration's connected
        users, a page of integrations at a time, so its cost does not grow with the portal."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        integrations = Integration.objects.select_related("company").order_by("company__name", "display_name", "pk")
        page = Paginator(integrations.with_adoption(), ADOPTION_PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Single sign-on adoption in all companies"),
            "chart": adoption.all_companies_chart(),
            "page": page,
        }
        return TemplateResponse(request, "admin/sso/integration/adoption.html", context)


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyFields, StaffAuditMixin, admin.ModelAdmin):
    list_display = ["user", "username", "integration", "connected_at", "last_signin_at"]
    search_fields = ["user__username", "username", "tid", "oid"]


# The company pages gain the operator's way out of a required Microsoft sign-in (the companies app
# knows nothing of Microsoft). Turning it on is the company administrator's, after the dry run, so
# the flags are not form fields here.
admin.site.unregister(Company)


@admin.register(Company)
class CompanyAdmin(companies_admin.CompanyAdmin):
    list_display = ["name", "has_sso", "microsoft_required", "created_at"]
    list_filter = ["microsoft_required"]
    readonly_fields = ["microsoft_required", "microsoft_requirement_paused"]
    actions = ["stop_requiring_microsoft"]

    @admin.action(description=_("Stop requiring Microsoft sign-in"), permissions=["change"])
    def stop_requiring_microsoft(self, request, queryset):
        stopped = sum(requirement.turn_off(company, request=request, via="staff admin") for company in queryset)
        self.message_user(
            request,
            ngettext(
                "%d company no longer requires Microsoft sign-in.",
                "%d companies no longer require Microsoft sign-in.",
                stopped,
            )
            % stopped,
            messages.SUCCESS,
        )
