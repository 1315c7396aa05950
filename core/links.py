"""Links for many rows of one page, reversed once.

A list of 50 rows with two or three links each spent a large part of its time in
``reverse()`` / ``{% url %}`` (resolver lookups, quoting, the script prefix): ``pk_url``
reverses the URL once with a placeholder id and builds each row's link by string
formatting, which gives the same text for integer ids.
"""

from django.urls import reverse

_PLACEHOLDER = 2147483647  # an id no test or lab database reaches; must match the <int:pk> converter


def pk_url(viewname, *args):
    """A function ``pk -> reverse(viewname, args=[*args, pk])`` that reverses only once.
    The id must be the URL's last argument and an integer."""
    url = reverse(viewname, args=[*args, _PLACEHOLDER])
    marker = str(_PLACEHOLDER)
    if url.count(marker) != 1:
        raise ValueError(f"{viewname}: the placeholder id does not appear exactly once in {url!r}")
    head, _, tail = url.partition(marker)
    return lambda pk: f"{head}{int(pk)}{tail}"
