"""Require Microsoft sign-in, per company.

A company administrator may require the company's members to sign in with Microsoft
(Company.microsoft_required). While the requirement applies:

- A member whose Microsoft connection works and who signs in with password and second factor is
  not signed in: once both are accepted the sign-in is refused before it completes (accounts'
  signin_completing signal), and the next page explains and offers "Sign in with Microsoft".
- A member without a connection must connect right after the password and second factor. That
  session is only *half signed in* (MUST_CONNECT): it reaches the mandatory offer, the connect
  flow and Microsoft's way back, signing out, and the two pages the sign-in itself may insist on
  (a new initial password, recovery codes shown once). Every other address — typed, from the back
  button, from a second tab, the offer's "Don't ask again" — leads back to the offer. Only a
  completed connection lifts it; a cancelled or expired trip to Microsoft leaves the member at
  the offer, free to try again or sign out. A member's password session that has no connection
  (none when the requirement was turned on, made a member since, a connection removed since) is
  held in the same way from its next request.
- Administrators and operator staff are exempt, so that someone can always get in and fix the
  set-up (operator staff never use Microsoft sign-in at all).

The requirement applies only while the company holds a valid licence and at least one active
integration (and this installation is configured for Microsoft). Otherwise it is *paused*, by
itself, and everybody signs in with password and second factor as before. The stored flag
Company.microsoft_requirement_paused changes only through a conditional UPDATE, so each pause and
each end of one is audited exactly once, however many processes notice it at the same moment.
It is noticed at every decision (sign-ins of members, half-signed-in requests), on the Single
sign-on page, and by the daily purge_expired, so the audit log shows a pause even when nobody
signs in.

Nothing here runs before the password and the second factor are accepted: a wrong password or an
unknown account gets the same answer as ever, and a stranger learns nothing about the rule.
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef
from django.urls import reverse

from tenantlink.accounts.flows import SIGNIN_METHOD, SigninRefusal
from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company, Licence
from tenantlink.sso import microsoft
from tenantlink.sso.models import Connection, Integration

MUST_CONNECT = "microsoft_must_connect"  # in a half-signed-in session: connect before anything else
REFUSED = "microsoft_required"  # in the session after a refused sign-in: the company's name and `next`


@dataclass(frozen=True)
class State:
    applies: bool
    reason: str = ""  # why it does not apply: "off", "configuration", "licence" or "integration"
    usable_connection: bool = False  # the user's connection works for Microsoft sign-in now
    connected: bool = False  # the user has a connection (perhaps to a disabled integration)


def exempt(user):
    return user.company_id is None or user.is_company_admin or user.is_operator


def asked_of(user):
    """Whether the user's company requires Microsoft sign-in of them (turned on, and not exempt);
    whether it applies now (licence, integrations) is evaluate()'s to say. No query."""
    return not exempt(user) and user.company.microsoft_required


def evaluate(company, user=None):
    """Whether the requirement applies to `company` now (and `user`'s connection), in one query;
    none when the company does not require Microsoft sign-in. A change between applying and
    paused is recorded on the way."""
    if not company.microsoft_required:
        return State(False, "off")
    state = _check(company, user)
    if state.reason != "configuration":  # the installation's problem, not the company's: not recorded
        record_pause(company, state.reason)
    return state


def _check(company, user=None):
    """What the requirement lacks to apply now ("configuration", "licence", "integration" or
    nothing) and `user`'s connection, in one query (none when not configured)."""
    if not microsoft.is_configured():
        return State(False, "configuration")
    flags = {
        "licensed": Exists(Licence.objects.valid(Licence.Product.SSO).filter(company=OuterRef("pk"))),
        "integrated": Exists(Integration.objects.filter(company=OuterRef("pk"), status=Integration.Status.ACTIVE)),
    }
    if user is not None:
        flags.update(_connection_flags(user))
    row = Company.objects.filter(pk=company.pk).values(**flags).get()
    reason = "" if row["licensed"] and row["integrated"] else "licence" if not row["licensed"] else "integration"
    return State(not reason, reason, row.get("usable", False), row.get("connected", False))


def _connection_flags(user):
    """`usable`: `user` (a user or a reference to one) has a connection through an active
    integration; `connected`: any connection, perhaps through a disabled one."""
    connections = Connection.objects.filter(user=user)
    return {
        "usable": Exists(connections.filter(integration__status=Integration.Status.ACTIVE)),
        "connected": Exists(connections),
    }


