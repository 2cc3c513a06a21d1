"""The one place that decides which company data a request may touch."""

from functools import wraps

from django.contrib.auth import get_user_model
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


def company_objects(request, queryset):
    """Only the rows of the signed-in user's own company. Of people, only its own: an operator's
    staff account that also names the company is not the company's to see or manage (its
    administrators could otherwise deactivate a superuser, or reset their second factor)."""
    if queryset.model is get_user_model():
        return queryset.of_company(request.user.company)
    return queryset.filter(company=request.user.company)


def get_company_object(request, queryset, **lookup):
    """An object of the signed-in user's own company, or 404. Objects of another company are
    indistinguishable from objects that do not exist."""
    return get_object_or_404(company_objects(request, queryset), **lookup)
