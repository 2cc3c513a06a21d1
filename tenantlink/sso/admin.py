from django.contrib import admin

from tenantlink.audit.staff_admin import StaffAuditMixin
from tenantlink.sso.models import Connection, Integration


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
        "status",
        "leaver_check",
        "consent_completed_at",
        "last_verified_at",
    ]
    list_filter = ["status"]
    search_fields = ["display_name", "company__name", "tenant_id"]


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyFields, StaffAuditMixin, admin.ModelAdmin):
    list_display = ["user", "username", "integration", "connected_at", "last_signin_at"]
    search_fields = ["user__username", "username", "tid", "oid"]
