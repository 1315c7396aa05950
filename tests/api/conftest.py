"""API clients: anonymous, and authenticated by token as a viewer / an experimenter."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def api():
    return APIClient()


def token_client(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def viewer_api(viewer):
    return token_client(viewer)


@pytest.fixture
def experimenter_api(experimenter):
    return token_client(experimenter)


def composition(i):
    """A distinct, parser-valid Zr–Cu–Al(–Ni) composition for each i (i < 500)."""
    zr, al, ni = 40 + i % 20, 5 + (i // 20) % 5, i // 100
    return f"Zr{zr}Cu{100 - zr - al - ni}Al{al}" + (f"Ni{ni}" if ni else "")


def make_alloys(n, *, user=None, start=0):
    """n alloys, each with two literature values (one in conflict) and one sample."""
    from lab import services
    from lab.models import PropertyValue, Reference, Sample

    reference = Reference.objects.get_or_create(label="api test source")[0]
    alloys = []
    for i in range(start, start + n):
        alloy, _ = services.get_or_create_alloy(composition(i), user=user)
        for k in range(2):
            PropertyValue.objects.create(
                alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference=reference,
                tg_k=650 + i + 20 * k, tx_k=730 + i, tl_k=1100 + i, conflict=bool(k),
            )  # fmt: skip
        Sample.objects.create(alloy=alloy, label=f"P-{i}", operator=user)
        alloys.append(alloy)
    return alloys


@pytest.fixture(autouse=True)
def _xrd_analysed_at_once(xrd_analysed_at_once):
    """Recorded patterns are analysed at once (tests/lab/xrd_helpers.py); ``xrd_on_worker`` undoes it."""
