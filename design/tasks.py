"""Celery tasks of the design loop: each only calls a service."""

from celery import shared_task

from . import services


@shared_task(name="design.generate_candidates")
def generate_candidates(round_id):
    """Generate a round's candidates (idempotent: a round that is not queued is left alone)."""
    gen_round = services.run_generation(round_id)
    return None if gen_round is None else gen_round.status
