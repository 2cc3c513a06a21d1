from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent


class StaffUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "company", "role"]


class StaffUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = StaffUserCreationForm
    form = StaffUserChangeForm
    list_display = ["username", "display_name", "company", "role", "is_active", "has_second_factor", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "company"]
    search_fields = ["username", "display_name", "email", "company__name"]
    ordering = ["username"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Person"), {"fields": ["display_name", "email", "time_zone"]}),
        (_("Company"), {"fields": ["company", "role"]}),
        (
            _("Access"),
            {"fields": ["is_active", "must_change_password", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["username", "company", "role", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]
    actions = ["reset_second_factor"]

    @admin.display(boolean=True, description=_("Second factor"))
    def has_second_factor(self, user):
        return user.has_second_factor

    @admin.action(description=_("Reset second factor (re-enrol at next sign-in)"))
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            user.reset_second_factor()
            AuditEvent.objects.record(Action.SECOND_FACTOR_RESET, request=request, target=user, via="staff admin")
        self.message_user(request, _("Reset the second factor of %d users.") % queryset.count(), messages.SUCCESS)
