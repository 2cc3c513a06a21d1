from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from tenantlink.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is evidence, so nobody edits or deletes it here."""

    list_display = ["created_at", "company", "who", "action", "whom", "outcome", "client_ip"]
    list_filter = ["action", "outcome", "company"]
    search_fields = ["actor_label", "target_label", "client_ip"]
    date_hierarchy = "created_at"
    # The event's own page too says who and whom in the viewer's words (a process, a name nobody has).
    # (Not the actor and target_user links beside them: the same names twice, under the same labels.)
    fields = ["created_at", "company", "who", "action", "whom", "outcome", "client_ip", "user_agent", "details"]
    readonly_fields = ["who", "whom"]

    @admin.display(description=_("actor"), ordering="actor_label")
    def who(self, event):
        return event.actor_display

    @admin.display(description=_("target"), ordering="target_label")
    def whom(self, event):
        return event.target_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
