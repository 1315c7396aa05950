"""Bad input where text enters: CSV quoting, NUL and other C0 control characters in query
strings, form fields, JSON bodies, uploaded tables and literature sources."""

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
