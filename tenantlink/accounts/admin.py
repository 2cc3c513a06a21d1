from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.db import router, transaction
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters

from tenantlink.accounts import flows
from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.audit.staff_admin import StaffAuditMixin
from tenantlink.lib.admin import LabelledInputs


class StaffUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "company", "role"]


class StaffUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(LabelledInputs, StaffAuditMixin, DjangoUserAdmin):
    add_form = StaffUserCreationForm
    form = StaffUserChangeForm
    list_display = ["username", "display_name", "company", "role_shown", "is_active", "has_second_factor", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "company"]
    search_fields = ["username", "display_name", "email", "company__name"]
    ordering = ["username"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Person"), {"fields": ["display_name", "email", "language", "time_zone"]}),
        (_("Company"), {"fields": ["company", "role"]}),
        (
            _("Access"),
            {"fields": ["is_active", "must_change_password", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "company", "role", "is_staff", "password1", "password2"]})
    ]
    readonly_fields = ["last_login", "date_joined"]
    actions = ["reset_second_factor"]
    # Who may do what in the operator admin: a staff member given "change user" looks after
    # customers' accounts, and only a superuser grants operator rights or touches another
    # operator's account (its password, its second factor), else that permission would be every
    # permission: make oneself superuser, or take over an account that has more.
    RIGHTS = ["is_staff", "is_superuser", "groups", "user_permissions"]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, *self.RIGHTS]

    def _another_operator(self, request, obj):
        return obj is not None and not request.user.is_superuser and obj.pk != request.user.pk and obj.is_operator

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._another_operator(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._another_operator(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # As the company administrator's "Deactivate": every session ends now, so that a
            # reactivation brings none back.
            obj.end_all_sessions()
        if change and "is_active" in form.changed_data:  # told as by the company administrator's pages
            flows.notify(request, obj, "reactivated" if obj.is_active else "deactivated")
        if change and {"company", "is_staff", "is_superuser"} & set(form.changed_data):
            flows.standing_changed.send(sender=User, request=request, user=obj)

    @admin.display(description=_("role"), ordering="role")
    def role_shown(self, user):
        # Staff keep the role Member (they are no company's administrator, see User.clean_fields).
        return _("Operator staff") if user.is_operator else user.get_role_display()

    @admin.display(boolean=True, description=_("Second factor"))
    def has_second_factor(self, user):
        return user.has_second_factor

    # Whoever knows the password enrols their own authenticator after a reset: a change of the
    # account, not for staff who may only view users.
    @admin.action(description=_("Reset second factor (re-enrol at next sign-in)"), permissions=["change"])
    def reset_second_factor(self, request, queryset):
        if not request.user.is_superuser:  # customers' accounts, and one's own
            allowed = queryset.filter(is_staff=False, is_superuser=False) | queryset.filter(pk=request.user.pk)
            if skipped := queryset.count() - allowed.count():
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d operator's account was left as it is: only a superuser can reset another "
                        "operator's second factor.",
                        "%(count)d operators' accounts were left as they are: only a superuser can reset another "
                        "operator's second factor.",
                        skipped,
                    )
                    % {"count": skipped},
                    messages.WARNING,
                )
            queryset = allowed
            if not queryset.exists():  # every one selected was another operator's, as said above
                return
        count = 0
        for user in queryset:
            if user.reset_second_factor():  # else nothing to reset (or reset a moment ago, and recorded then)
                AuditEvent.objects.record(Action.SECOND_FACTOR_RESET, request=request, target=user, via="staff admin")
                flows.notify(request, user, "second_factor_reset")
                count += 1
        self.message_user(
            request,
            ngettext("Reset the second factor of %(count)d user.", "Reset the second factor of %(count)d users.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's "set password" page for another user, audited. Whether the password changed
        is read from the stored hash, so every way the page can save (a new password, or turning
        password sign-in off) is caught and a rejected form is not."""
        if str(request.user.pk) == unquote(id):
            # Their own password: the portal's page, which asks for the current one and counts
            # wrong guesses (as /staff/password_change/ does, see urls.py).
            return redirect("change_password")
        with transaction.atomic(using=router.db_for_write(self.model)):
            user = self.get_object(request, unquote(id))
            response = super().user_change_password(request, id, form_url)
            if user is not None and request.method == "POST":
                stored = User.objects.filter(pk=user.pk).values_list("password", flat=True).first()
                if stored != user.password:
                    user.password = stored
                    details = {"via": "staff admin"}
                    if not user.has_usable_password():
                        details["password_sign_in"] = "disabled"
                    AuditEvent.objects.record(Action.PASSWORD_CHANGED, request=request, target=user, **details)
                    notice = "password_changed" if user.has_usable_password() else "password_sign_in_off"
                    flows.notify(request, user, notice)  # once committed
        return response


# Groups carry permissions in the operator admin, so their changes are audited as well.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(StaffAuditMixin, DjangoGroupAdmin):
    """A group's permissions are its members' too: only a superuser adds, changes or deletes one
    (else "change group" would give its holder, in a group, every permission)."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
