"""The load bench's own parts: the upload bomb it builds is a real workbook (the import reads it
row by row and its row limit refuses it), and a refused form's message is read back."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load_bench  # noqa: E402

from lab.tables import ImportFileError, read_table  # noqa: E402


def test_bomb_is_a_workbook_of_the_rows_asked_for(tmp_path):
    path = load_bench.build_bomb(tmp_path / "bomb.xlsx", 25)
    rows = read_table(path)
    assert len(rows) == 25
    line, row = rows[-1]
    assert line == 26  # the header is line 1
    assert row["composition"] == load_bench.BOMB_COMPOSITION
    assert (row["tg_k"], row["tx_k"], row["tl_k"]) == (650, 730, 1100)


def test_bomb_compresses_like_the_issues_file(tmp_path):
    import zipfile

    path = load_bench.build_bomb(tmp_path / "bomb.xlsx", 100_000)
    expanded = sum(item.file_size for item in zipfile.ZipFile(path).infolist())
    assert expanded / path.stat().st_size > 200  # the issue's 735 KB expanded to 2 million rows


def test_bomb_is_refused_at_the_row_limit(tmp_path, settings):
    settings.GLASSLOOP_TABLE_MAX_ROWS = 10
    path = load_bench.build_bomb(tmp_path / "bomb.xlsx", 50)
    with pytest.raises(ImportFileError, match="more than 10 rows"):
        read_table(path)


def test_refusal_text_reads_the_forms_errors():
    html = '<form><ul class="errorlist"><li>bomb.xlsx has more than 200,000 rows &amp; more.</li></ul></form>'
    assert load_bench.refusal_text(html) == "bomb.xlsx has more than 200,000 rows & more."
    assert load_bench.refusal_text("<form>fine</form>") == ""
