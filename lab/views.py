"""Lab pages: alloys, samples, logging experiments, XRD/DSC measurements and their plots.

Thin views: forms clean the input, services change state, selectors read.
viewer reads everything; experimenter logs samples and measurements and overrides verdicts.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from core.roles import EXPERIMENTER, VIEWER, has_role, role_required

from . import selectors, services
from .forms import (
    AlloySearchForm,
    ConflictResolutionForm,
    DSCCorrectionForm,
    DSCForm,
    LogExperimentForm,
    PropertyValueCorrectionForm,
    RetractForm,
    SampleCorrectionForm,
    VerdictOverrideForm,
    XRDForm,
    add_service_errors,
)
from .models import CU_KALPHA_WAVELENGTH_A, TemperatureUnit

ALLOYS_PER_PAGE = 50
SAMPLES_PER_PAGE = 50


def _page(request, queryset, per_page):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


# ------------------------------------------------------------------ alloys


@role_required(VIEWER)
def alloy_list(request):
    form = AlloySearchForm(request.GET or None)
    if form.is_bound:
        form.is_valid()  # invalid fields are shown and left out of the filter
    page = _page(request, selectors.alloy_list(form.filters()), ALLOYS_PER_PAGE)
    return render(request, "lab/alloy_list.html", {"form": form, "page": page, "alloys": page.object_list})


@role_required(VIEWER)
def alloy_detail(request, pk):
    alloy = selectors.alloy_detail(pk)
    values = list(alloy.property_values.all())
    samples = list(alloy.samples.all())
    return render(
        request,
        "lab/alloy_detail.html",
        {
            "alloy": alloy,
            "composition": selectors.composition_table(alloy),
            "values": values,
            "summary": selectors.property_summary([v for v in values if v.counts]),
            "n_left_out": sum(1 for v in values if not v.counts),
            "samples": samples,
            "castings": selectors.casting_evidence(samples),
            "gfa_values": [v for v in values if v.gfa_class or v.dmax_mm is not None],
            "history": selectors.alloy_history(alloy),
            "corrections": selectors.alloy_corrections(alloy),
        },
    )


# ------------------------------------------------------------------ samples


@role_required(VIEWER)
def sample_list(request):
    text = (request.GET.get("q") or "").strip()
    page = _page(request, selectors.sample_list(text=text), SAMPLES_PER_PAGE)
    return render(request, "lab/sample_list.html", {"page": page, "samples": page.object_list, "q": text})


@role_required(VIEWER)
def sample_detail(request, pk):
    sample = selectors.sample_detail(pk)
    return render(
        request,
        "lab/sample_detail.html",
        {
            "sample": sample,
            "xrds_pending": any(not x.is_analysed for x in sample.xrds),  # progress polled
            "override_form": VerdictOverrideForm(),
            "history": selectors.sample_history(sample),
            "corrections": selectors.sample_corrections(sample),
        },
    )


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def log_experiment(request):
    # "Log another sample of this alloy" links pass the composition.
    initial = {"composition": request.GET.get("composition", "")}
    form = LogExperimentForm(request.POST or None, request.FILES or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sample = services.log_experiment(
                user=request.user,
                composition=data["composition"],
                label=data["label"],
                alloy_name=data.get("alloy_name") or "",
                method=data["method"],
                diameter_mm=data.get("diameter_mm"),
                cast_on=data.get("cast_on"),
                notes=data.get("notes") or "",
                xrd_file=data.get("xrd_file") or None,
                wavelength_a=data.get("wavelength_a") or CU_KALPHA_WAVELENGTH_A,
                dsc=data.get("dsc"),
                prepared_xrd=data.get("xrd"),
                prepared_dsc=data.get("dsc_prepared") if data.get("dsc") else None,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            form.discard_kept()
            parts = ["sample"] + (["XRD"] if data.get("xrd_file") else []) + (["DSC"] if data.get("dsc") else [])
            analysing = " The XRD pattern is being analysed; its verdict follows on this page." if data.get("xrd_file") else ""
            messages.success(request, f"Logged {' + '.join(parts)} for {sample.label} ({sample.alloy.formula}).{analysing}")
            return redirect("lab:sample_detail", pk=sample.pk)
    return render(request, "lab/log_experiment.html", {"form": form})


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def add_xrd(request, pk):
    sample = selectors.sample_detail(pk)
    form = XRDForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            xrd = services.record_xrd(
                sample,
                user=request.user,
                uploaded_file=form.cleaned_data["xrd_file"],
                wavelength_a=form.cleaned_data.get("wavelength_a") or CU_KALPHA_WAVELENGTH_A,
                prepared=form.cleaned_data.get("xrd"),  # analysed by the form: not again
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            form.discard_kept()
            messages.success(request, f"XRD #{xrd.pk} of {sample.label} stored; the pattern is being analysed and its verdict "
                                      "follows on this page.")
            return redirect("lab:sample_detail", pk=sample.pk)
    return render(request, "lab/add_xrd.html", {"form": form, "sample": sample})


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def add_dsc(request, pk):
    sample = selectors.sample_detail(pk)
    form = DSCForm(request.POST or None, request.FILES or None, alloy=sample.alloy, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.record_dsc(sample, user=request.user, prepared=form.cleaned_data.get("dsc_prepared"),
                                **form.cleaned_data["dsc"])
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            form.discard_kept()
            messages.success(request, f"DSC of {sample.label} recorded.")
            return redirect("lab:sample_detail", pk=sample.pk)
    return render(request, "lab/add_dsc.html", {"form": form, "sample": sample})


# ------------------------------------------------------------------ XRD / DSC


@role_required(VIEWER)
@require_http_methods(["GET", "POST"])
def xrd_detail(request, pk):
    xrd = selectors.xrd_detail(pk)
    form = VerdictOverrideForm(initial={"verdict": xrd.verdict})
    if request.method == "POST":
        if not has_role(request.user, EXPERIMENTER):
            raise PermissionDenied("Overriding a verdict needs the experimenter role.")
        form = VerdictOverrideForm(request.POST)
        if form.is_valid():
            try:
                services.override_xrd_verdict(
                    xrd, user=request.user, verdict=form.cleaned_data["verdict"], reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Verdict updated.")
                return redirect(_safe_next(request) or reverse("lab:xrd_detail", args=[xrd.pk]))
    return render(
        request, "lab/xrd_detail.html",
        {"xrd": xrd, "form": form, "history": selectors.xrd_history(xrd), "corrections": selectors.record_corrections("xrd", xrd.pk)}
    )


def _safe_next(request):
    """The ``next`` URL of a form if it stays on this site, else None."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


