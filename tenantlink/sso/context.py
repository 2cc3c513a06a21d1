from django.utils.functional import SimpleLazyObject

from tenantlink.sso import flows, microsoft
from tenantlink.sso.models import Connection
from tenantlink.sso.views.signin import LAST_METHOD_COOKIE, STILL_AT_MICROSOFT


def _account(request):
    """The signed-in user's Microsoft connection, and whether they could make one now."""
    user = request.user
    if not user.is_authenticated or user.company is None or user.is_operator:
        return {}
    if not microsoft.is_configured():
        return {}
    integrations = flows.active_integrations(user.company)
    if not integrations:
        return {}  # no valid licence or no active integration: nothing to say at all
    connection = Connection.objects.filter(user=user).first()
    return {"connection": connection, "available": connection is None}


def microsoft_signin(request):
    """For the pages: the Sign in with Microsoft button (first when this browser used Microsoft
    last) and the Microsoft section of My Profile, worked out only where a page uses it."""
    configured = microsoft.is_configured()
    return {
        "microsoft_signin": configured,
        "microsoft_first": request.COOKIES.get(LAST_METHOD_COOKIE) == "microsoft",
        "still_at_microsoft": configured and STILL_AT_MICROSOFT in getattr(request, "session", {}),
        "microsoft_account": SimpleLazyObject(lambda: _account(request)),
    }
