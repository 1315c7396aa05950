"""The rows of an import's report, one database row each (imported at the end of lab.models).

A report used to be one JSON list on the AlloyImport: a 20,000-row import meant loading, sorting
and rendering 20,000 entries for every view of its page. As rows, one page of one outcome is
one indexed query.
"""

from django.db import models

from .models import Alloy, AlloyImport

__all__ = ["ImportRow"]


class ImportRow(models.Model):
    """What one row of an imported table became (lab.importing's outcomes) and why."""

    class Outcome(models.TextChoices):
        CREATED = "created", "created"
        MERGED = "merged", "merged"
        CONFLICT = "conflict", "conflict"
        REFUSED = "refused", "refused"

    alloy_import = models.ForeignKey(AlloyImport, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField(help_text="Line (CSV) or row (XLSX) in the uploaded file")
    composition = models.TextField(blank=True, help_text="As written in the file")
    formula = models.CharField(max_length=255, blank=True, help_text="As parsed (empty when refused)")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    # Null on a dry run (nothing was saved) and for refused rows.
    alloy = models.ForeignKey(Alloy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tg_k = models.FloatField(null=True, blank=True)
    tx_k = models.FloatField(null=True, blank=True)
    tl_k = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["alloy_import", "line"]
        indexes = [
            models.Index(fields=["alloy_import", "line"], name="lab_importrow_line"),
            models.Index(fields=["alloy_import", "outcome", "line"], name="lab_importrow_outcome"),
        ]

    def __str__(self):
        return f"line {self.line}: {self.outcome}"
