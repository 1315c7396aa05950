"""An XRD measurement left "pending" by an analysis job that ended without success before
XRDAnalysis.on_failed_or_cancelled existed (a killed worker, the sweep, a cancel) says
"failed" now: the pages read the row's status, which now follows its job."""

from django.db import migrations


def mend(apps, schema_editor):
    XRDMeasurement = apps.get_model("lab", "XRDMeasurement")
    XRDMeasurement.objects.filter(analysis_status="pending", xrd_analysis__status__in=("failed", "cancelled")).update(
        analysis_status="failed")


class Migration(migrations.Migration):

    dependencies = [
        ("lab", "0012_xrd_analysis_on_worker"),
    ]

    operations = [
        migrations.RunPython(mend, migrations.RunPython.noop),
    ]
