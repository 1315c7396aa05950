"""Scripting: bootstrap_model from a CSV, generate_candidates, retrain."""

import csv

import pytest
from django.core.management import CommandError, call_command

from design.models import Candidate
from training.models import ModelVersion, TrainingRun

from .conftest import synthetic_rows


def write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["composition", "Tg_K", "Tx_K", "Tl_K"])
        w.writeheader()
        w.writerows(rows)
    return path


def test_fresh_site_bootstraps_from_a_csv_and_designs(tmp_path, campaign_factory, capsys, db):
    path = write_csv(tmp_path / "seed.csv", synthetic_rows())
    call_command("bootstrap_model", "--csv", str(path))
    out = capsys.readouterr().out
    version = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert f"v{version.pk} is active" in out
    assert version.training_run.trigger == TrainingRun.Trigger.BOOTSTRAP
    # A second bootstrap does nothing.
    call_command("bootstrap_model", "--csv", str(path))
    assert "already active" in capsys.readouterr().out

    campaign = campaign_factory()
    call_command("generate_candidates", str(campaign.pk), "--seed", "3")
    out = capsys.readouterr().out
    stored = list(Candidate.objects.filter(campaign=campaign))
    assert stored and "Round 1:" in out and stored[0].formula in out
    # The CSV's alloys count as known: none of them is proposed, and nearest alloys are named.
    from ml.composition import parse_composition

    known = {parse_composition(r["composition"]).key for r in synthetic_rows()}
    assert not {c.composition_key for c in stored} & known
    assert all(c.nearest_known_formula for c in stored)


def test_commands_say_what_is_wrong(tmp_path, db):
    with pytest.raises(CommandError, match="no campaign 999"):
        call_command("generate_candidates", "999")
    with pytest.raises(CommandError, match="no training data"):
        call_command("retrain", "--inline")
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,Tg\nHf50Cu50,700\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("bootstrap_model", "--csv", str(bad))


def test_retrain_inline_from_the_database(literature, capsys):
    call_command("retrain", "--inline")
    out = capsys.readouterr().out
    assert "is active" in out
    call_command("retrain", "--inline")  # same data: joins the finished run
    assert "already trained on exactly this data" in capsys.readouterr().out
    assert TrainingRun.objects.count() == 1
