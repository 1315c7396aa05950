"""Docker does not run on the build machines: check what can be checked without it."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def load_compose():
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_names_the_services_with_health_checks():
    compose = load_compose()
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # database and uploads/model artefacts live in volumes
    assert {"postgres-data", "glassloop-data"} <= set(compose["volumes"])
    assert "glassloop-data:/data" in services["worker"]["volumes"]


def test_app_services_share_one_image_and_the_broker():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
        assert env["DATABASE_URL"].startswith("postgres://")
        assert services[name]["image"] == "glassloop:latest"


def test_env_example_names_every_variable_compose_interpolates():
    compose_text = (DOCKER / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", compose_text))
    example = {line.split("=", 1)[0] for line in (DOCKER / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert used <= example, f"missing from .env.example: {used - example}"


def test_dockerfile_commands_exist_in_the_project():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the image must not run as root"
    for path in re.findall(r"^COPY (?:--\S+ )*(\S+) ", dockerfile, re.M):
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is not in the project"
    assert "collectstatic" in dockerfile
    entry = (DOCKER / "entrypoint.sh").read_text()
    assert "gunicorn config.wsgi:application" in entry
    assert (ROOT / "config" / "wsgi.py").exists()
    # every manage.py command the entrypoint and Dockerfile call exists
    from django.core.management import get_commands

    commands = get_commands()
    for text in (dockerfile, entry):
        for match in re.finditer(r"manage\.py (\w+)", text):
            assert match.group(1) in commands, f"manage.py {match.group(1)} does not exist"
    for match in re.finditer(r"celery -A (\w+)", entry):
        assert (ROOT / match.group(1) / "celery.py").exists()
