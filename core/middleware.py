"""No NUL or other control character enters the site as text.

The rule (:func:`control_character_problem`): text may hold a tab, a line feed and a carriage
return, but no other C0 control character (U+0000–U+001F). A NUL cannot be stored by
PostgreSQL at all (a 500 before this rule) and the others are never meant in a composition,
a name or a search; they come from binary files pasted as text, UTF-16 files read as UTF-8,
or someone probing.

Where it is applied:

- :class:`ControlCharacterMiddleware` (settings.MIDDLEWARE) answers 400 for the request
  path, query-string names and values, form fields (urlencoded or multipart, file names
  included) and the strings of a JSON body; an HTML page for the site, JSON
  (``{"error": ..., "detail": {field: [...]}}``) under ``/api/`` or for a JSON client.
- ``lab.tables`` refuses a table row that holds one (the other rows import).
- ``mining.services`` refuses a ``.txt`` source or pasted text that holds one, and strips
  them from text extracted out of a PDF (font-encoding artefacts, not the author's text).
"""

import json
import re

from django.http import HttpResponse, JsonResponse
from django.template import engines

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A JSON body may carry a control character only as a \u escape (json refuses raw ones).
_JSON_ESCAPE = re.compile(rb"\\u00[01][0-9a-fA-F]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

PAGE = """{% extends "base.html" %}
{% block title %}Not accepted{% endblock %}
{% block content %}
<h1>This request was not accepted</h1>
<div class="card" id="bad-request">
  <p>{{ message }}</p>
  <p class="muted">Tabs and line breaks are fine; NUL and other control characters are not.
    Remove the character (it often comes from text copied out of a binary file) and try again.</p>
  <p><a href="/">Go to the home page</a></p>
</div>
{% endblock %}
"""


def control_character_problem(text):
    """None when ``text`` is clean, else what is wrong with it, e.g. "contains a NUL character"."""
    if not isinstance(text, str):
        return None
    match = CONTROL_CHARACTERS.search(text)
    if match is None:
        return None
    char = match.group()
    at = match.start() + 1
    if char == "\x00":
        return f"contains a NUL character (at character {at:,})"
    return f"contains a control character (U+{ord(char):04X}, at character {at:,})"


def strip_control_characters(text):
    """``text`` without the control characters the rule refuses; (clean text, how many were removed)."""
    return CONTROL_CHARACTERS.subn("", text)


def shown(name):
    """A name as it can be shown in a message (control characters escaped, at most 60 characters)."""
    text = CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", str(name))
    return text if len(text) <= 60 else text[:57] + "…"


def _json_strings(value, name=""):
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key, key
            yield from _json_strings(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, name)


class ControlCharacterMiddleware:
    """400 for a request whose path, query, form fields or JSON strings hold a control character.

    Place it after AuthenticationMiddleware (the page shows the site's layout for the user).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        found = self.find(request)
        if found is not None:
            return self.refuse(request, *found)
        return self.get_response(request)

    def find(self, request):
        """(what, name, problem) of the first offending text, or None."""
        problem = control_character_problem(request.path_info)
        if problem:
            return "address", "", problem
        for name, values in request.GET.lists():
            for text in (name, *values):
                if problem := control_character_problem(text):
                    return "query parameter", name, problem
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        content_type = request.content_type or ""
        if content_type in FORM_TYPES:
            for name, values in request.POST.lists():
                for text in (name, *values):
                    if problem := control_character_problem(text):
                        return "form field", name, problem
            for name, upload in request.FILES.items():
                if problem := control_character_problem(upload.name):
                    return "file name of", name, problem
        elif content_type == "application/json" or content_type.endswith("+json"):
            body = request.body
            if _JSON_ESCAPE.search(body):
                try:
                    data = json.loads(body)
                except ValueError:
                    return None  # not JSON: the parser answers that
                for name, text in _json_strings(data):
                    if problem := control_character_problem(text):
                        return "JSON field", name, problem
        return None

    def refuse(self, request, what, name, problem):
        subject = f"The {what} {shown(name)!r}" if name else f"The {what}"
        message = f"{subject} {problem}, which GlassLoop does not accept."
        if request.path_info.startswith("/api/") or "json" in request.headers.get("Accept", "") or (
            request.content_type or ""
        ).endswith("json"):
            return JsonResponse({"error": message, "detail": {shown(name) or what: [message]}}, status=400)
        html = engines["django"].from_string(PAGE).render({"message": message}, request)
        return HttpResponse(html, status=400)



# The site's policy (GLASSLOOP_CSP=on): scripts, styles, images, fonts and fetches from the site
# only; never plugins, a foreign <base>, a form posting elsewhere or a frame around a page.
# Scripts only from static files: no inline <script>, on…= attribute or javascript: link runs
# (data reaches scripts through data-* attributes or json_script), no 'unsafe-eval'; styles only
# from static files too: no <style> element or style="…" attribute (a progress bar is a
# <progress>; scripts set sizes through el.style, which a policy allows). The every-page
# browser crawl runs under this policy (tests/browser/test_every_page.py).
SITE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# The same policy with inline styles allowed (styles only; scripts stay the site's files), for
# markup that is not ours to change: Swagger UI (/api/docs/) carries style attributes, and a
# plot's SVG (matplotlib's <style> and style="…") when it is opened as a page of its own rather
# than shown in an <img>. The admin runs under the site's policy: the few style attributes of
# its packages' pages are cut by templates/admin/import_export/export.html and
# templates/simple_history/object_history.html (tests/browser/test_admin_csp.py crawls it).
INLINE_STYLES_POLICY = SITE_POLICY.replace("style-src 'self';", "style-src 'self' 'unsafe-inline';")
INLINE_STYLES_PATHS = ("/api/docs/",)
INLINE_STYLES_TYPES = ("image/svg+xml",)


def content_security_policy(path="", content_type=""):
    """The header's value from settings.GLASSLOOP_CSP: "" or off (none), on (SITE_POLICY, or
    INLINE_STYLES_POLICY for the paths and types above), or a policy of one's own (everywhere)."""
    from django.conf import settings

    value = settings.GLASSLOOP_CSP.strip()
    if value.lower() in ("", "off"):
        return ""
    if value.lower() != "on":
        return value
    if path.startswith(INLINE_STYLES_PATHS) or content_type.split(";")[0].strip() in INLINE_STYLES_TYPES:
        return INLINE_STYLES_POLICY
    return SITE_POLICY


class ContentSecurityPolicyMiddleware:
    """Sends the Content-Security-Policy header (content_security_policy()) unless a view set one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = content_security_policy(request.path_info, response.get("Content-Type", ""))
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
