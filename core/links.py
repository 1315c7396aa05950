"""Links for many rows of one page, reversed once (and the CSRF field of their forms).

A list of 50 rows with two or three links each spent a large part of its time in
``reverse()`` / ``{% url %}`` (resolver lookups, quoting, the script prefix): ``pk_url``
reverses the URL once with a placeholder id and builds each row's link by string
formatting, which gives the same text for integer ids.
"""

from django.urls import reverse
from django.utils.html import conditional_escape

PLACEHOLDER_ID = 2147483647  # an id no test or lab database reaches; digits, so any <int:pk> converter takes it


def split_at_placeholder(url):
    """(head, tail) of a URL reversed with PLACEHOLDER_ID, so that ``f"{head}{pk}{tail}"`` is the
    URL of ``pk``; None when the id does not appear exactly once in it."""
    marker = str(PLACEHOLDER_ID)
    if url.count(marker) != 1:
        return None
    head, _, tail = url.partition(marker)
    return head, tail


def pk_url(viewname, *args):
    """A function ``pk -> reverse(viewname, args=[*args, pk])`` that reverses only once.
    The id must be the URL's last argument and an integer."""
    url = reverse(viewname, args=[*args, PLACEHOLDER_ID])
    parts = split_at_placeholder(url)
    if parts is None:
        raise ValueError(f"{viewname}: the placeholder id does not appear exactly once in {url!r}")
    head, tail = parts
    return lambda pk: f"{head}{int(pk)}{tail}"


def csrf_field(context):
    """The hidden CSRF input of a form in rows built in Python (what {% csrf_token %} writes), or ""
    without a token in the template context."""
    token = context.get("csrf_token")
    if not token or str(token) == "NOTPROVIDED":
        return ""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{conditional_escape(token)}">'
