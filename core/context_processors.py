from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from core.roles import ALL_ROLES, user_roles

# The site-wide navigation of base.html, by URL name: reversed once per URL configuration and
# script prefix instead of on every page (nine {% url %} were ~0.25 ms of each page's CPU).
NAV_URLS = {
    "alloys": "lab:alloy_list",
    "samples": "lab:sample_list",
    "log_experiment": "lab:log_experiment",
    "imports": "lab:import_list",
    "mining": "mining:batch_list",
    "review": "mining:review_queue",
    "design": "design:campaign_list",
    "models": "ml:model_list",
    "admin": "admin:index",
    "logout": "logout",
}
_nav_cache = {}


def roles(request):
    """Templates show actions only to the roles that may take them; the header lists them in
    ALL_ROLES order (a set's order changes from one process to the next)."""
    held = user_roles(getattr(request, "user", None)) if hasattr(request, "user") else set()
    return {"roles": tuple(role for role in ALL_ROLES if role in held)}


def nav(request):
    """``nav``: base.html's links ({{ nav.alloys }} is {% url 'lab:alloy_list' %})."""
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    links = _nav_cache.get(key)
    if links is None:
        links = _nav_cache[key] = {name: reverse(view) for name, view in NAV_URLS.items()}
    return {"nav": links}
