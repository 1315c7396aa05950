"""A valid XLSX of many identical rows, written part by part into the zip (never held whole in
memory): the table bomb of issue 16. 2 million rows are about 0.6 MB on disk and ~170 MB of
sheet XML once expanded. Used by bench/load_bench.py (--bombs) and tests/lab/test_import_bombs.py."""

import zipfile

_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="alloys" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
    "xl/sharedStrings.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="5" uniqueCount="5">'
        "<si><t>composition</t></si><si><t>Tg_K</t></si><si><t>Tx_K</t></si><si><t>Tl_K</t></si><si><t>{composition}</t></si></sst>"
    ),
}
_HEADER_ROW = '<row><c t="s"><v>0</v></c><c t="s"><v>1</v></c><c t="s"><v>2</v></c><c t="s"><v>3</v></c></row>'
_DATA_ROW = '<row><c t="s"><v>4</v></c><c><v>{}</v></c><c><v>{}</v></c><c><v>{}</v></c></row>'


def xlsx_bomb(target, rows, *, composition="Cu50Zr50", values=(670, 720, 1200), unused_strings=0):
    """Write a valid workbook of ``rows`` identical rows (composition, Tg_K, Tx_K, Tl_K) under a header,
    its sheet streamed into the zip (deflate, level 9): 2 million rows are ~150 MB of XML in
    well under 1 MB. ``unused_strings`` one-letter shared strings no cell uses are added (the
    other kind of bomb). ``target``: a path or a binary file."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _PARTS.items():
            if name == "xl/sharedStrings.xml":
                text = text.replace("{composition}", composition)
                if unused_strings:
                    text = text.replace("</sst>", "<si><t>a</t></si>" * unused_strings + "</sst>")
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            sheet.write(_HEADER_ROW.encode())
            row = _DATA_ROW.format(*values)
            chunk = (row * 10_000).encode()
            whole, rest = divmod(rows, 10_000)
            for _ in range(whole):
                sheet.write(chunk)
            sheet.write((row * rest).encode())
            sheet.write(b"</sheetData></worksheet>")
