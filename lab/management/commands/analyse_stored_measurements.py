"""manage.py analyse_stored_measurements: analyse, once, the XRD patterns and DSC curves stored
before their analyses were (XRDMeasurement.plot, DSCMeasurement.trace_analysis), so their plots
and the DSC proposals are there without any page analysing a file."""

from django.core.management.base import BaseCommand

from lab import services
from lab.models import DSCMeasurement, XRDMeasurement
from lab.patterns import PatternError


class Command(BaseCommand):
    help = "Store the plot data of old XRD measurements and the trace proposals of old DSC curves (once; safe to re-run)."

    def handle(self, *args, **options):
        done, failed = {"XRD": 0, "DSC": 0}, []
        for xrd in XRDMeasurement.objects.filter(plot={}).exclude(pattern="").order_by("pk").iterator():
            try:
                services.store_xrd_plot(xrd)
                done["XRD"] += 1
            except (PatternError, OSError) as exc:
                failed.append(f"XRD #{xrd.pk}: {exc}")
        for dsc in DSCMeasurement.objects.filter(trace_analysis={}).exclude(curve="").order_by("pk").iterator():
            try:
                services.store_dsc_trace_analysis(dsc)
                done["DSC"] += 1
            except (PatternError, OSError) as exc:
                failed.append(f"DSC #{dsc.pk}: {exc}")
        for line in failed:
            self.stderr.write(f"not analysed: {line}")
        self.stdout.write(f"Analysed {done['XRD']} XRD pattern(s) and {done['DSC']} DSC curve(s); {len(failed)} could not be read.")
