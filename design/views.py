"""Design pages: campaigns, their candidates, approval, progress of generation."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from core import jobs
from core.jobs import QUEUE_UNAVAILABLE
from core.roles import APPROVER, EXPERIMENTER, VIEWER, has_role, role_required
from core.views import job_action_view
from training.models import ModelVersion

from . import feasibility, generation, recipes, selectors, services
from .forms import CampaignForm, DecisionForm, SynthesisSampleForm
from .models import GFA_LABELS, INTERVAL_LABEL, INTERVAL_NOTE, NO_GFA_MODEL, P_BMG_LABEL, Candidate, DesignCampaign


def _errors(exc):
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@role_required(VIEWER)
def campaign_list(request):
    return render(
        request,
        "design/campaign_list.html",
        {"campaigns": selectors.campaign_list(), "can_create": has_role(request.user, APPROVER) or has_role(request.user, EXPERIMENTER)},
    )


@role_required(VIEWER)
def campaign_create(request):
    if not (has_role(request.user, APPROVER) or has_role(request.user, EXPERIMENTER)):
        messages.error(request, "Creating a campaign needs the experimenter or approver role.")
        return redirect("design:campaign_list")
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.create_campaign(owner=request.user, **form.campaign_fields())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Campaign “{campaign.name}” created. Generate its first round of candidates.")
            return redirect(campaign)
    return render(request, "design/campaign_form.html", {"form": form})


@role_required(VIEWER)
def campaign_detail(request, pk):
    campaign = get_object_or_404(DesignCampaign, pk=pk)  # the page does not show its owner
    sort = request.GET.get("sort", "rank")
    candidates = selectors.campaign_candidates(campaign, sort)
    measured = list(selectors.measured_candidates(campaign))
    rounds = list(selectors.round_history(campaign))
    current = rounds[-1] if rounds else None  # the latest round (the history is in round order)
    for r in rounds:
        r.explanation = feasibility.round_explanation(r.counts, campaign) if r.status == "done" else ""
    versions = list(selectors.model_history())
    return render(
        request,
        "design/campaign_detail.html",
        {
            "campaign": campaign,
            "candidates": candidates,
            "sort": sort,
            "sorts": selectors.CANDIDATE_SORTS,
            "round": current,
            "round_live": current is not None and not current.is_finished,
            "rounds": rounds,
            "round_explanation": next((r.explanation for r in rounds if current and r.pk == current.pk), ""),
            "feasibility": feasibility.feasibility(campaign),
            "measured": measured,
            "versions": versions,
            # among the versions listed (at most one is active: one_active_model_version), not a query more
            "active_version": next((v for v in versions if v.status == ModelVersion.Status.ACTIVE), None),
            "formula": generation.ACQUISITION_FORMULA,
            "no_gfa_model": NO_GFA_MODEL,
            "can_approve": has_role(request.user, APPROVER),
            "can_generate": has_role(request.user, APPROVER) or has_role(request.user, EXPERIMENTER),
            "can_synthesise": has_role(request.user, EXPERIMENTER) or has_role(request.user, APPROVER),
        },
    )


@require_POST
@role_required(VIEWER)
def campaign_generate(request, pk):
    campaign = get_object_or_404(DesignCampaign, pk=pk)
    if not (has_role(request.user, APPROVER) or has_role(request.user, EXPERIMENTER)):
        messages.error(request, "Generating candidates needs the experimenter or approver role.")
        return redirect(campaign)
    try:
        gen_round = services.start_generation(campaign, user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect(campaign)
    if gen_round.error.startswith(QUEUE_UNAVAILABLE):
        messages.error(request, f"{QUEUE_UNAVAILABLE}: round {gen_round.number} is saved as queued but cannot run yet.")
    else:
        messages.success(request, f"Round {gen_round.number} queued: sampling {campaign.n_draws:,} compositions.")
    return redirect(campaign)


round_action = job_action_view("design.GenerationRound", detail_url=lambda r: r.campaign.get_absolute_url())


@require_POST
@role_required(APPROVER)
def campaign_close(request, pk):
    campaign = get_object_or_404(DesignCampaign, pk=pk)
    services.close_campaign(campaign, user=request.user)
    messages.success(request, "Campaign closed.")
    return redirect(campaign)


@require_GET
@role_required(VIEWER)
def campaign_status(request, pk):
    """JSON for the page's polling: the latest round's progress."""
    campaign = get_object_or_404(DesignCampaign, pk=pk)
    r = selectors.latest_round(campaign)
    data = {"campaign": campaign.pk, "n_candidates": campaign.candidates.count(), "round": None}
    if r is not None:
        data["round"] = {**jobs.status_payload(r), "number": r.number, "counts": r.counts}
    return JsonResponse(data)


@require_GET
@role_required(VIEWER)
def campaign_map(request, pk):
    from .plots import pca_map_svg

    campaign = get_object_or_404(DesignCampaign, pk=pk)
    known, candidates, validated, failed = selectors.map_points(campaign)
    highlight = None
    raw = request.GET.get("highlight", "")
    if raw.isdigit():  # ?highlight=<candidate id>: that candidate of this campaign as a large ring
        highlight = campaign.candidates.filter(pk=int(raw)).first()
    svg = pca_map_svg(
        known, candidates, validated, failed, title=f"{campaign.name}: composition map",
        highlight=highlight.fractions if highlight else None,
        highlight_label=f"{highlight.label} {highlight.formula}" if highlight else "",
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=0"
    return response


@require_GET
@role_required(VIEWER)
def campaign_parity(request, pk):
    from .plots import parity_svg

    campaign = get_object_or_404(DesignCampaign, pk=pk)
    rows = [
        (c.label, {"Tg": (c.tg_k_pred, c.tg_k_measured), "Tx": (c.tx_k_pred, c.tx_k_measured), "Tl": (c.tl_k_pred, c.tl_k_measured)})
        for c in selectors.measured_candidates(campaign)
    ]
    return HttpResponse(parity_svg(rows, title="Predicted vs measured"), content_type="image/svg+xml")


@role_required(VIEWER)
def candidate_detail(request, pk, sample_form=None, status=200):
    candidate = get_object_or_404(
        Candidate.objects.select_related("campaign", "generation_round", "model_version", "sample", "alloy", "nearest_known_alloy"),
        pk=pk,
    )
    return render(
        request,
        "design/candidate_detail.html",
        {
            "c": candidate,
            "events": candidate.events.select_related("user"),
            "history": candidate.history.select_related("history_user").order_by("-history_date")[:30],
            "comparison": candidate.predicted_vs_measured(),
            "why": _why(candidate),
            "nearest": selectors.nearest_alloys(candidate),
            "recipe": recipes.recipe_for(candidate.formula, request.GET),
            "interval_label": INTERVAL_LABEL,
            "interval_note": INTERVAL_NOTE,
            "no_gfa_model": NO_GFA_MODEL,
            "p_bmg_label": P_BMG_LABEL,
            "form": DecisionForm(),
            "sample_form": sample_form or (SynthesisSampleForm(sample=candidate.sample) if candidate.sample_id else None),
            "parts": candidate.validation_parts(),
            "events_readable": [(e, e.from_status_display, e.get_to_status_display()) for e in candidate.events.select_related("user")],
            "can_approve": has_role(request.user, APPROVER),
            "can_synthesise": has_role(request.user, EXPERIMENTER) or has_role(request.user, APPROVER),
        },
        status=status,
    )


@require_POST
@role_required(VIEWER)
def candidate_sample(request, pk):
    """The casting details of the candidate's sample (experimenter or approver)."""
    candidate = get_object_or_404(Candidate.objects.select_related("sample"), pk=pk)
    if not (has_role(request.user, EXPERIMENTER) or has_role(request.user, APPROVER)):
        messages.error(request, "Editing the sample needs the experimenter or approver role.")
        return redirect(candidate)
    if candidate.sample_id is None:
        messages.error(request, f"{candidate.label} has no sample yet: approve it for synthesis first.")
        return redirect(candidate)
    form = SynthesisSampleForm(request.POST, sample=candidate.sample)
    if form.is_valid():
        try:
            candidate = services.update_synthesis_sample(candidate, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Sample {candidate.sample.label} saved; {candidate.label} is {candidate.get_status_display().lower()}.")
            return redirect(candidate)
    return candidate_detail(request, pk, sample_form=form, status=400)


@require_GET
@role_required(VIEWER)
def candidate_recipe(request, pk):
    """The casting recipe alone, laid out for printing (?ingot_g=…&purity=… as on the candidate page)."""
    candidate = get_object_or_404(Candidate.objects.select_related("campaign"), pk=pk)
    req = recipes.recipe_for(candidate.formula, request.GET)
    return render(request, "design/recipe_print.html", {"c": candidate, "recipe": req}, status=400 if req.errors else 200)


def _why(candidate):
    """The top feature contributions of each GFA prediction, readable: [{label, rows, svg}],
    rows as (feature, "raises"/"lowers", |value|, value)."""
    from .plots import contributions_svg

    groups = []
    for key, label in GFA_LABELS.items():
        rows = [(f, v) for f, v in (candidate.contributions or {}).get(key) or () if isinstance(v, (int, float))]
        if not rows:
            continue
        rows.sort(key=lambda r: -abs(r[1]))
        groups.append({
            "key": key,
            "label": label,
            "rows": [(f, "raises" if v >= 0 else "lowers", abs(v), v) for f, v in rows],
            # contributions_svg escapes every text it writes
            "svg": mark_safe(contributions_svg(rows, gid=f"why-{key}", title=f"What drives {label}")),  # noqa: S308
        })
    return groups


def _decide(request, pk, action):
    candidate = get_object_or_404(Candidate, pk=pk)
    form = DecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if action == "approve":
            candidate = services.approve_candidate(candidate, user=request.user, note=note)
            messages.success(request, f"{candidate.label} approved for synthesis: sample {candidate.sample.label} is ready to cast.")
        elif action == "reject":
            candidate = services.reject_candidate(candidate, user=request.user, note=note)
            messages.success(request, f"{candidate.label} rejected.")
        else:
            candidate = services.start_synthesis(candidate, user=request.user, note=note)
            messages.success(request, f"{candidate.label} is in synthesis.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    nxt = request.POST.get("next", "")
    if nxt.startswith("/") and not nxt.startswith("//"):
        return redirect(nxt)
    return redirect(candidate)


@require_POST
@role_required(APPROVER)
def candidate_approve(request, pk):
    return _decide(request, pk, "approve")


@require_POST
@role_required(APPROVER)
def candidate_reject(request, pk):
    return _decide(request, pk, "reject")


@require_POST
@role_required(VIEWER)
def candidate_start(request, pk):
    if not (has_role(request.user, EXPERIMENTER) or has_role(request.user, APPROVER)):
        messages.error(request, "Starting synthesis needs the experimenter role.")
        return redirect("design:candidate_detail", pk=pk)
    return _decide(request, pk, "start")
