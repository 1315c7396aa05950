"""``{% site_admins as admins %}``: the usernames of the people who grant roles (core.roles),
for pages rendered without a view of ours (Django's 404 handler)."""

from django import template

from core import roles

register = template.Library()


@register.simple_tag
def site_admins():
    return roles.site_admins()
