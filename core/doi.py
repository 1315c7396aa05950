"""DOIs, written once: what a DOI looks like, how it is written as an identity, and how one
is found in running text. Used by the lab import (``lab.importing``), the lab's Reference
model, the mining sources (``mining.services``, ``mining.forms``) and the ``add_sources``
command.

A DOI is ``10.<registrant>/<suffix>`` (registrant 4–9 digits). Its identity here is the bare
DOI in lower case (DOIs are case-insensitive, DOI handbook 2.4), without the resolver prefix
(``https://doi.org/``, ``http://dx.doi.org/``, ``doi:``).
"""

import re

from django.core.exceptions import ValidationError

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
# A DOI inside running text (a paper's first page); strip trailing punctuation from a match.
DOI_IN_TEXT_RE = re.compile(r"\b10\.\d{4,9}/[^\s\"<>]+")
_PREFIX = re.compile(r"^(?:(?:https?://)?(?:www\.)?(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


class InvalidDOI(ValidationError, ValueError):
    """Text that is not a DOI. Both a Django ValidationError (forms, models) and a ValueError."""

    def __str__(self):
        return " ".join(self.messages)


def normalise_doi(text) -> str:
    """'https://doi.org/10.1063/1.110520 ' -> '10.1063/1.110520' (lower case); '' for none.

    Does not check that the result is a DOI: :func:`validate_doi` does.
    """
    return _PREFIX.sub("", str(text or "").strip()).strip().lower()


def validate_doi(text) -> str:
    """The normalised DOI ('' for blank text); raises InvalidDOI for text that is not a DOI."""
    doi = normalise_doi(text)
    if doi and not DOI_RE.match(doi):
        raise InvalidDOI(
            f"{str(text).strip()!r} is not a DOI (expected 10.<registrant>/<suffix>, e.g. 10.1063/1.110520).",
            code="invalid_doi",
        )
    return doi


def find_doi(text) -> str:
    """The first DOI in running text, normalised ('' when there is none)."""
    found = DOI_IN_TEXT_RE.search(text or "")
    return normalise_doi(found.group().rstrip(".,;)")) if found else ""
