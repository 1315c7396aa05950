"""Actions of the design loop: campaigns, generation rounds, approval, results coming back.

Each public function is one transaction (generation writes its progress as it goes).
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core import jobs
from lab.models import Alloy, Sample, XRDMeasurement, analysed
from ml.composition import parse_composition
from ml.rules import display_k

from . import generation
from .models import Candidate, CandidateEvent, DesignCampaign, GenerationRound, status_label

logger = logging.getLogger(__name__)


class TransitionError(ValidationError):
    """A candidate cannot make the requested step (wrong status, already done by someone)."""


# ------------------------------------------------------------------------------ campaigns


@transaction.atomic
def create_campaign(*, owner, name, targets, **fields):
    campaign = DesignCampaign(owner=owner, name=(name or "").strip(), targets=targets, **fields)
    campaign.full_clean()
    campaign._history_user = owner
    campaign.save()
    return campaign


# Fields a campaign's owner may change after creation (through the API); the rest shape what
# its rounds already did.
EDITABLE_FIELDS = (
    "name", "description", "targets", "min_p_glass", "min_p_bmg", "min_novelty", "batch_size", "n_draws", "kappa",
    "novelty_weight", "fill_with_near_misses",
)


@transaction.atomic
def update_campaign(campaign, *, user, **fields):
    """Change an open campaign's targets and thresholds (validated as on creation); the next
    round uses them, earlier rounds keep what they were generated with."""
    campaign = DesignCampaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != DesignCampaign.Status.OPEN:
        raise ValidationError("The campaign is closed.")
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(campaign, name, value.strip() if name == "name" and isinstance(value, str) else value)
    campaign.full_clean()
    campaign._history_user = user
    campaign.save()
    return campaign


@transaction.atomic
def close_campaign(campaign, *, user):
    campaign = DesignCampaign.objects.select_for_update().get(pk=campaign.pk)
    campaign.status = DesignCampaign.Status.CLOSED
    campaign._history_user = user
    campaign.save()
    return campaign


def spec_for(campaign) -> generation.DesignSpec:
    return generation.DesignSpec(
        targets=campaign.targets,
        base_element=campaign.base_element,
        allowed_elements=tuple(campaign.allowed_elements or ()),
        forbidden_elements=tuple(campaign.forbidden_elements or ()),
        max_elements=campaign.max_elements,
        element_ranges={k: tuple(v) for k, v in (campaign.element_ranges or {}).items()},
        min_p_glass=campaign.min_p_glass,
        min_p_bmg=campaign.min_p_bmg,
        min_novelty=campaign.min_novelty,
        batch_size=campaign.batch_size,
        n_draws=campaign.n_draws,
        kappa=campaign.kappa,
        novelty_weight=campaign.novelty_weight,
        fill_with_near_misses=campaign.fill_with_near_misses,
    )


# ------------------------------------------------------------------------------ generation


def create_round(campaign, *, user=None):
    """Create the next round of a campaign, queued (nobody runs it yet).

    Refuses while a round of this campaign is still queued or running, the campaign is
    closed, or no model is active.
    """
    from training import selectors as ml_selectors

    with transaction.atomic():
        campaign = DesignCampaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != DesignCampaign.Status.OPEN:
            raise ValidationError("The campaign is closed.")
        jobs.fail_stale(GenerationRound)  # a round whose worker died does not block the campaign
        live = campaign.rounds.filter(status__in=(GenerationRound.Status.QUEUED, GenerationRound.Status.RUNNING)).first()
        if live is not None:
            raise ValidationError(f"Round {live.number} is still {live.get_status_display().lower()}; wait for it to finish.")
        if ml_selectors.active_version() is None:
            raise ValidationError("No model is trained yet: start a training on the Models page first.")
        number = (campaign.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
        return GenerationRound.objects.create(campaign=campaign, number=number, requested_by=user)


def start_generation(campaign, *, user=None):
    """Create the next round and send it to the worker once committed (see create_round)."""
    with transaction.atomic():
        gen_round = create_round(campaign, user=user)
        enqueue_generation(gen_round)
    gen_round.refresh_from_db()
    return gen_round


def enqueue_generation(gen_round):
    return jobs.enqueue(gen_round, then="The round stays queued; it is sent again once the broker is up, or press Retry.")


def known_alloys(bundle):
    """[(alloy pk or None, key, fractions, formula)]: every alloy in the lab's records, plus
    the model's training alloys that are not (a model bootstrapped from a CSV knows more)."""
    from training import bundles as ml_bundles

    known = [(pk, key, fr, formula) for pk, key, fr, formula in Alloy.objects.values_list("pk", "composition_key", "fractions", "formula")]
    keys = {k for _, k, _, _ in known}
    for comp in ml_bundles.training_compositions(bundle):
        if comp.key not in keys:
            keys.add(comp.key)
            known.append((None, comp.key, dict(comp), comp.formula))
    return known


