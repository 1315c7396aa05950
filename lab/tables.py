"""Reading a literature table (CSV or XLSX, a path, bytes, a file or an iterable of dicts) into
rows: ``[(line, {column: value})]`` with normalised column names. No database; the import
service (``lab.importing``) decides what each row becomes.

A row with a NUL or another control character in a cell (core.middleware's rule) comes back
as a :class:`RefusedRow`: its text cleaned for the report, ``refused`` saying why; the import
refuses it and imports the others.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from pathlib import Path

from django.conf import settings

from core.middleware import CONTROL_CHARACTERS, control_character_problem

REQUIRED_COLUMNS = ("composition", "tg_k", "tx_k", "tl_k")
# Column names as a person writes them, for messages.
COLUMN_TITLES = {"composition": "composition", "tg_k": "Tg_K", "tx_k": "Tx_K", "tl_k": "Tl_K"}
EMPTY_MARKERS = {"", "-", "—", "na", "n/a", "nan", "none", "null"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong format, missing columns)."""


class RefusedRow(dict):
    """A row the reader refuses (``refused`` says why); its text has U+FFFD for each bad character."""

    refused = ""


def _checked(row):
    """``row``, or a RefusedRow when a cell holds a NUL or another control character."""
    for column, value in row.items():
        problem = control_character_problem(value)
        if problem:
            clean = RefusedRow(
                (k, CONTROL_CHARACTERS.sub("\N{REPLACEMENT CHARACTER}", v) if isinstance(v, str) else v)
                for k, v in row.items()
            )
            title = COLUMN_TITLES.get(column, column)
            clean.refused = f"The {title} cell {problem}; control characters are not imported."
            return clean
    return row


def normalise_header(name):
    return re.sub(r"[\s\-]+", "_", str(name if name is not None else "").strip().lower())


def read_table(source, *, filename=None, columns=None, checkpoint=None):
    """Rows of a CSV/XLSX file (path, bytes or file object) or of an iterable of dicts.

    Returns a list of ``(line, row)`` with lower-case keys. Raises ImportFileError when the
    file cannot be read or lacks a required column. Entirely empty rows are skipped.
    ``columns``: the (normalised) columns to keep, the others are not read into the rows (a
    table of thousands of columns then costs no memory); None keeps every column.
    ``checkpoint(doing)`` is called every CHECKPOINT_ROWS rows of a file (the worker's time
    limit and cancel checks; it may raise to stop reading).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImportFileError(f"{path}: no such file.")
        filename = filename or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImportFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
        return _read_bytes(data, filename, columns, checkpoint)
    if isinstance(source, (bytes, bytearray)):
        return _read_bytes(bytes(source), filename or "", columns, checkpoint)
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return _read_bytes(data, filename or getattr(source, "name", "") or "", columns, checkpoint)
    # An iterable of mappings (e.g. the starter set or tests).
    rows = []
    for index, row in enumerate(source):
        _check_row_count(index + 1, "the table")
        named = {normalise_header(k): v for k, v in row.items()}
        rows.append((index + 2, _checked(named if columns is None else {k: v for k, v in named.items() if k in columns})))
    check_columns(rows[0][1].keys() if rows else REQUIRED_COLUMNS, "the rows")
    return [(line, row) for line, row in rows if not _blank(row)]


def _kept(columns, wanted):
    """``(index, column)`` of the header's named columns to read (all, or those ``wanted``)."""
    return [(i, col) for i, col in enumerate(columns) if col and (wanted is None or col in wanted)]


CHECKPOINT_ROWS = 1000


def _read_bytes(data, filename, columns=None, checkpoint=None):
    name = str(filename).lower()
    label = Path(str(filename)).name or "the file"
    if not data.strip():
        raise ImportFileError(f"{label} is empty.")
    if name.endswith(".xls") and not data.startswith(b"PK"):
        raise ImportFileError(f"{label} is an old .xls workbook; save it as .xlsx or .csv.")
    if name.endswith((".xlsx", ".xlsm")) or data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data, label, columns, checkpoint)
    return _read_csv(data, label, columns, checkpoint)


def _read_csv(data, label, wanted=None, checkpoint=None):
    # A NUL in the header line: binary or UTF-16, not a CSV. A NUL further on refuses its row only.
    if b"\x00" in data[:4096].split(b"\n", 1)[0]:
        raise ImportFileError(f"{label} is not a text (CSV) file nor an XLSX workbook.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's CSV on Windows
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=_delimiter(text[:4096]))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{label} is empty.") from None
    except csv.Error as exc:
        raise ImportFileError(f"{label} is not a readable CSV file ({exc}).") from exc
    columns = [normalise_header(h) for h in header]
    check_columns(columns, label)
    kept = _kept(columns, wanted)
    rows = []
    try:
        for count, values in enumerate(reader, start=1):
            _check_row_count(count, label)
            if checkpoint is not None and count % CHECKPOINT_ROWS == 0:
                checkpoint(f"reading row {count:,} of {label}")
            row = {col: (values[i] if i < len(values) else "") for i, col in kept}
            if not _blank(row):
                rows.append((reader.line_num, _checked(row)))
    except csv.Error as exc:
        raise ImportFileError(f"{label}, line {reader.line_num}: not readable as CSV ({exc}).") from exc
    return rows


