from core.roles import user_roles


def roles(request):
    """Templates show actions only to the roles that may take them."""
    return {"roles": user_roles(getattr(request, "user", None)) if hasattr(request, "user") else set()}