def run_generation(round_id, *, seed=None, task_id=None):
    """Generate, score, filter and store the round's batch (see design/generation.py), as a
    job (core.jobs): only a queued round runs; errors mark it failed with the reason."""
    return jobs.run_job(GenerationRound, round_id, lambda r, ctx: _generate(r, ctx, seed), task_id=task_id)


def _generate(gen_round, ctx, seed):
    from training import snapshots as ml_snapshots
    from training import bundles as ml_bundles

    def progress(fraction, message):
        ctx.report(fraction, message)
        ctx.check_cancel()

    version, bundle = ml_bundles.active_version_and_bundle()
    campaign = gen_round.campaign
    spec = spec_for(campaign)
    known = known_alloys(bundle)
    train = ml_snapshots.version_training_data(version)
    earlier = set(campaign.candidates.values_list("composition_key", flat=True))
    result = generation.generate(
        spec,
        sample=lambda conditions, s: ml_bundles.sample(bundle, conditions, s),
        predict=lambda comps: ml_bundles.predict(bundle, comps),
        train_y=train.y,
        train_compositions=train.compositions,
        known=[f for _, _, f, _ in known],
        known_keys={k for _, k, _, _ in known},
        earlier_keys=earlier,
        seed=gen_round.pk if seed is None else seed,
        progress=progress,
    )
    contributions = _contributions(bundle, [pick.composition for pick in result.picks])
    return _store_batch(gen_round, version, result, known, contributions)