def _stored_bytes(field_file):
    if not field_file:
        raise Http404("No file stored.")
    try:
        with field_file.open("rb") as fh:
            return fh.read()
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The stored file is missing.") from exc


# Rendered plots are cached (the default cache: Redis when configured) under a key that changes
# whenever what they show may change: the record (its creation time, so a reused id never hits
# an old plot), its version (every correction and acceptance), the verdict and the title. The
# render itself costs ~0.7 s (matplotlib) even from the stored data.
PLOT_CACHE_SECONDS = 24 * 3600


def _cached_plot(kind, record, parts, render):
    import hashlib

    from django.core.cache import cache

    text = "|".join(str(p) for p in (record.pk, record.created_at.timestamp(), record.version, *parts))
    key = f"lab:{kind}-plot:{hashlib.sha256(text.encode()).hexdigest()[:32]}"
    svg_text = cache.get(key)
    if svg_text is None:
        svg_text = render()
        cache.set(key, svg_text, PLOT_CACHE_SECONDS)
    return svg_text


def _svg(svg_text):
    response = HttpResponse(svg_text, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=300"
    return response


def _svg_placeholder(text):
    """A small SVG saying why there is no plot (not cached: the state changes soon)."""
    from django.utils.html import escape

    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="120" viewBox="0 0 640 120" role="img">'
           f'<title>{escape(text)}</title><rect width="640" height="120" fill="#f4f6f9"/>'
           f'<text x="320" y="66" text-anchor="middle" font-family="sans-serif" font-size="16" fill="#555">{escape(text)}</text></svg>')
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    return response