def _delimiter(sample):
    """The header line's delimiter (comma, semicolon or tab). Only the delimiter is sniffed: the
    quoting is Excel's (\"\" inside quotes is one "), which the sniffer cannot see in a header."""
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0] if sample else "", delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _check_row_count(count, label):
    limit = settings.GLASSLOOP_TABLE_MAX_ROWS
    if count > limit:
        raise ImportFileError(
            f"{label} has more than {limit:,} rows (GLASSLOOP_TABLE_MAX_ROWS); split it into smaller tables."
        )


def _check_xlsx_size(data, label):
    """Refuse a workbook whose parts decompress beyond GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES (a zip
    bomb), before openpyxl opens it. The sizes are the archive's own; zipfile never returns more
    than a part declares, so a part cannot lie its way past the check. ``data``: bytes or a
    seekable file (only the archive's directory is read)."""
    limit = settings.GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data) as archive:
            total = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip: openpyxl's own message follows
    if total > limit:
        raise ImportFileError(
            f"{label} decompresses to {total:,} bytes; at most {limit:,} are read "
            "(GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES). Save the table as CSV, or split it."
        )


HEAD_BYTES = 64 * 1024  # what the upload check reads of a CSV: enough for any header line


def check_upload(handle, filename):
    """The checks an upload form can afford (no parse of the rows: that is the worker's, see
    lab.importing): an XLSX must be a zip archive whose parts expand to at most
    GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES (its directory only is read); a CSV's header line
    (the first 64 KB) must name the required columns. Raises ImportFileError; leaves
    ``handle`` at its start."""
    label = Path(str(filename)).name or "the file"
    try:
        head = handle.read(HEAD_BYTES)
        handle.seek(0)
        if not head.strip():
            raise ImportFileError(f"{label} is empty.")
        name = str(filename).lower()
        if name.endswith(".xls") and not head.startswith(b"PK"):
            raise ImportFileError(f"{label} is an old .xls workbook; save it as .xlsx or .csv.")
        if name.endswith((".xlsx", ".xlsm")) or head.startswith(b"PK\x03\x04"):
            if not zipfile.is_zipfile(handle):
                raise ImportFileError(f"{label} cannot be read as an XLSX workbook (it is not a zip archive).")
            handle.seek(0)
            _check_xlsx_size(handle, label)
            return
        if b"\x00" in head.split(b"\n", 1)[0]:
            raise ImportFileError(f"{label} is not a text (CSV) file nor an XLSX workbook.")
        first_line = head.split(b"\n", 1)[0] if b"\n" in head else head
        try:
            text = first_line.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = first_line.decode("cp1252", errors="replace")
        try:
            header = next(csv.reader([text.rstrip("\r")], csv.excel, delimiter=_delimiter(text)), [])
        except csv.Error as exc:
            raise ImportFileError(f"{label} is not a readable CSV file ({exc}).") from exc
        check_columns([normalise_header(h) for h in header], label)
    finally:
        handle.seek(0)


# A literature table has a few dozen columns at most; a sheet with more cells than
# GLASSLOOP_TABLE_MAX_ROWS rows of this many is refused before a cell is parsed.
MAX_CELLS_PER_ROW = 64
_SHEET_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)(?=[\s/>])([^>]*)>")
_STRING_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si(?=[\s/>])")
_ROW_NUMBER = re.compile(rb"\br\s*=\s*[\"']?(\d+)")
_SCAN_CHUNK = 1 << 20


def _tags(source, pattern):
    """The matches of ``pattern`` (one XML tag) in a streamed part, a list per chunk read (so a
    caller can stop between chunks), never splitting a tag; closes ``source``."""
    tail = b""
    with source:
        while True:
            chunk = source.read(_SCAN_CHUNK)
            data = tail + chunk
            cut = data.rfind(b"<") if chunk else len(data)
            # Keep an unfinished tag for the next chunk (a tag is short; a long text is not one).
            if cut == -1 or len(data) - cut > 4096:
                cut = len(data)
            tail = data[cut:]
            yield list(pattern.finditer(data, 0, cut))
            if not chunk:
                return


