"""manage.py analyse_stored_measurements: analyse, once, the XRD patterns and DSC curves stored
before their analyses were (XRDMeasurement.plot, DSCMeasurement.trace_analysis), so their plots
and the DSC proposals are there without any page analysing a file; and finish, in this process,
the uploaded patterns whose analysis is still queued (lab.XRDAnalysis: e.g. no worker ran)."""

from django.core.management.base import BaseCommand

from core.jobs import JobStatus
from lab import services
from lab.models import DSCMeasurement, XRDAnalysis, XRDMeasurement
from lab.patterns import PatternError


class Command(BaseCommand):
    help = ("Store the plot data of old XRD measurements and the trace proposals of old DSC curves, and run the "
            "queued analyses of uploaded XRD patterns (once; safe to re-run).")

    def handle(self, *args, **options):
        done, failed = {"XRD": 0, "DSC": 0}, []
        # Queued analyses first (the same service as the worker's; a worker that picks one up
        # meanwhile wins the claim and this skips it).
        queued = XRDAnalysis.objects.filter(status=JobStatus.QUEUED, cancel_requested=False).order_by("pk")
        analysed = 0
        for pk in queued.values_list("pk", flat=True):
            job = services.analyse_xrd(pk)
            if job is not None and job.status == JobStatus.DONE:
                analysed += 1
            elif job is not None and job.status == JobStatus.FAILED:
                failed.append(f"XRD #{job.measurement_id}: {job.error}")
        for xrd in XRDMeasurement.objects.filter(plot={}, analysis_status=XRDMeasurement.Analysis.DONE).exclude(pattern="").order_by("pk").iterator():
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
        self.stdout.write(f"Ran {analysed} queued XRD analysis(es) of uploaded patterns.")
        self.stdout.write(f"Analysed {done['XRD']} XRD pattern(s) and {done['DSC']} DSC curve(s); {len(failed)} could not be read.")