def record_pause(company, reason):
    """Store and audit a pause (`reason` given) or its end (`reason` empty), once: of several
    processes noticing it at once only the one whose UPDATE changed the row records it."""
    paused = bool(reason)
    if company.microsoft_requirement_paused == paused:
        return False
    changed = Company.objects.filter(
        pk=company.pk, microsoft_required=True, microsoft_requirement_paused=not paused
    ).update(microsoft_requirement_paused=paused)
    company.microsoft_requirement_paused = paused
    if changed:
        details = {"reason": reason} if paused else {}
        action = Action.SSO_REQUIRED_PAUSED if paused else Action.SSO_REQUIRED_RESUMED
        AuditEvent.objects.record(action, company=company, target_label=company.name, **details)
    return bool(changed)


def check_all():
    """Notice every pause and its end, for the daily purge; how many companies changed."""
    changed = 0
    for company in Company.objects.filter(microsoft_required=True):
        before = company.microsoft_requirement_paused
        evaluate(company)
        changed += company.microsoft_requirement_paused != before
    return changed


def refusal_at_signin(sender, request, user, method, next_url, **kwargs):
    """accounts.flows.signin_completing: the requirement, decided before a password sign-in
    completes. A connected member is not signed in (nobody is, so the audit log has the refusal
    only); the next page explains and offers "Sign in with Microsoft". (Recovery codes of an
    authenticator set up in this sign-in are not made; new ones can be made in My Profile after
    signing in with Microsoft.) A member without a connection is half signed in from the start:
    MUST_CONNECT is in the session before login(), which keeps the session's data."""
    if method == "microsoft" or not asked_of(user):
        return None  # no query: the company came with the user
    state = evaluate(user.company, user)
    if not state.applies:
        return None
    if state.usable_connection:
        refused = {REFUSED: {"company": user.company.name, "next": next_url}}
        return SigninRefusal("microsoft_required", reverse("sso_required"), refused)
    if not state.connected:
        request.session[MUST_CONNECT] = True
    # Connected through an integration now disabled: Microsoft cannot sign the member in and
    # connecting again is not possible, so the password goes on until an administrator acts.
    return None


def must_connect(request):
    """Whether this session has to connect before anything else. Checked at every request, with
    one query for the sessions concerned only: a half-signed-in one (MUST_CONNECT, from the
    sign-in), lifted once the member is connected, or when the requirement is paused or turned
    off, or the member became an administrator; and a password session of a member whose company
    requires Microsoft sign-in, which is half signed in from the moment they have no connection
    (removed by themselves, an administrator, the leaver check or an integration's deletion;
    made a member; or not connected when the requirement was turned on)."""
    user = request.user
    held = request.session.get(MUST_CONNECT)
    # A session opened with Microsoft ends with its connection (tenantlink.sso.middleware).
    if not asked_of(user) or (not held and request.session.get(SIGNIN_METHOD) == "microsoft"):
        request.session.pop(MUST_CONNECT, None)
        return False
    state = evaluate(user.company, user)
    if not state.applies or state.connected:
        request.session.pop(MUST_CONNECT, None)
        return False
    if not held:
        request.session[MUST_CONNECT] = True
    return True


def members(company):
    """The dry run: who the requirement would concern, and how. Administrators are exempt."""
    people = (
        User.objects.of_company(company)
        .filter(is_active=True)
        .annotate(**_connection_flags(OuterRef("pk")))
        .order_by("display_name", "username")
    )
    groups = {"connected": [], "not_connected": [], "stuck": [], "exempt": []}
    for person in people:
        if person.is_company_admin:
            groups["exempt"].append(person)
        elif person.usable:
            groups["connected"].append(person)
        elif person.connected:
            groups["stuck"].append(person)
        else:
            groups["not_connected"].append(person)
    return groups


def refusal(company):
    """Why the requirement cannot be turned on now ("configuration", "licence" or
    "integration"); None when it can."""
    return _check(company).reason or None


def turn_on(request, company):
    if company.require_microsoft():
        groups = members(company)
        AuditEvent.objects.record(
            Action.SSO_REQUIRED_ON,
            request=request,
            company=company,
            target_label=company.name,
            connected=len(groups["connected"]),
            not_connected=len(groups["not_connected"]),
        )


def turn_off(company, *, request=None, actor_label="", **details):
    """Stop requiring Microsoft sign-in (administrator, operator admin or command line); False
    when it was not on."""
    if not company.stop_requiring_microsoft():
        return False
    AuditEvent.objects.record(
        Action.SSO_REQUIRED_OFF,
        request=request,
        actor_label=actor_label,
        company=company,
        target_label=company.name,
        **details,
    )
    return True
