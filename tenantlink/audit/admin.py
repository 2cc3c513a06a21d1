from django.contrib import admin

from tenantlink.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is evidence, so nobody edits or deletes it here."""

    list_display = ["created_at", "company", "actor_label", "action", "target_label", "outcome", "client_ip"]
    list_filter = ["action", "outcome", "company"]
    search_fields = ["actor_label", "target_label", "client_ip"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
