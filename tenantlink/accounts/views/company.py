"""Company administrators: their own company's users. Every query goes through
tenantlink.companies.scoping, so another company's users are simply not found. What cannot be
undone in a click (deactivating, resetting the second factor) is a page of its own that says what
will happen (GET) with the button that does it (POST)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from tenantlink.accounts.flows import notify, send_invitation, send_invitation_again
from tenantlink.accounts.forms import CompanyUserEditForm, CompanyUserForm
from tenantlink.accounts.models import STANDINGS, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.scoping import company_admin_required, company_objects, get_company_object

PAGE_SIZE = 25
SEARCH_LENGTH = 254  # an email address's longest: the search box takes as much (its maxlength)


@company_admin_required
def user_list(request):
    query = request.GET.get("q", "").strip()[:SEARCH_LENGTH]
    microsoft = request.GET.get("microsoft", "")
    standing = request.GET.get("status", "")
    role = request.GET.get("role", "")
    users = company_objects(request, User.objects.select_related("totp", "microsoft_connection"))
    if query:
        users = users.filter(
            Q(username__icontains=query) | Q(display_name__icontains=query) | Q(email__icontains=query)
        )
    if microsoft in ("connected", "not_connected"):
        users = users.filter(microsoft_connection__isnull=microsoft == "not_connected")
    if standing in STANDINGS:
        users = users.of_standing(standing)
    if role in User.Role.values:
        users = users.filter(role=role)
    page = Paginator(users.order_by("username"), PAGE_SIZE).get_page(request.GET.get("page"))
    filters = {"q": query, "microsoft": microsoft, "status": standing, "role": role}
    context = {
        "page": page,
        "search": query,
        "search_length": SEARCH_LENGTH,
        "microsoft": microsoft,
        "standing": standing,
        "standings": [(key, words) for key, (words, _badge, _who) in STANDINGS.items()],
        "role": role,
        "roles": User.Role.choices,
        "filtered": any(filters.values()),
        "query": urlencode({key: value for key, value in filters.items() if value}),
    }
    return render(request, "accounts/company_users.html", context)


def _invite(request, user):
    if send_invitation(request, user):
        messages.success(request, _("An invitation has been sent to %(email)s.") % {"email": user.email})
    else:
        _invitation_not_sent(request)


def _invitation_not_sent(request):
    messages.error(
        request,
        _("The invitation could not be sent: the mail server did not accept it. Try “Send invitation again” later."),
    )


@company_admin_required
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = CompanyUserForm(request.user.company, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            with transaction.atomic():
                user = form.save()
        except IntegrityError:  # the same username, created a moment ago (a double submit)
            form.add_error("username", form.username_taken())
        else:
            AuditEvent.objects.record(Action.USER_CREATED, request=request, target=user, role=user.role)
            messages.success(request, _("%(name)s has been created.") % {"name": user.get_full_name()})
            if form.cleaned_data["how"] == CompanyUserForm.HOW_INVITE:
                _invite(request, user)
            else:
                messages.info(
                    request,
                    _("Give them the initial password in a safe way; they choose their own at first sign-in."),
                )
            return redirect("company_user", user_id=user.pk)
    return render(request, "accounts/company_user_create.html", {"form": form})


@company_admin_required
def user_detail(request, user_id):
    member = get_company_object(
        request, User.objects.select_related("totp", "microsoft_connection__integration"), pk=user_id
    )
    events = company_objects(request, AuditEvent.objects).filter(Q(target_user=member) | Q(actor=member))[:20]
    return render(request, "accounts/company_user.html", {"member": member, "events": events})


def _refuse_self(request, member):
    if member == request.user:
        messages.error(request, _("You cannot do this to your own account. Ask another administrator."))
        return True
    return False


def _lock_as_administrator(request, member):
    """Inside a transaction: lock both people's rows, in one order, and refuse (403) when the
    acting administrator is no longer one. Two administrators deactivating each other at the same
    moment are then served one after the other, and the second finds herself deactivated: the
    company keeps an administrator."""
    # FOR NO KEY UPDATE, not FOR UPDATE: an audit event being written about either of them holds
    # a key-share lock on the row (its foreign key), which FOR UPDATE would wait for, and which
    # waited for this one in turn (PostgreSQL found the deadlock and one request got a 503).
    locked = (
        User.objects.select_for_update(no_key=True).filter(pk__in=sorted({request.user.pk, member.pk})).order_by("pk")
    )
    actor = next((user for user in locked if user.pk == request.user.pk), None)
    if actor is None or not actor.is_company_admin or actor.company_id != request.user.company_id:
        raise PermissionDenied


@company_admin_required
@require_http_methods(["GET", "POST"])
def user_deactivate(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    if _refuse_self(request, member):
        return redirect("company_user", user_id=member.pk)
    if request.method == "GET" and member.is_active:  # it signs them out at once: the button asks first
        return render(request, "accounts/company_user_deactivate.html", {"member": member})
    if request.method == "GET":  # Back, or a second tab, after it was done
        messages.info(request, _("%(name)s was already deactivated.") % {"name": member.get_full_name()})
        return redirect("company_user", user_id=member.pk)
    with transaction.atomic():
        _lock_as_administrator(request, member)
        deactivated = member.deactivate()
        if deactivated:  # recorded under the lock: the log's order is the order of the changes
            AuditEvent.objects.record(Action.USER_DEACTIVATED, request=request, target=member)
            notify(request, member, "deactivated")  # once committed
    if not deactivated:  # already, maybe by someone else at the same moment
        messages.info(request, _("%(name)s was already deactivated.") % {"name": member.get_full_name()})
    else:
        messages.success(request, _("%(name)s can no longer sign in.") % {"name": member.get_full_name()})
    return redirect("company_user", user_id=member.pk)


@company_admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    name = member.get_full_name()  # as stored: the form writes what is typed into `member`
    form = CompanyUserEditForm(request.user, instance=member, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        with transaction.atomic():
            # Locked as a deactivation is: of two administrators making each other members at the
            # same moment, the second finds that she is no longer one (403), and the company keeps
            # an administrator: the one acting is one, and cannot change her own role.
            _lock_as_administrator(request, member)
            # Read again under the lock: what is replaced is what is stored (another tab's change of a
            # moment ago: the last one sent wins, and the log says from what), and a person deleted
            # meanwhile, or no longer the company's, is not found.
            stored = get_company_object(request, User.objects, pk=member.pk)
            try:
                changes = stored.change_details(**form.changes())
            except ValidationError as error:
                form.add_error(None, error)
            else:
                if changes:  # recorded under the lock: the log's order is the order of the changes
                    AuditEvent.objects.record(Action.USER_CHANGED, request=request, target=stored, **_audited(changes))
                    _tell(request, stored, changes)
        if not form.errors:  # else refused under the lock (the last administrator)
            _say_what_changed(request, stored, changes)
            return redirect("company_user", user_id=member.pk)
    return render(request, "accounts/company_user_edit.html", {"form": form, "member": member, "name": name})


def _tell(request, member, changes):
    """Tell someone who has signed in of a new address (at the one it replaced: after it, every
    notice goes to the new one) and a new role. Not an invited person, whose address an
    administrator may be correcting."""
    if member.last_login is None:
        return
    if "email" in changes:
        notify(request, member, "email_changed", to=changes["email"][0])
    if "role" in changes:
        notify(request, member, "role_changed")


def _audited(changes):
    """An edit's audit details: the fields changed, and the old and new values of each but the
    email address, which the log names only (as it does for the operator admin's changes)."""
    details = {"fields": list(changes)}
    values = {name: {"from": old, "to": new} for name, (old, new) in changes.items() if name != "email"}
    if values:
        details["changes"] = values
    return details


def _say_what_changed(request, member, changes):
    name = member.get_full_name()
    if not changes:  # the same values, or another tab saved them a moment ago
        messages.info(request, _("Nothing changed: %(name)s already had these details.") % {"name": name})
        return
    messages.success(request, _("The changes to %(name)s have been saved.") % {"name": name})
    if "email" in changes and member.awaits_invitation:
        messages.info(
            request,
            _(
                "The invitation links sent to the old address no longer work. "
                "“Send invitation again” sends a new one to %(email)s."
            )
            % {"email": member.email},
        )


@company_admin_required
@require_POST
def user_reactivate(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    with transaction.atomic():
        # Locked as a deactivation is: of a deactivation and a reactivation at the same moment, the
        # audit log's last event says how the account was left.
        _lock_as_administrator(request, member)
        reactivated = member.reactivate()
        if reactivated:
            AuditEvent.objects.record(Action.USER_REACTIVATED, request=request, target=member)
            notify(request, member, "reactivated")
    if not reactivated:
        messages.info(request, _("%(name)s was already active.") % {"name": member.get_full_name()})
    else:
        messages.success(request, _("%(name)s can sign in again.") % {"name": member.get_full_name()})
    return redirect("company_user", user_id=member.pk)


@company_admin_required
@require_http_methods(["GET", "POST"])
def user_reset_second_factor(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    if _refuse_self(request, member):
        return redirect("company_user", user_id=member.pk)
    if request.method == "GET":  # it cannot be undone: the button asks first
        return render(request, "accounts/company_user_reset_second_factor.html", {"member": member})
    if not member.reset_second_factor():  # and signs them out everywhere
        # Someone else reset it a moment ago (or it was never set up): recorded once, by them.
        messages.info(request, _("The second factor of %(name)s was already reset.") % {"name": member.get_full_name()})
        return redirect("company_user", user_id=member.pk)
    AuditEvent.objects.record(Action.SECOND_FACTOR_RESET, request=request, target=member)
    notify(request, member, "second_factor_reset")
    messages.success(
        request,
        _(
            "The second factor of %(name)s has been reset and they have been signed out. "
            "They will set up a new authenticator app at their next sign-in."
        )
        % {"name": member.get_full_name()},
    )
    return redirect("company_user", user_id=member.pk)


@company_admin_required
@require_POST
def user_resend_invitation(request, user_id):
    member = get_company_object(request, User.objects, pk=user_id)
    outcome = send_invitation_again(request, member) if member.awaits_invitation else "not_awaiting"
    if outcome == "not_awaiting" and member.is_active and member.has_usable_password():
        # A page older than the acceptance (left open, another tab): nothing to send, nothing wrong.
        messages.info(
            request,
            _("%(name)s has chosen a password already, so nothing was sent.") % {"name": member.get_full_name()},
        )
    elif outcome == "not_awaiting":
        messages.error(request, _("Only an active user who has not yet accepted an invitation can be sent one."))
    elif outcome == "sent":
        messages.success(
            request,
            _("An invitation has been sent to %(email)s; links sent before it no longer work.")
            % {"email": member.email},
        )
    elif outcome == "accepted":
        messages.info(request, _("%(name)s accepted the invitation a moment ago.") % {"name": member.get_full_name()})
    elif outcome == "crossed":
        messages.info(
            request,
            _(
                "Another invitation to %(email)s was sent at the same moment, from another window: only the link "
                "in the last one sent works."
            )
            % {"email": member.email},
        )
    else:
        _invitation_not_sent(request)
    return redirect("company_user", user_id=member.pk)
