"""The one place that decides which company data a request may touch."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404


def company_admin_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_company_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def get_company_object(request, queryset, **lookup):
    """An object of the signed-in administrator's own company, or 404. Objects of another
    company are indistinguishable from objects that do not exist."""
    return get_object_or_404(queryset, company=request.user.company, **lookup)
