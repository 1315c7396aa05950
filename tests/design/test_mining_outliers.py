"""The mining ``outlier`` flag uses the active model version's forward model."""

import io

from mining import services as mining_services
from mining import validation
from mining.models import ExtractedRecord

from .conftest import synthetic_values


def test_records_far_from_the_active_model_are_flagged_outlier(active_model):
    tg, tx, tl = synthetic_values(0.58, 0.25, 0.10, 0.07)
    rows = [
        f"Zr58Cu25Al10Ni7,{tg},{tx},{tl}",  # where the model expects it
        f"Zr57Cu26Al10Ni7,{tg + 250},{tx + 250},{tl + 250}",  # 250 K off in all three
        f"Zr55Cu25Al10Fe10,{tg + 250},{tx + 250},{tl + 250}",  # Fe: the model cannot say
    ]
    csv = "composition,Tg_K,Tx_K,Tl_K\n" + "\n".join(rows) + "\n"
    summary = mining_services.import_extracted(io.StringIO(csv), batch_name="outliers")
    flags = {
        r.composition_raw: {f["flag"]: f["reason"] for f in r.flags}
        for r in ExtractedRecord.objects.filter(batch_id=summary["batch_id"])
    }
    assert "outlier" not in flags["Zr58Cu25Al10Ni7"]
    assert "σ from the model's" in flags["Zr57Cu26Al10Ni7"]["outlier"]
    assert "outlier" not in flags["Zr55Cu25Al10Fe10"]


def test_the_predictor_comes_from_the_active_version(active_model):
    predictor = validation.get_active_predictor()
    from ml.composition import parse_composition

    out = predictor([parse_composition("Zr58Cu25Al10Ni7"), parse_composition("Fe80B20")])
    mean, std = out["tg_k"]
    assert abs(mean[0] - synthetic_values(0.58, 0.25, 0.10, 0.07)[0]) < 60 and std[0] >= 0
    assert mean[1] != mean[1]  # NaN: no training alloy contains Fe or B