def _number(value):
    """A prediction as stored: a finite float, else None (NaN = the model has no such prediction)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


CONTRIBUTION_KEYS = ("p_glass", "p_bmg", "dmax_mm")


def clean_contributions(raw):
    """{"p_glass": [[feature, value], ...], ...} with str features and finite float values only
    (JSON-safe; anything else is left out)."""
    out = {}
    if not isinstance(raw, dict):
        return out
    for key in CONTRIBUTION_KEYS:
        rows = []
        for item in raw.get(key) or ():
            try:
                feature, value = item
            except (TypeError, ValueError):
                continue
            value = _number(value)
            if value is not None:
                rows.append([str(feature), value])
        if rows:
            out[key] = rows
    return out


def _contributions(bundle, compositions, top=5):
    """Top feature contributions per pick (training.bundles.contributions), or {} each when
    the adapter or the bundle has none. A failure here costs the explanation, not the round."""
    from training import bundles as ml_bundles

    explain = getattr(ml_bundles, "contributions", None)
    if explain is None or not compositions:
        return [{} for _ in compositions]
    try:
        raw = list(explain(bundle, list(compositions), top=top))
    except Exception:  # noqa: BLE001 - an explanation must not cost the batch
        logger.exception("feature contributions failed; candidates are stored without them")
        return [{} for _ in compositions]
    raw += [{}] * (len(compositions) - len(raw))
    return [clean_contributions(r) for r in raw[: len(compositions)]]


@transaction.atomic
def _store_batch(gen_round, version, result, known, contributions=None):
    campaign = DesignCampaign.objects.select_for_update().get(pk=gen_round.campaign_id)
    number = campaign.candidates.aggregate(n=Max("number"))["n"] or 0
    spec = spec_for(campaign)
    for rank, pick in enumerate(result.picks, start=1):
        comp = parse_composition(pick.composition.formula)  # every stored composition passes the parser
        if not generation.meets_constraints(
            comp, spec.max_elements, spec.base_element, set(spec.allowed_elements), set(spec.forbidden_elements),
            {el: (lo / 100, hi / 100) for el, (lo, hi) in spec.element_ranges.items()},
        ):  # cannot happen (generation filtered it); refuse rather than store a violation
            raise ValidationError(f"{comp.formula} breaks the campaign's element constraints.")
        number += 1
        p = pick.predictions
        nearest_pk, nearest_formula = None, ""
        if 0 <= pick.nearest_index < len(known):
            nearest_pk, _, _, nearest_formula = known[pick.nearest_index]
        nearest = Alloy.objects.filter(pk=nearest_pk).only("formula").first() if nearest_pk else None
        candidate = Candidate(
            campaign=campaign,
            generation_round=gen_round,
            number=number,
            rank=rank,
            composition_key=comp.key,
            formula=comp.formula,
            fractions=dict(comp),
            model_version=version,
            tg_k_pred=p["tg_k"], tg_k_std=p.get("tg_k_std"),
            tx_k_pred=p["tx_k"], tx_k_std=p.get("tx_k_std"),
            tl_k_pred=p["tl_k"], tl_k_std=p.get("tl_k_std"),
            **{f"{t}_{end}": _number(p.get(f"{t}_{end}")) for t in ("tg_k", "tx_k", "tl_k") for end in ("low", "high")},
            trg_pred=p["trg"], gamma_pred=p["gamma"], delta_tx_k_pred=p["delta_tx_k"],
            p_glass=_number(p.get("p_glass")),
            p_bmg=_number(p.get("p_bmg")),
            dmax_mm_pred=_number(p.get("dmax_mm")),
            dmax_low_mm=_number(p.get("dmax_low_mm")),
            dmax_high_mm=_number(p.get("dmax_high_mm")),
            contributions=(contributions[rank - 1] if contributions and rank <= len(contributions) else {}),
            nearest_known_alloy=nearest,
            nearest_known_formula=nearest.formula if nearest else nearest_formula,
            nearest_distance=pick.nearest_distance,
            acquisition_score=pick.score,
            score_terms=pick.terms,
        )
        candidate.full_clean(exclude=["alloy", "sample"])
        candidate.save()
        CandidateEvent.objects.create(candidate=candidate, to_status=Candidate.Status.PROPOSED, note=f"round {gen_round.number}")
    counts = result.counts | {"timings_s": result.timings_s}
    notes = list(getattr(result, "notes", []) or [])
    if notes:
        counts["notes"] = notes
    met = result.counts.get("meet_all", 0)
    near = result.counts.get("near_misses", 0)
    if near:
        message = (
            f"{len(result.picks)} candidates from {result.counts['draws']:,} draws: only {met} met every target, "
            f"{near} near miss{'es' if near != 1 else ''} fill the batch (marked)."
        )
    elif len(result.picks) < campaign.batch_size:
        message = (
            f"{len(result.picks)} of {campaign.batch_size} candidates: only {met} of {result.counts['draws']:,} draws met "
            "every target and threshold. Widen the targets or lower the thresholds for more."
        )
    else:
        message = f"{len(result.picks)} candidates from {result.counts['draws']:,} draws ({met} met every target)."
    if notes:
        message += " P(glass)/P(BMG)/Dmax filters not applied: the model has no glass-forming-ability prediction."
    # The round ends in the same transaction as its candidates; if the sweep failed it
    # meanwhile (this attempt was given up), the candidates are rolled back with it.
    if not jobs.finish(gen_round, jobs.JobStatus.DONE, model_version=version, counts=counts, message=message[:255]):
        raise jobs.JobError("This attempt was given up (the round was failed or retried meanwhile); its candidates were not kept.")


# ------------------------------------------------------------------------------ approval


def _step(candidate, to_status, *, user, note=""):
    from_status = candidate.status
    candidate.status = to_status
    candidate._history_user = user
    candidate._change_reason = f"{status_label(from_status)} → {status_label(to_status)}" + (f": {note}" if note else "")
    candidate._change_reason = candidate._change_reason[:100]
    candidate.save()
    CandidateEvent.objects.create(candidate=candidate, from_status=from_status, to_status=to_status, user=user, note=note)
    return candidate


def _locked(candidate):
    return Candidate.objects.select_for_update().select_related("campaign").get(pk=candidate.pk)


def approve_candidate(candidate, *, user, note=""):
    """Approve for synthesis: creates the lab Sample to cast (alloy, label C<campaign>-<n>, notes).

    The row is locked, so of two approvals at the same time exactly one succeeds; the other
    (and any later one) gets TransitionError saying who approved it when.
    """
    from lab.services import get_or_create_alloy

    with transaction.atomic():
        candidate = _locked(candidate)
        if candidate.status != Candidate.Status.PROPOSED:
            raise TransitionError(_already(candidate))
        alloy, _ = get_or_create_alloy(candidate.formula, user=user)
        label = candidate.label
        if Sample.objects.filter(label=label).exists():
            label = f"{label}-{timezone.now():%Y%m%d%H%M%S}"
        sample = Sample(
            alloy=alloy,
            label=label,
            notes=(
                f"Design candidate {candidate.label} of campaign “{candidate.campaign.name}” "
                f"(model v{candidate.model_version_id}). Predicted Tg {display_k(candidate.tg_k_pred, 0)} K, "
                f"Tx {display_k(candidate.tx_k_pred, 0)} K, Tl {display_k(candidate.tl_k_pred, 0)} K{_gfa_note(candidate)}."
                + (f"\nApproval note: {note}" if note else "")
            ),
        )
        sample.full_clean()
        sample._history_user = user
        try:
            with transaction.atomic():
                sample.save()
        except IntegrityError as exc:
            raise TransitionError(f"Could not create sample {label}: {exc}") from exc
        candidate.alloy = alloy
        candidate.sample = sample
        return _step(candidate, Candidate.Status.APPROVED, user=user, note=note)


def _gfa_note(candidate):
    """", P(glass) 0.93, P(BMG) 0.71, Dmax 3.2 mm (80 % interval 1.1–7.5 mm)" — what is known."""
    parts = []
    if candidate.p_glass is not None:
        parts.append(f"P(glass) {candidate.p_glass:.2f}")
    if candidate.p_bmg is not None:
        parts.append(f"P(BMG) {candidate.p_bmg:.2f}")
    if candidate.dmax_mm_pred is not None:
        d = f"Dmax {candidate.dmax_mm_pred:.1f} mm"
        if candidate.dmax_low_mm is not None and candidate.dmax_high_mm is not None:
            d += f" (80 % interval {candidate.dmax_low_mm:.1f}–{candidate.dmax_high_mm:.1f} mm)"
        parts.append(d)
    return "".join(f", {p}" for p in parts)


def reject_candidate(candidate, *, user, note=""):
    with transaction.atomic():
        candidate = _locked(candidate)
        if candidate.status != Candidate.Status.PROPOSED:
            raise TransitionError(_already(candidate))
        if not note.strip():
            raise ValidationError({"note": "Say why the candidate is rejected."})
        return _step(candidate, Candidate.Status.REJECTED, user=user, note=note)


def start_synthesis(candidate, *, user, note=""):
    with transaction.atomic():
        candidate = _locked(candidate)
        if candidate.status != Candidate.Status.APPROVED:
            raise TransitionError(f"{candidate.label} is {candidate.get_status_display().lower()}, not approved for synthesis.")
        return _step(candidate, Candidate.Status.IN_SYNTHESIS, user=user, note=note)


def _already(candidate):
    last = candidate.events.exclude(to_status=Candidate.Status.PROPOSED).select_related("user").last()
    who = f" by {last.user.username}" if last and last.user else ""
    when = f" on {timezone.localtime(last.created_at):%Y-%m-%d %H:%M}" if last else ""
    return f"{candidate.label} is already {candidate.get_status_display().lower()}{who}{when}; it cannot be approved or rejected again."


# ------------------------------------------------------------------------------ the synthesis sample

SAMPLE_FIELDS = ("method", "diameter_mm", "cast_on", "operator")


def update_synthesis_sample(candidate, *, user, **fields):
    """Change the casting details (method, rod diameter, cast date, operator) of the sample an
    approval created; the candidate's validation follows (a rod diameter completes the glass part).

    lab has no service that edits a sample yet (lab.services creates samples only); until it
    has, this writes the sample the design app created, validated by ``Sample.full_clean`` and
    recorded in its history with the user, as ``approve_candidate`` does when it creates it.
    """
    unknown = set(fields) - set(SAMPLE_FIELDS)
    if unknown:
        raise ValidationError(f"These cannot be changed here: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        candidate = _locked(candidate)
        if candidate.sample_id is None:
            raise TransitionError(f"{candidate.label} has no sample yet: approve it for synthesis first.")
        sample = Sample.objects.select_for_update().get(pk=candidate.sample_id)
        for name, value in fields.items():
            setattr(sample, name, value)
        sample.full_clean()
        sample._history_user = user
        sample._change_reason = f"casting details of design candidate {candidate.label}"
        sample.save()  # design.signals follows with record_measurement
    return Candidate.objects.get(pk=candidate.pk)


# ------------------------------------------------------------------------------ results


def record_measurement(sample_id, *, user=None):
    """A sample got an XRD or DSC measurement, or its details changed: update its candidate (if
    it came from one).

    The latest XRD's verdict (override included) and the latest DSC's Tg/Tx/Tl are copied; the
    status follows the two parts of validation (design/validation.py): crystalline → failed;
    an amorphous rod of stated diameter *and* a DSC meeting the thermal targets → validated;
    amorphous but a thermal target missed → "glass, misses thermal targets"; anything still
    open → in synthesis. Runs inside the measurement's transaction.
    """
    from .validation import status_for

    candidate = Candidate.objects.select_for_update().filter(sample_id=sample_id).first()
    if candidate is None:
        return None
    sample = candidate.sample
    xrd = sample.xrd_measurements.filter(analysed(XRDMeasurement)).order_by("-created_at", "-pk").first()  # pending: no result
    dsc = sample.dsc_measurements.order_by("-created_at", "-pk").first()
    changed = False
    for name in ("tg_k", "tx_k", "tl_k"):
        value = getattr(dsc, name) if dsc is not None else None
        if getattr(candidate, f"{name}_measured") != value:
            setattr(candidate, f"{name}_measured", value)
            changed = True
    verdict = xrd.verdict if xrd is not None else ""
    if candidate.xrd_verdict != verdict:
        candidate.xrd_verdict = verdict
        changed = True
    glass, thermal = candidate.validation_parts()
    target = status_for(glass, thermal, Candidate.Status)
    if target is not None and target != candidate.status and candidate.status != Candidate.Status.REJECTED:
        note = f"{glass.text}; {thermal.text} (sample {sample.label})"
        if candidate.status == Candidate.Status.APPROVED and target != Candidate.Status.IN_SYNTHESIS:
            _step(candidate, Candidate.Status.IN_SYNTHESIS, user=user, note="measurements arrived")
        return _step(candidate, target, user=user, note=note)
    if changed:
        candidate._history_user = user
        candidate._change_reason = "measured values updated"
        candidate.save()
    return candidate
