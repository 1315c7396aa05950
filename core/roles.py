"""Roles are Django groups. Views check them through ``role_required``.

viewer        reads everything
experimenter  logs samples and XRD/DSC measurements, imports tables
reviewer      reviews LLM-extracted records
approver      approves generated candidates for synthesis
Superusers hold every role. Every role implies viewer (reading): ``user_roles`` adds it, so
``has_role``, ``role_required`` and the API's ``RolePermission`` all follow the one rule. A
logged-in user with no role reads nothing: every page answers 403, which says whom to ask.
"""

from functools import cache, wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connections, router

VIEWER = "viewer"
EXPERIMENTER = "experimenter"
REVIEWER = "reviewer"
APPROVER = "approver"
ALL_ROLES = (VIEWER, EXPERIMENTER, REVIEWER, APPROVER)


def user_roles(user):
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ALL_ROLES)
    if not hasattr(user, "_glassloop_roles"):
        held = _held_roles(user)
        if held:  # experimenter, reviewer and approver each imply read access
            held.add(VIEWER)
        user._glassloop_roles = held
    return user._glassloop_roles


def _held_roles(user):
    """The names in ALL_ROLES of the user's groups, read fresh (once per request: a role
    removed takes effect on the next one).

    Every request asks this, so it is one plain SQL statement: the same query through the ORM
    (``user.groups.filter(name__in=ALL_ROLES).values_list("name")``) costs ~0.8 ms of CPU to
    build, five times the rest of it."""
    groups = user._meta.get_field("groups")  # the ManyToManyField to Group (user may be a lazy object)
    alias = router.db_for_read(groups.related_model)
    with connections[alias].cursor() as cursor:
        cursor.execute(_roles_sql(groups, alias), [user.pk, *ALL_ROLES])
        return {row[0] for row in cursor.fetchall()}


@cache
def _roles_sql(groups, alias):
    q = connections[alias].ops.quote_name
    group = groups.related_model
    name = q(group._meta.get_field("name").column)
    return (
        f"SELECT g.{name} FROM {q(group._meta.db_table)} g"
        f" INNER JOIN {q(groups.m2m_db_table())} m ON m.{q(groups.m2m_reverse_name())} = g.{q(group._meta.pk.column)}"
        f" WHERE m.{q(groups.m2m_column_name())} = %s AND g.{name} IN ({', '.join(['%s'] * len(ALL_ROLES))})"
    )


def has_role(user, role):
    return role in user_roles(user)


def role_required(role):
    """View decorator: login first, then the role, else 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def assign_role(user, role):
    from django.contrib.auth.models import Group

    if role not in ALL_ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ALL_ROLES)}.")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if hasattr(user, "_glassloop_roles"):
        del user._glassloop_roles


def site_admins():
    """Usernames of the active superusers: the people who grant roles."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("username").values_list("username", flat=True)
    )
