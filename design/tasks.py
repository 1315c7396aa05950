"""Celery tasks of the design loop: each only calls a service."""

from core.jobs import job_task

from . import services


@job_task("design.generate_candidates")
def generate_candidates(round_id, *, task_id=None):
    """Generate a round's candidates (idempotent: only a queued round runs)."""
    gen_round = services.run_generation(round_id, task_id=task_id)
    return None if gen_round is None else gen_round.status
