"""Generate the next round of candidates for a campaign.

    python manage.py generate_candidates CAMPAIGN_ID            # in this process, prints the batch
    python manage.py generate_candidates CAMPAIGN_ID --queue    # hand it to the worker
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from design import services
from design.models import DesignCampaign, GenerationRound


def _f(value, spec):
    return "—" if value is None else format(value, spec)


class Command(BaseCommand):
    help = "Generate the next round of candidates of a design campaign."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--queue", action="store_true", help="Queue it for the Celery worker instead of running here")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **opts):
        campaign = DesignCampaign.objects.filter(pk=opts["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"There is no campaign {opts['campaign_id']}.")
        try:
            if opts["queue"]:
                gen_round = services.start_generation(campaign)
                if gen_round.error:
                    raise CommandError(gen_round.error)
                self.stdout.write(f"Round {gen_round.number} queued (id {gen_round.pk}).")
                return
            gen_round = services.create_round(campaign)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        gen_round = services.run_generation(gen_round.pk, seed=opts["seed"])
        if gen_round.status != GenerationRound.Status.DONE:
            raise CommandError(f"Round {gen_round.number} failed: {gen_round.error}")
        self.stdout.write(self.style.SUCCESS(f"Round {gen_round.number}: {gen_round.message}"))
        for note in (gen_round.counts or {}).get("notes", []):
            self.stdout.write(self.style.WARNING(note))
        for c in gen_round.candidates.order_by("rank"):
            self.stdout.write(
                f"{c.label:>8}  {c.formula:<32} Tg {c.tg_k_pred:6.1f}  Tx {c.tx_k_pred:6.1f}  Tl {c.tl_k_pred:6.1f}  "
                f"Trg {c.trg_pred:.3f}  P {_f(c.p_glass, '.2f')}  P(BMG) {_f(c.p_bmg, '.2f')}  Dmax {_f(c.dmax_mm_pred, '.1f')}  "
                f"d {c.nearest_distance:.3f}  A {c.acquisition_score:.2f}"
            )
