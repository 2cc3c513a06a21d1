"""How the audit log's pages word what an event stores. Events keep machine values (the actor
label of a process, detail names, reason codes, times in UTC as ISO 8601), so that the CSV export
and the filters read the same in every language; the pages show them in the viewer's language
and time zone. A name or value not known here is shown as it is stored.

The words live here, not in the apps that record the events: nothing imports sso (its reasons
are listed by their codes), and an audit log must still read right for codes an app no longer
uses. Where the same words exist elsewhere (the leaver check's policies), the same message is
used, so it is translated once."""

import datetime
import functools
import re

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

# Who did it, when it was not a person: the labels processes record (a run of the leaver check,
# and the management commands).
LEAVER_CHECK = "leaver-check"
ACTORS = {
    LEAVER_CHECK: _("Leaver check"),
    "command line": _("Command line"),
}
# Whom, when it was no person: a sign-in attempt with a name that belongs to nobody (the name
# itself is not kept: tenantlink.accounts.throttle).
UNKNOWN_USERNAME = "(unknown username)"
TARGETS = {UNKNOWN_USERNAME: _("(unknown username)")}

DETAIL_NAMES = {
    "method": _("Sign-in method"),
    "step": _("Step"),
    "reason": capfirst(_("reason")),
    "code": _("Microsoft error code"),
    "error": _("Microsoft's error"),
    "subcode": _("Microsoft's error subcode"),
    "tenant": _("Tenant ID"),
    "tid": _("Tenant ID"),
    "oid": capfirst(_("object ID")),
    "microsoft_username": _("Microsoft username"),
    "signed_in_oid": _("Object ID of who signed in at the tenant"),
    "reported_tenant": _("Tenant named in Microsoft's answer"),
    "policy": _("When someone leaves"),
    "recovered": _("Working again after failing"),
    "replaced": _("Replaced an earlier authenticator app"),
    "role": _("Role"),
    # The fields of a user that an administrator changes (the model's own words for them).
    "display_name": capfirst(_("display name")),
    "email": capfirst(_("email address")),
    "via": _("Done in"),
    "password_sign_in": _("Password sign-in"),
    "product": capfirst(_("product")),
    "valid_until": capfirst(_("valid until")),
    "until": _("Paused until"),
    "attempts": _("Failed attempts"),
    "seeds": _("Seeds re-encrypted"),
    "leavers": _("Leavers"),
    "connected": _("Connected users"),
    "not_connected": _("Users not connected"),
    "removed_connections": _("Microsoft connections removed"),
    "model": _("Kind of record"),
    "object_id": _("Record ID"),
    "fields": _("Changed fields"),
    "changes": _("Changes"),
}

# Why something failed or was refused, by the codes the apps record: Microsoft's answers
# (tenantlink.sso.reasons.FAILURE_REASONS), refused Microsoft sign-ins and connections, pauses.
REASONS = {
    "declined": _("Declined at Microsoft"),
    "cancelled": _("Cancelled or not finished at Microsoft"),
    "approval_required": _("Microsoft requires an administrator's approval"),
    "wrong_tenant": _("A Microsoft account of another organization"),
    "app_not_found": _("The app is not in the tenant"),
    "unknown_tenant": _("Unknown tenant"),
    "tenant_taken": _("The tenant is connected to another company"),
    "refused": _("Refused by Microsoft"),
    "code_expired": _("An answer from Microsoft too late or used twice"),
    "code_used": _("A code used already"),
    "approval_propagating": _("Approved, not yet confirmed by Microsoft"),
    "sign_in_pending": _("Waiting for a sign-in at the tenant"),
    "tenant_sign_in": _("Not signed in at the tenant"),
    "guest": _("A guest account in the tenant"),
    "unavailable": _("Microsoft could not be reached"),
    "busy": _("Not asked: every call to Microsoft of the portal process was waiting on a slow Microsoft"),
    "paused": _("Paused after repeated failures from the address"),
    "turned_off": _("Turned off meanwhile"),
    "throttled": _("Microsoft asked to wait"),
    "bad_answer": _("An answer from Microsoft that could not be understood"),
    "bad_token": _("A token that failed the security checks"),
    "new_key": _("A token signed with a key not fetched yet"),
    "configuration": _("The portal's registration at Microsoft was refused"),
    "permission_missing": _("The permission User.Read.All is missing"),
    "abandoned": _("Not finished at Microsoft"),
    "state": _("An answer not started in this browser, too late or repeated"),
    "licence": _("No valid licence"),
    "integration": _("No active integration"),
    "integration_disabled": _("The integration is disabled"),
    "integration_deleted": _("The integration was deleted"),
    "tenant_not_integrated": _("A tenant the company has not connected"),
    "not_configured": _("Microsoft sign-in is not configured"),
    "not_connected": _("No portal user is connected to the Microsoft account"),
    "personal_account": _("A personal Microsoft account"),
    "deactivated": _("The portal user is deactivated"),
    "staff": _("Operator staff"),
    "not_recent": _("No recent sign-in"),
    "taken": _("The Microsoft account is connected to another user"),
    "already_connected": _("Already connected"),
    "not_assigned": _("Not given access to the app at Microsoft"),
    "conditional_access": _("Blocked by Conditional Access"),
    "microsoft_required": _("The company requires Microsoft sign-in"),
    # Leaver.Reason and Integration.LeaverPolicy in tenantlink.sso.models: the same messages.
    "disabled": _("The Microsoft account was disabled"),
    "deleted": _("The Microsoft account was deleted"),
}