@role_required(VIEWER)
def xrd_plot(request, pk):
    """The XRD plot from what was stored at upload (XRDMeasurement.plot): the pattern is not
    read nor analysed again. Titled with the verdict that counts (a person's override first)."""
    from .patterns import PatternError
    from .plots import xrd_plot_svg

    xrd = selectors.xrd_detail(pk)
    if not xrd.is_analysed:  # nothing to draw yet, and the request never analyses a pattern
        return _svg_placeholder(xrd.analysis_state_display)
    plot = xrd.plot
    if not plot:  # recorded before plots were stored: analysed this once, then kept
        _stored_bytes(xrd.pattern)  # 404 when the file is gone
        try:
            plot = services.store_xrd_plot(xrd)
        except PatternError as exc:  # stored before the analysis changed; say so instead of failing
            raise Http404(f"The stored pattern can no longer be read: {exc}") from exc
    title = f"{xrd.sample.label} · {xrd.sample.alloy.formula}"
    return _svg(_cached_plot("xrd", xrd, (xrd.verdict, title, plot.get("version")),
                             lambda: xrd_plot_svg(plot, title=title, verdict=xrd.verdict)))


@role_required(VIEWER)
def dsc_plot(request, pk):
    """The DSC curve with the recorded Tg/Tx/Tl and, dotted, the trace's proposals stored when
    the curve was (DSCMeasurement.trace_analysis; nothing is analysed here)."""
    from .dsc_analysis import plot_proposals_of
    from .patterns import PatternError, read_dsc_file
    from .plots import dsc_plot_svg

    dsc = selectors.dsc_detail(pk)
    title = f"{dsc.sample.label} · {dsc.sample.alloy.formula}"

    def render():
        data = _stored_bytes(dsc.curve)
        try:
            curve = read_dsc_file(
                data, name=dsc.curve.name, temperature_unit=dsc.curve_temperature_unit or TemperatureUnit.KELVIN
            )
        except PatternError as exc:
            raise Http404(f"The stored curve can no longer be read: {exc}") from exc
        return dsc_plot_svg(curve, tg_k=dsc.tg_k, tx_k=dsc.tx_k, tl_k=dsc.tl_k, title=title,
                            proposals=plot_proposals_of(dsc.trace_analysis))

    if not dsc.curve:
        raise Http404("No file stored.")
    return _svg(_cached_plot("dsc", dsc, (title, dsc.tg_k, dsc.tx_k, dsc.tl_k, dsc.curve.name), render))


@role_required(EXPERIMENTER)
@require_http_methods(["POST"])
def accept_dsc_proposals(request, pk):
    """Accept one of the trace's proposals (``field``) or all of them (no field): a correction
    with the reason "accepted the trace's proposal (method)"; refusals are shown as messages."""
    dsc = selectors.dsc_detail(pk)
    fields = [f for f in request.POST.getlist("field") if f]
    try:
        services.accept_dsc_proposals(dsc=dsc, user=request.user, fields=fields or None, version=request.POST.get("version"))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"DSC #{dsc.pk}: the trace's proposal{'s' if len(fields) != 1 else ''} accepted.")
    return redirect(_safe_next(request) or reverse("lab:sample_detail", args=[dsc.sample_id]))


# ------------------------------------------------------------------ corrections
#
# Edit and retract pages: the form carries the version the record was loaded at; the service
# refuses a stale one ("changed by X at T, reload") and the typed values are shown again.


