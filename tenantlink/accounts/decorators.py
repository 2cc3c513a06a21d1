from functools import wraps

from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from tenantlink.accounts.flows import is_recent_signin


def recent_signin_required(view):
    """Sensitive changes need a sign-in or a password confirmation from the last few minutes,
    so a session left open on a shared computer cannot be used to take the account over."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_recent_signin(request):
            return redirect(reverse("reauthenticate") + "?" + urlencode({"next": request.get_full_path()}))
        return view(request, *args, **kwargs)

    return wrapper