VALUES = {
    "reason": REASONS,
    "policy": {
        "deactivate": _("Deactivate the portal user"),
        "disconnect": _("Remove the Microsoft connection only"),
    },
    "method": {
        "totp": _("Authenticator app"),
        "recovery_code": _("Recovery code"),
        "totp_enrolment": _("New authenticator app"),
        "microsoft": _("Microsoft"),
        "password": _("Password and second factor"),
    },
    "step": {
        "password": _("Password"),
        "second_factor": _("Second factor"),
        "tenant_sign_in": _("Sign-in at the tenant"),
    },
    "via": {"staff admin": _("Operator admin")},
    "password_sign_in": {"disabled": _("Off")},
}


@functools.cache
def _values():
    """VALUES with the choices of the apps' models, read once they are loaded: the audit app,
    which every app records through, imports none of their models."""
    return {
        **VALUES,
        "role": dict(apps.get_model("accounts", "User").Role.choices),
        "product": dict(apps.get_model("companies", "Licence").Product.choices),
    }


# The details that hold a time, as the apps store it: ISO 8601 with its offset from UTC
# (datetime.isoformat()). Other details may hold text from outside (Microsoft's error codes, as
# sent to the callback), which is shown as it is, whatever it looks like.
TIME_DETAILS = {"until", "valid_until", "valid_from"}
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)")


def actor(label, person):
    """The 'Who' of an event: a username as it is, a process (no `person`) by its name."""
    return label if person else ACTORS.get(label, label)


def target(label, person):
    """The 'Whom' of an event: a username as it is, an unknown name in the viewer's words."""
    return label if person else TARGETS.get(label, label)


def value(name, stored):
    """One detail's value in the viewer's words: a known code by its label, a time in the
    viewer's time zone and language, yes or no; anything else as stored."""
    if stored is None or stored == "":
        return "—"
    if isinstance(stored, bool):
        return _("Yes") if stored else _("No")
    if isinstance(stored, list):
        return ", ".join(str(item) for item in stored)
    if isinstance(stored, str):
        known = _values().get(name, {})
        if stored in known:
            return known[stored]
        if name in TIME_DETAILS and ISO_TIME.fullmatch(stored):
            try:
                moment = timezone.localtime(datetime.datetime.fromisoformat(stored.replace("Z", "+00:00")))
            except (ValueError, OverflowError):  # 30 February, or past the year 9999 in this zone
                return stored
            return formats.date_format(moment, "DATETIME_FORMAT")
    return stored


def _meta(model):
    """The options of the model an event names ("accounts.user"), or None for one gone since."""
    try:
        return apps.get_model(model)._meta
    except (LookupError, ValueError, TypeError, AttributeError):  # gone, or not a model's label
        return None


def _model_name(model):
    """The kind of record the operator admin changed as its model words it ("User"), else as stored."""
    meta = _meta(model)
    return capfirst(meta.verbose_name) if meta else value("model", model)


def _field_name(model, name):
    """A changed field's name as its model words it (the operator admin's changes), else as stored."""
    meta = _meta(model)
    try:
        return capfirst(meta.get_field(name).verbose_name)
    except (AttributeError, FieldDoesNotExist):  # no model, or a field gone since
        return DETAIL_NAMES.get(name, name)


def changes(model, stored):
    """The operator admin's changes of a record ({field: {"from": …, "to": …}}), in the viewer's
    words: "Operator staff: No → Yes; Role: Member"."""
    if not isinstance(stored, dict):
        return stored
    said = []
    for name, change in stored.items():
        if not isinstance(change, dict):
            said.append(f"{_field_name(model, name)}: {value(name, change)}")
            continue
        shown = value(name, change.get("to"))
        if "from" in change:
            shown = f"{value(name, change['from'])} → {shown}"
        said.append(f"{_field_name(model, name)}: {shown}")
    return "; ".join(said)


def details(stored):
    """(name, value) of each detail of an event, in the viewer's words."""
    if not isinstance(stored, dict):  # written by hand, not by record()
        return [("", stored)] if stored else []
    model = stored.get("model", "")
    shown = []
    for name, item in stored.items():
        if name == "changes":
            item = changes(model, item)
        elif name == "model":
            item = _model_name(item)
        elif name == "fields" and isinstance(item, list):
            item = ", ".join(str(_field_name(model, field)) for field in item)
        else:
            item = value(name, item)
        shown.append((DETAIL_NAMES.get(name, name), item))
    return shown
