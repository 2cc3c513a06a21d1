from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from tenantlink.audit.staff_admin import StaffAuditMixin
from tenantlink.companies.models import Company, Licence
from tenantlink.lib.admin import LabelledInputs, LabelledTabularInline


class LicenceInline(LabelledTabularInline):
    model = Licence
    extra = 0
    fields = ["product", "valid_from", "valid_until", "revoked", "revoked_at"]
    readonly_fields = ["revoked_at"]


# StaffAuditMixin writes each change, including the licence rows of the company page, to the
# audit log; the company sees it in its own log.
@admin.register(Company)
class CompanyAdmin(LabelledInputs, StaffAuditMixin, admin.ModelAdmin):
    list_display = ["name", "has_sso", "created_at"]
    search_fields = ["name"]
    inlines = [LicenceInline]

    @admin.display(boolean=True, description=_("SSO licence valid"))
    def has_sso(self, company):
        return company.has_sso()


@admin.register(Licence)
class LicenceAdmin(LabelledInputs, StaffAuditMixin, admin.ModelAdmin):
    list_display = ["company", "product", "valid_from", "valid_until", "revoked", "status"]
    list_filter = ["product", "revoked"]
    search_fields = ["company__name"]
