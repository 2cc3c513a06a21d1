"""Audit of the operator admin (/staff/): every add, change and delete made there is an audit
event, like the same change made anywhere else."""

import datetime

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.http import HttpResponseRedirect
from django.utils.translation import gettext as _

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company

# Form fields that carry a password; an audit event never names them, let alone their values.
PASSWORD_FIELDS = frozenset({"password", "password1", "password2", "usable_password", "set_usable_password"})

# Adding one of these in the admin is the same event as doing it elsewhere in the portal or on
# the command line, so it is logged under the same action (and found by the same filter).
ADD_ACTIONS = {
    "accounts.user": Action.USER_CREATED,
    "companies.company": Action.COMPANY_CREATED,
    "companies.licence": Action.LICENCE_GRANTED,
}

# Fields whose old and new values an auditor needs to read (who got which access, which licence
# terms); none is secret. Other changed fields are listed by name only.
AUDITED_VALUES = {
    "accounts.user": ["company", "role", "is_active", "is_staff", "is_superuser", "must_change_password"],
    "companies.company": ["name"],
    "companies.licence": ["company", "product", "valid_from", "valid_until", "revoked"],
}


def _plain(value):
    """A value as JSON can hold it: times as ISO 8601 in UTC (the admin works in the staff
    user's time zone), related objects by name."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _company(obj):
    """The company whose log shows changes of `obj`: none for operator staff, even given one (as
    AuditEvent.objects.record has it for a user as the target)."""
    if isinstance(obj, User) and obj.is_operator:
        return None
    return obj if isinstance(obj, Company) else getattr(obj, "company", None)


def _subject(obj):
    """The audit event's target and company for an object of any model: a user is the target
    (and brings their company); anything else is named by label, in its company's log."""
    if isinstance(obj, User):
        return {"target": obj}
    return {"company": _company(obj), "target_label": str(obj)[:200]}


def record_staff_event(request, action, obj, fields=(), before=None, added=False):
    """Write the audit event of one admin add, change or delete of `obj` by the signed-in staff
    user. `fields` are the changed form fields; `before` is the stored copy of a changed object,
    for the old values of AUDITED_VALUES. For an added object all of those values are shown."""
    label = obj._meta.label_lower
    fields = [name for name in fields if name not in PASSWORD_FIELDS]
    details = {"via": "staff admin", "model": label, "object_id": obj.pk}
    if fields:
        details["fields"] = fields
    changes = {}
    for name in AUDITED_VALUES.get(label, ()):
        if added or name in fields:
            changes[name] = {"to": _plain(getattr(obj, name))}
            if before is not None:
                changes[name]["from"] = _plain(getattr(before, name))
    if changes:
        details["changes"] = changes
    AuditEvent.objects.record(action, request=request, **_subject(obj), **details)
    # Moving a user or a licence to another company, or making a user operator staff: the company
    # it left must see that too.
    old_company = _company(before) if before is not None else None
    if old_company is not None and old_company != _company(obj):
        AuditEvent.objects.record(action, request=request, **{**_subject(obj), "company": old_company}, **details)


def _add_action(obj):
    return ADD_ACTIONS.get(obj._meta.label_lower, Action.STAFF_ADDED)


def _stored(obj):
    """The object as it is in the database, before the admin saves the form's changes to it."""
    if obj.pk is None:
        return None
    return type(obj)._default_manager.filter(pk=obj.pk).first()


class StaffAuditMixin:
    """For ModelAdmins of the operator admin (/staff/): every add, change and delete, including
    those made in inlines and by the bulk delete action, is written to the audit log with the
    staff user, the changed fields, the company concerned and the client address, in the same
    transaction as the change itself."""

    def response_action(self, request, queryset):
        """A selection that names no object (a garbled or tampered form: "abc", a number past
        what the database holds) is refused with a message before the action runs, instead of
        failing with a server error inside it."""
        pk = self.model._meta.pk
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                pk.clean(value, None)
        except ValidationError:
            self.message_user(request, _("The selection could not be read. Nothing was done."), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def save_model(self, request, obj, form, change):
        before = _stored(obj) if change else None
        super().save_model(request, obj, form, change)
        if change:
            if form.changed_data:  # "Save" on an untouched page (perhaps to edit an inline) is no event
                record_staff_event(request, Action.STAFF_CHANGED, obj, form.changed_data, before)
        else:
            record_staff_event(request, _add_action(obj), obj, form.changed_data, added=True)

    def delete_model(self, request, obj):
        # Recorded first: afterwards the object is gone and the event could not point at it.
        record_staff_event(request, Action.STAFF_DELETED, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # The bulk "Delete selected" action; unlike the delete page it runs outside a transaction.
        with transaction.atomic(using=router.db_for_write(self.model)):
            for obj in queryset:
                record_staff_event(request, Action.STAFF_DELETED, obj)
            super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        """The inlines of a change page (a company's licences): each row added, changed or
        deleted is its own event."""
        deleting = formset.deleted_forms  # a new row ticked "delete" is simply not added
        for row in deleting:
            if row.instance.pk is not None:
                record_staff_event(request, Action.STAFF_DELETED, row.instance)
        saving = [(row, _stored(row.instance)) for row in formset.forms if row.has_changed() and row not in deleting]
        super().save_formset(request, form, formset, change)
        for row, before in saving:
            if before is None:
                record_staff_event(request, _add_action(row.instance), row.instance, row.changed_data, added=True)
            else:
                record_staff_event(request, Action.STAFF_CHANGED, row.instance, row.changed_data, before)
