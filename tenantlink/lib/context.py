import functools

from django.conf import settings
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse

# The addresses the base layout links to on every page: worked out once per process (for each
# script prefix), not by a {% url %} or {% static %} tag per link on every page.
LAYOUT_URLS = {
    "home": "home",
    "portal": "portal",
    "profile": "profile",
    "settings": "profile_settings",
    "users": "company_users",
    "sso": "sso_integrations",
    "audit": "audit_log",
    "operator": "admin:index",
    "signout": "signout",
}


@functools.lru_cache(maxsize=8)
def _layout_urls(prefix):
    return {
        **{key: reverse(name) for key, name in LAYOUT_URLS.items()},
        "icon": static("tenantlink/icon.svg"),
        "stylesheet": static("tenantlink/site.css"),
        "script": static("tenantlink/forms.js"),
    }


# The layout's sections, each marked current (aria-current) on its pages: the portal on its own
# address, the others on every address below theirs.
SECTIONS = ("profile", "users", "sso", "audit")


def site(request):
    urls, path = _layout_urls(get_script_prefix()), request.path
    section = "portal" if path == urls["portal"] else next((s for s in SECTIONS if path.startswith(urls[s])), "")
    return {"SITE_NAME": settings.SITE_NAME, "urls": urls, "section": section}
