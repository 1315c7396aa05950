"""Schemathesis over the whole live schema: every operation of every app (lab, mining, design,
training, jobs), reads and writes, as a superuser (who holds every role); no 5xx allowed.

A real server on 127.0.0.1 (pytest-django's live_server), a superuser's token, a few seeded
rows of each kind so list, detail, filter and action requests find something, bounded seeded
examples (GLASSLOOP_ST_MAX_EXAMPLES per operation, default 5). Runs schemathesis's CLI in a
subprocess (its HTTP client talks to the server thread of this process).

Jobs the writes start (extraction batches, reruns, retries) go to a broker that is down, so
they stay queued with "the task queue is unavailable" (a 201/200, never a 5xx) and nothing
runs behind the test's back. POST /api/predict is left out while no model is active: its 503
("no trained model is active yet") is the intended answer (test_compositions_and_predict).
POST /api/auth/token/ is left out: schemathesis's wrong passwords would only fill the login
throttle (tests/security/test_throttling.py covers it).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from tests.celery_broker import dead_broker_url, use_broker
from tests.lab.patterns_fixtures import synthetic_xrd_pattern

pytestmark = [pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = os.environ.get("GLASSLOOP_ST_MAX_EXAMPLES", "5")
# More schemathesis options, e.g. GLASSLOOP_ST_ARGS="--include-path /api/alloys/" to chase one
# finding (the selected-operations check below is then skipped).
EXTRA_ARGS = shlex.split(os.environ.get("GLASSLOOP_ST_ARGS", ""))
METHODS = ("get", "post", "put", "patch", "delete")


def st_command():
    exe = Path(sys.executable).with_name("st")
    return [str(exe)] if exe.exists() else [shutil.which("st") or "st"]


def seed(user):
    """A few rows of every kind the API serves, each app through its own services."""
    from design.models import Candidate
    from lab import services as lab
    from mining import services as mining
    from tests.api.test_mining_api import TEXT
    from tests.design.test_approval import make_candidate
    from training.models import ModelVersion

    for label, formula in (("ST-1", "Cu46Zr46Al8"), ("ST-2", "Zr55Cu30Al10Ni5")):
        sample = lab.log_experiment(user=user, composition=formula, label=label)
        lab.record_xrd(sample, user=user, uploaded_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern()))
        lab.record_dsc(sample, user=user, tg_k=700, tx_k=770, tl_k=1150)

    source = mining.create_source(text=TEXT, doi="10.1000/st.1", title="schemathesis paper")
    batch = mining.create_batch(name="st batch", sources=[source], extractor="rules", enqueue=False)
    mining.run_batch(batch.pk)

    from design.services import create_campaign

    campaign = create_campaign(
        owner=user, name="st campaign", targets={"tg_k": {"min": 680}}, base_element="Zr",
        max_elements=4, batch_size=5, min_p_glass=0.0, min_novelty=0.02,
    )  # fmt: skip
    make_candidate(campaign)
    make_candidate(campaign, formula="Zr60Cu20Al10Ni10", number=2)
    assert Candidate.objects.count() == 2
    # make_candidate's stand-in model version has no files: not the active model (predict would 503).
    ModelVersion.objects.update(status=ModelVersion.Status.RETIRED)


# Path ids are drawn, more often than not, from the seeded rows' (1 and 2 of each kind), so
# detail pages and actions (approve, reject, rerun, cancel, PATCH …) act on real rows; the
# rest of the time schemathesis invents them.
CONFIG = """
[dictionaries.ids]
values = [1, 2]

[dictionaries.kinds]
values = ["imports", "extraction-batches", "generation-rounds", "training-runs"]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.6 }
"path.kind" = { dictionary = "kinds", probability = 0.8 }
"""


def operations(schema_url, token):
    request = urllib.request.Request(f"{schema_url}?format=json", headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the live server
        schema = json.load(response)
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in METHODS}


def test_no_server_errors_on_the_whole_schema(live_server, django_user_model, tmp_path, settings):
    boss = django_user_model.objects.create_superuser("st-boss", password="pw-glassloop-1")
    seed(boss)
    token = Token.objects.create(user=boss).key

    from training.api import active_bundle

    base = live_server.url.replace("//localhost:", "//127.0.0.1:")
    schema_url = f"{base}/api/schema/"
    excluded = {("POST", "/api/auth/token/")} | ({("POST", "/api/predict")} if active_bundle() is None else set())
    every = operations(schema_url, token)  # the schema is behind login too
    covered = every - excluded
    # The whole lab: every app's operations, reads and writes.
    for prefix in ("/api/alloys/", "/api/xrd-measurements/", "/api/literature-sources/", "/api/extraction-batches/",
                   "/api/extracted-records/", "/api/design-campaigns/", "/api/design-candidates/", "/api/jobs/"):  # fmt: skip
        assert any(path.startswith(prefix) for _, path in covered), prefix
    assert {method for method, _ in covered} >= {"GET", "POST", "PATCH"}

    exclude = []
    for _, path in sorted(excluded & every):  # POST-only paths: leaving the path out leaves that one operation out
        assert {m for m, p in every if p == path} == {"POST"}, path
        exclude += ["--exclude-path", path]
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        *st_command(), "--config-file", str(config), "run", schema_url,
        "--checks", "not_a_server_error",
        "--max-examples", MAX_EXAMPLES,
        "--generation-deterministic",
        "--no-shrink",
        "--workers", "1",
        "--phases", os.environ.get("GLASSLOOP_ST_PHASES", "examples,fuzzing"),
        "--request-timeout", "20",
        "-H", f"Authorization: Token {token}",
        "--no-color",
        "--report-dir", str(tmp_path),
        *exclude,
        *EXTRA_ARGS,
    ]  # fmt: skip
    with use_broker(dead_broker_url()):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, output[-8000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) > 100, output[-3000:]
    tested = re.search(r"(\d+) selected / (\d+) total", output)
    assert EXTRA_ARGS or (tested and int(tested.group(1)) == len(covered)), output[-3000:]


# ---------------------------------------------------------------- what schemathesis found, pinned


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "body", "fmt"), [
    # POST /api/extraction-batches/ with sources=21356329829906830448083861504 (multipart, as
    # schemathesis sent it) or 2**70 (JSON): OverflowError in SQLite while the form checks the
    # ids, a 500 before.
    ("/api/extraction-batches/", {"name": "x", "sources": ["21356329829906830448083861504"]}, "multipart"),
    ("/api/extraction-batches/", {"name": "x", "sources": [2**70]}, "json"),
    ("/api/extracted-records/?batch=1180591620717411303424", None, None),  # a filter, the same
])  # fmt: skip
def test_a_number_too_large_for_the_database_is_a_400(django_user_model, url, body, fmt):
    from mining import services as mining
    from tests.api.conftest import token_client

    mining.create_source(text="The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K.", title="t")
    api = token_client(django_user_model.objects.create_superuser("st-boss", password="pw-glassloop-1"))
    response = api.post(url, body, format=fmt) if body is not None else api.get(url)
    if body is None and response.status_code == 200:  # PostgreSQL compares the number: nothing matches
        assert response.json()["count"] == 0
        return
    assert response.status_code == 400, response.content
    # the form's own field refusal (core.forms.IdMultipleChoiceField) or the API's safety net
    error = response.json()["error"]
    assert ("not one of the available choices" in error
            or error == "A number in the request is out of range (too large to store or compare)."), error
