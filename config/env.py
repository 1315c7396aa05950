"""Strict readers for settings taken from the environment (used by config/settings.py only).

Each reader returns ``default`` when the variable is unset or blank (docker compose passes
``VAR=`` for a variable left empty in .env), and otherwise parses the value strictly: a value
that does not parse raises ``ImproperlyConfigured`` naming the variable, so a typo stops the
process at start instead of silently becoming False or a default. Error messages quote the
value; read a secret with ``env_str`` and no ``choices``, which never fails and so never
shows it.
"""

import json
import math
import os

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _raw(name, environ):
    """The variable's value with surrounding blanks removed, or None when unset or blank."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_str(name, default="", *, choices=None, environ=None):
    """A string; with ``choices``, one of them (compared case-sensitively)."""
    value = _raw(name, environ)
    if value is None:
        return default
    if choices is not None and value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def env_bool(name, default, *, environ=None):
    """1/0, true/false, yes/no or on/off, in any case."""
    value = _raw(name, environ)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def _check_min(name, value, raw, min, above):
    if min is not None and value < min:
        raise ImproperlyConfigured(f"{name}={raw!r} is too small; it must be at least {min}.")
    if above is not None and value <= above:
        raise ImproperlyConfigured(f"{name}={raw!r} is too small; it must be greater than {above}.")
    return value


def env_int(name, default, *, min=None, above=None, environ=None):
    """A whole number (``_`` separators allowed, as in Python); ``min`` is inclusive, ``above`` exclusive."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    return _check_min(name, value, raw, min, above)


def env_float(name, default, *, min=None, above=None, environ=None):
    """A finite number; ``min`` is inclusive, ``above`` exclusive."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number.")
    return _check_min(name, value, raw, min, above)


def env_list(name, default=(), *, environ=None):
    """Comma-separated strings, blanks around each item and empty items dropped."""
    raw = _raw(name, environ)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


RATE_PERIODS = ("second", "minute", "hour", "day")


def env_rate(name, default, *, environ=None):
    """A request rate as DRF writes it: ``N/second``, ``N/minute``, ``N/hour`` or ``N/day`` (N ≥ 1)."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    count, _, period = raw.partition("/")
    if not (count.strip().isdigit() and int(count) >= 1 and period.strip() in RATE_PERIODS):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate; write e.g. 20/minute ({', '.join(RATE_PERIODS)}).")
    return f"{int(count)}/{period.strip()}"


def env_json_object(name, default=None, *, environ=None):
    """A JSON object (a dict), e.g. ``{"hidden": 64}``."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not valid JSON ({exc.msg}).") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a JSON object ({{\"key\": value, ...}}).")
    return value
