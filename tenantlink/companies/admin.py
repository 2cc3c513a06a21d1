from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.audit.staff_admin import StaffAuditMixin
from tenantlink.companies.models import Company, Licence


class LicenceInline(admin.TabularInline):
    model = Licence
    extra = 0
    fields = ["product", "valid_from", "valid_until", "revoked", "revoked_at"]
    readonly_fields = ["revoked_at"]


# StaffAuditMixin writes each change, including the licence rows of the company page, to the
# audit log; the company sees it in its own log.
@admin.register(Company)
class CompanyAdmin(StaffAuditMixin, admin.ModelAdmin):
    list_display = ["name", "has_sso", "microsoft_required", "created_at"]
    list_filter = ["microsoft_required"]
    search_fields = ["name"]
    inlines = [LicenceInline]
    # Turned on by the company's administrator after the dry run on the Single sign-on page;
    # operator staff can only turn it off (the action below, or manage.py require_microsoft_signin).
    readonly_fields = ["microsoft_required", "microsoft_requirement_paused"]
    actions = ["stop_requiring_microsoft"]

    @admin.display(boolean=True, description="SSO licence valid")
    def has_sso(self, company):
        return company.has_sso()

    @admin.action(description=_("Stop requiring Microsoft sign-in"))
    def stop_requiring_microsoft(self, request, queryset):
        stopped = 0
        for company in queryset:
            if company.stop_requiring_microsoft():
                stopped += 1
                AuditEvent.objects.record(
                    Action.SSO_REQUIRED_OFF,
                    request=request,
                    company=company,
                    target_label=company.name,
                    via="staff admin",
                )
        self.message_user(request, _("%d companies no longer require Microsoft sign-in.") % stopped, messages.SUCCESS)


@admin.register(Licence)
class LicenceAdmin(StaffAuditMixin, admin.ModelAdmin):
    list_display = ["company", "product", "valid_from", "valid_until", "revoked", "status"]
    list_filter = ["product", "revoked"]
    search_fields = ["company__name"]