def _correction_page(request, *, record, form, title, back, call, done):
    if request.method == "POST" and form.is_valid():
        try:
            call(form)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect(back)
    return render(request, "lab/correct.html", {"form": form, "record": record, "title": title, "back": back})


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def correct_dsc(request, pk):
    dsc = selectors.dsc_detail(pk)
    form = DSCCorrectionForm(request.POST or None, initial=DSCCorrectionForm.initial_for(dsc), alloy=dsc.sample.alloy,
                             exclude_value=getattr(dsc, "property_value", None))
    return _correction_page(
        request, record=dsc, form=form, title=f"Correct DSC #{dsc.pk} of {dsc.sample.label}",
        back=reverse("lab:sample_detail", args=[dsc.sample_id]), done=f"DSC #{dsc.pk} corrected.",
        call=lambda f: services.correct_dsc(
            dsc=dsc, user=request.user, reason=f.cleaned_data["reason"], version=f.cleaned_data["version"],
            units_confirmed=True, **f.changes()),
    )


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def correct_sample(request, pk):
    sample = selectors.sample_detail(pk)
    form = SampleCorrectionForm(request.POST or None, initial=SampleCorrectionForm.initial_for(sample), sample=sample)
    return _correction_page(
        request, record=sample, form=form, title=f"Correct sample {sample.label}",
        back=reverse("lab:sample_detail", args=[sample.pk]), done=f"Sample {sample.label} corrected.",
        call=lambda f: services.correct_sample(
            sample=sample, user=request.user, reason=f.cleaned_data["reason"], version=f.cleaned_data["version"], **f.changes()),
    )


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def correct_value(request, pk):
    value = selectors.value_detail(pk)
    if value.dsc_id:  # an experimental value is its DSC measurement's
        return redirect("lab:correct_dsc", pk=value.dsc_id)
    form = PropertyValueCorrectionForm(request.POST or None, initial=PropertyValueCorrectionForm.initial_for(value),
                                       alloy=value.alloy, exclude_value=value)
    return _correction_page(
        request, record=value, form=form, title=f"Correct property value #{value.pk} ({value.provenance})",
        back=reverse("lab:alloy_detail", args=[value.alloy_id]), done=f"Property value #{value.pk} corrected.",
        call=lambda f: services.correct_property_value(
            value=value, user=request.user, reason=f.cleaned_data["reason"], version=f.cleaned_data["version"], **f.changes()),
    )


_RETRACTABLE = {
    "sample": (selectors.sample_detail, services.retract_sample, "sample"),
    "xrd": (selectors.xrd_detail, services.retract_xrd, "xrd"),
    "dsc": (selectors.dsc_detail, services.retract_dsc, "dsc"),
    "value": (selectors.value_detail, services.retract_property_value, "value"),
}


def _back_of(record):
    from .models import PropertyValue, Sample

    if isinstance(record, Sample):
        return reverse("lab:sample_detail", args=[record.pk])
    if isinstance(record, PropertyValue):
        return reverse("lab:alloy_detail", args=[record.alloy_id])
    return reverse("lab:sample_detail", args=[record.sample_id])


def _retract_view(kind):
    get, retract, keyword = _RETRACTABLE[kind]

    @role_required(EXPERIMENTER)
    @require_http_methods(["GET", "POST"])
    def view(request, pk):
        record = get(pk)
        name = services._record_name(record)
        form = RetractForm(request.POST or None, initial={"version": record.version})
        return _correction_page(
            request, record=record, form=form, title=f"Retract {name}", back=_safe_next(request) or _back_of(record),
            done=f"{name.capitalize()} retracted: kept and shown, out of the means and the training data.",
            call=lambda f: retract(**{keyword: record}, user=request.user, reason=f.cleaned_data["reason"],
                                   version=f.cleaned_data["version"]),
        )

    view.__name__ = view.__qualname__ = f"retract_{kind}"
    return view


retract_sample = _retract_view("sample")
retract_xrd = _retract_view("xrd")
retract_dsc = _retract_view("dsc")
retract_value = _retract_view("value")


@role_required(EXPERIMENTER)
@require_http_methods(["GET", "POST"])
def resolve_conflict(request, pk):
    value = selectors.value_detail(pk)
    form = ConflictResolutionForm(request.POST or None, initial={"version": value.version})
    return _correction_page(
        request, record=value, form=form, title=f"Resolve the conflict of property value #{value.pk} ({value.provenance})",
        back=reverse("lab:alloy_detail", args=[value.alloy_id]), done="Conflict resolved.",
        call=lambda f: services.resolve_conflict(value=value, user=request.user, how=f.cleaned_data["how"],
                                                 reason=f.cleaned_data["reason"], version=f.cleaned_data["version"]),
    )
