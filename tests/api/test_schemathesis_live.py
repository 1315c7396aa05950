"""Schemathesis against the live schema: a real server on 127.0.0.1 (pytest-django's
live_server), an experimenter's token, bounded seeded examples; no 5xx allowed.

Runs schemathesis's CLI in a subprocess (its HTTP client talks to the server thread of this
process). POST /api/predict is left out while no model is active: its 503 ("no trained
model is active yet") is the intended answer, and is tested in test_compositions_and_predict.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from lab import services
from tests.lab.patterns_fixtures import synthetic_xrd_pattern

pytestmark = [pytest.mark.django_db(transaction=True)]


def st_command():
    exe = Path(sys.executable).with_name("st")
    return [str(exe)] if exe.exists() else [shutil.which("st") or "st"]


def test_no_server_errors_on_the_live_schema(live_server, experimenter, tmp_path, settings):
    # Some rows so that list, detail and filter requests find something.
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="ST-1")
    from django.core.files.uploadedfile import SimpleUploadedFile

    services.record_xrd(sample, user=experimenter, uploaded_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern()))
    services.record_dsc(sample, user=experimenter, tg_k=700, tx_k=770, tl_k=1150)
    token = Token.objects.create(user=experimenter).key

    from training.api import active_bundle

    exclude = ["--exclude-path", "/api/predict"] if active_bundle() is None else []
    command = [
        *st_command(), "run", f"{live_server.url.replace('//localhost:', '//127.0.0.1:')}/api/schema/",
        "--checks", "not_a_server_error",
        "--max-examples", "10",
        "--generation-deterministic",
        "--no-shrink",
        "--workers", "1",
        "--phases", os.environ.get("GLASSLOOP_ST_PHASES", "examples,fuzzing"),
        "--request-timeout", "20",
        "-H", f"Authorization: Token {token}",
        "--no-color",
        "--report-dir", str(tmp_path),
        *exclude,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, output[-6000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) > 100, output[-3000:]
