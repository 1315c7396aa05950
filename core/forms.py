"""Form fields every app shares."""

from django import forms
from django.core.exceptions import ValidationError

# Primary keys are 64-bit signed integers in every database we run on; a larger number would
# reach the database driver (SQLite raises OverflowError) instead of being refused.
_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1


def _out_of_range(value) -> bool:
    try:
        number = int(str(value).strip())
    except ValueError:
        return False  # the field's own validation refuses it
    return not _ID_MIN <= number <= _ID_MAX


class _ListChoiceIterator(forms.models.ModelChoiceIterator):
    """The options read in one plain query: Django's iterator() opens a server-side cursor
    on PostgreSQL (DECLARE ... WITH HOLD, then FETCH and CLOSE: three round trips and a
    held cursor) for a select of a few dozen options on every page that shows the form."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():
            yield self.choice(obj)


class IdChoiceField(forms.ModelChoiceField):
    """ModelChoiceField that refuses an id too large to be one as an invalid choice."""

    iterator = _ListChoiceIterator

    def to_python(self, value):
        if value not in self.empty_values and _out_of_range(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    """ModelMultipleChoiceField that refuses ids too large to be ones as invalid choices."""

    def _check_values(self, value):
        for v in value:
            if _out_of_range(v):
                raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": v})
        return super()._check_values(value)