def _check_sheet_size(source, label):
    """Count the sheet's rows and cells in its XML, streamed, before openpyxl parses any cell:
    a workbook of a few hundred KB can hold millions of rows (issue 16), and parsing them only to
    refuse them took minutes. Stops as soon as a limit is passed; the row count is the rows'
    own numbers (``r="…"``) where given, as openpyxl fills the gaps with empty rows. Returns the
    number of cells."""
    row_limit = settings.GLASSLOOP_TABLE_MAX_ROWS
    cell_limit = row_limit * MAX_CELLS_PER_ROW
    rows = cells = 0
    for matches in _tags(source, _SHEET_TAG):
        for match in matches:
            if match.group(1) == b"c":
                cells += 1
                continue
            number = _ROW_NUMBER.search(match.group(2))
            rows = max(rows + 1, int(number.group(1)) if number else 0)
        if rows - 1 > row_limit:  # the first row is the header
            _check_row_count(rows - 1, label)
        if cells > cell_limit:
            raise ImportFileError(
                f"{label} has more than {cell_limit:,} cells ({MAX_CELLS_PER_ROW} a row for GLASSLOOP_TABLE_MAX_ROWS "
                f"= {row_limit:,} rows); keep only the table's columns, or split it."
            )
    return cells


def _check_shared_strings(source, label, cells):
    """openpyxl reads every shared string into memory when it opens a workbook: 10 million
    one-letter strings (a 414 KB file) took 90 s and 1 GB. A spreadsheet program keeps only the
    strings its cells use, so more strings than twice the cells (and a thousand) is refused."""
    allowed = 2 * cells + 1000
    count = 0
    for matches in _tags(source, _STRING_TAG):
        count += len(matches)
        if count > allowed:
            raise ImportFileError(
                f"{label} holds more than {allowed:,} shared strings for {cells:,} cells (a spreadsheet keeps only "
                "those its cells use); save it again from the spreadsheet program, or as CSV."
            )


def _check_sheets(buffer, label):
    """Every sheet's rows and cells counted (``_check_sheet_size``), then the shared strings
    (``_check_shared_strings``), before openpyxl opens the workbook: opening it already parses
    each sheet without a ``<dimension>`` to the end (two minutes for a 2-million-row bomb) and
    every shared string. A workbook openpyxl cannot read is left to its message."""
    from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader

    try:
        reader = ExcelReader(buffer, read_only=True)
        reader.read_manifest()
        reader.read_workbook()
        sheets = [(sheet.name, rel.target) for sheet, rel in reader.parser.find_sheets() if rel.target in reader.valid_files]
        strings = reader.package.find(SHARED_STRINGS)
        strings_path = strings.PartName[1:] if strings is not None else None
    except Exception:  # load_workbook says what is wrong, next
        return
    finally:
        buffer.seek(0)
    try:
        cells = 0
        for index, (name, target) in enumerate(sheets):
            cells += _check_sheet_size(reader.archive.open(target), label if index == 0 else f"{label} (sheet {name!r})")
        if strings_path in reader.valid_files:
            _check_shared_strings(reader.archive.open(strings_path), label, cells)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # a damaged part
        raise ImportFileError(f"{label} cannot be read as an XLSX workbook ({exc.__class__.__name__}: {exc}).") from exc
    finally:
        reader.archive.close()
        buffer.seek(0)


def _read_xlsx(data, label, wanted=None, checkpoint=None):
    from openpyxl import load_workbook

    _check_xlsx_size(data, label)
    buffer = io.BytesIO(data)
    _check_sheets(buffer, label)
    try:
        workbook = load_workbook(buffer, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise ImportFileError(f"{label} cannot be read as an XLSX workbook ({exc.__class__.__name__}: {exc}).") from exc
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise ImportFileError(f"{label}: the first sheet is empty.")
        columns = [normalise_header(h) for h in header]
        check_columns(columns, label)
        kept = _kept(columns, wanted)
        rows = []
        for line, cells in enumerate(values, start=2):
            _check_row_count(line - 1, label)
            if checkpoint is not None and (line - 1) % CHECKPOINT_ROWS == 0:
                checkpoint(f"reading row {line - 1:,} of {label}")
            row = {col: (cells[i] if i < len(cells) else None) for i, col in kept}
            if not _blank(row):
                rows.append((line, _checked(row)))
        return rows
    finally:
        workbook.close()


def check_columns(columns, label):
    present = set(columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        found = ", ".join(str(c) for c in columns if c) or "none"
        raise ImportFileError(
            f"{label} lacks the column(s) {', '.join(COLUMN_TITLES[c] for c in missing)}; "
            f"the columns must include composition, Tg_K, Tx_K, Tl_K (found: {found})."
        )


def _blank(row):
    return all(text_of(v) == "" for v in row.values())


def text_of(value):
    """A cell as stripped text (a whole float without its .0; None as '')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
