"""Bad input where text enters: CSV quoting, NUL and other C0 control characters in query
strings, form fields, JSON bodies, uploaded tables and literature sources."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lab.importing import import_alloys
from lab.models import Alloy
from lab.tables import read_table

HEADER = "composition,Tg_K,Tx_K,Tl_K,name\n"


# ---------------------------------------------------------------- CSV quoting (probe 2)


def test_doubled_quotes_and_a_comma_stay_one_field():
    data = (HEADER + 'Zr57Cu28Al10Ni5,683,763,1118,"A ""B"" C, D"\n').encode()
    [(line, row)] = read_table(data, filename="t.csv")
    assert row["name"] == 'A "B" C, D'
    assert row["tl_k"] == "1118"


def test_semicolon_tables_still_work_with_quoted_fields():
    data = 'composition;Tg_K;Tx_K;Tl_K;name\nZr57Cu28Al10Ni5;683;763;1118;"x; ""y"""\n'.encode()
    [(line, row)] = read_table(data, filename="t.csv")
    assert row["name"] == 'x; "y"'
    assert row["tg_k"] == "683"


# ---------------------------------------------------------------- NUL / control characters (probe 3)


def _big_table_with_nul_after_4k():
    lines = [HEADER]
    for i in range(120):  # ~4.5 KB of good rows first
        lines.append(f"Zr{40 + i % 20}Cu{50 - i % 20}Al10,{650 + i},{760 + i},{1150 + i},alloy {i:03d} padding text\n")
    lines.append("Cu50Hf50,700,780,1200,bad\x00name\n")
    lines.append("Cu60Hf40,701,781,1201,bell\x07name\n")
    lines.append("Pd40Ni40P20,580,670,990,good after\n")
    return "".join(lines).encode()


def test_reader_keeps_rows_after_a_nul_beyond_the_first_4k():
    data = _big_table_with_nul_after_4k()
    assert data.index(b"\x00") > 4096
    rows = read_table(data, filename="t.csv")
    assert len(rows) == 123


@pytest.mark.django_db
def test_import_refuses_only_the_rows_with_control_characters():
    report = import_alloys(_big_table_with_nul_after_4k(), filename="t.csv", source_label="t.csv")
    refused = {r["line"]: r["reason"] for r in report.rows if r["outcome"] == "refused"}
    assert set(refused) == {122, 123}, refused
    assert "contains a NUL character" in refused[122]
    assert "control character" in refused[123] and "U+0007" in refused[123]
    assert Alloy.objects.filter(composition_key__contains="Pd").exists()
    assert not any("\x00" in name for name in Alloy.objects.values_list("name", flat=True))


@pytest.mark.django_db
def test_import_of_rows_from_the_admin_refuses_a_nul_row():
    rows = [
        {"composition": "Cu50Hf50", "Tg_K": 700, "Tx_K": 780, "Tl_K": 1200, "name": "a\x00b"},
        {"composition": "Pd40Ni40P20", "Tg_K": 580, "Tx_K": 670, "Tl_K": 990, "name": "ok"},
    ]
    report = import_alloys(rows)
    assert [r["outcome"] for r in report.rows] == ["refused", "created"]
    assert "contains a NUL character" in report.rows[0]["reason"]


def test_a_utf16_csv_is_still_refused_as_a_whole():
    data = HEADER.encode("utf-16")
    from lab.tables import ImportFileError

    with pytest.raises(ImportFileError, match="not a text"):
        read_table(data, filename="t.csv")


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["q=%00", "q=abc%00def", "q=%07", "page=%00"])
def test_a_control_character_in_the_query_string_is_a_400_page(viewer_client, query):
    response = viewer_client.get(f"/lab/samples/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "control character" in text
    assert "<html" in text.lower()


@pytest.mark.django_db
def test_tab_cr_lf_in_a_query_are_fine(viewer_client):
    assert viewer_client.get("/lab/samples/?q=a%09b%0D%0Ac").status_code == 200


@pytest.mark.django_db
def test_a_control_character_in_an_api_query_or_json_body_is_a_400_json(viewer_client):
    response = viewer_client.get("/api/alloys/?search=%00")
    assert response.status_code == 400
    body = response.json()
    assert "NUL" in body["error"]
    response = viewer_client.post("/api/alloys/", '{"composition": "Cu50Hf50\\u0000"}', content_type="application/json")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


@pytest.mark.django_db
def test_a_control_character_in_a_form_field_is_a_400(reviewer_client):
    response = reviewer_client.post("/mining/sources/new/", {"text": "Zr57Cu28Al10Ni5 Tg = 683 K\x00", "title": "t"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.django_db
def test_a_txt_source_with_a_nul_is_refused_with_a_message(reviewer_client):
    from mining.models import LiteratureSource

    upload = SimpleUploadedFile("paper.txt", b"The Zr57Cu28Al10Ni5 alloy\x00 shows Tg = 683 K.")
    response = reviewer_client.post("/mining/sources/new/", {"file": upload, "title": "t"})
    assert response.status_code == 200
    assert "contains a NUL character" in response.content.decode()
    assert not LiteratureSource.objects.exists()


@pytest.mark.django_db
def test_create_source_refuses_a_txt_with_control_characters():
    from mining import services

    with pytest.raises(services.MiningError, match="NUL"):
        services.create_source(data=b"abc\x00def", filename="x.txt")
    with pytest.raises(services.MiningError, match="U\\+001B"):
        services.create_source(text="escape \x1b[31m red")
    assert services.create_source(data=b"Tg = 683 K\tok\r\n", filename="y.txt").text.startswith("Tg = 683 K\tok")


def test_an_id_too_large_for_the_database_is_an_invalid_choice_on_the_batch_page(client, make_user):
    """A source id beyond 64 bits used to reach SQLite (OverflowError, 500)."""
    client.force_login(make_user("rita", "reviewer"))
    response = client.post("/mining/batches/new/", {"name": "b", "sources": "1180591620717411303424", "extractor": "rules"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert client.get("/mining/review/?batch=1180591620717411303424").status_code in (200, 400)
