"""PDF bombs and broken PDFs: pypdf's LimitReachedError and other errors become a refusal
naming the limit; pages and characters of extracted text are limited. The PDFs are built
here, small (a few KB compressed). They are read on the worker (mining.services.read_pdf,
called here in-process), never in the web request that stores them."""

import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mining import services
from mining.models import LiteratureSource

pytestmark = pytest.mark.django_db


def make_pdf(contents, *, compress=False):
    """A PDF with one page per content stream (Helvetica text); xref offsets computed."""
    n = len(contents)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)) + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, content in enumerate(contents):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * i))
        data = zlib.compress(content, 9) if compress else content
        head = b"<< /Length %d%s >>" % (len(data), b" /Filter /FlateDecode" if compress else b"")
        objects.append(head + b"\nstream\n" + data + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def text_page(text):
    return b"BT /F1 12 Tf 72 700 Td (" + text.encode() + b") Tj ET"


def test_a_good_pdf_still_reads():
    data = make_pdf([text_page("The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K.")], compress=True)
    assert "Zr57Cu28Al10Ni5" in services.extract_pdf_text(data)


def test_a_decompression_bomb_is_refused_naming_the_limit(settings):
    settings.GLASSLOOP_PDF_MAX_STREAM_BYTES = 1_000_000
    bomb = make_pdf([b" " * 4_000_000 + text_page("Zr57Cu28Al10Ni5")], compress=True)
    assert len(bomb) < 20_000
    # The request only stores it (cheap); the worker's reading refuses it, naming the limit.
    source = services.create_source(upload=SimpleUploadedFile("bomb.pdf", bomb))
    reading = services.read_pdf(source.pdf_reading.pk)
    message = reading.error
    assert reading.status == "failed" and "GLASSLOOP_PDF_MAX_STREAM_BYTES" in message and "1,000,000 bytes" in message
    source.refresh_from_db()
    assert source.text == "" and source.text_status == "refused"


def test_too_many_pages_are_refused(settings):
    settings.GLASSLOOP_PDF_MAX_PAGES = 5
    data = make_pdf([text_page(f"page {i}") for i in range(6)])
    with pytest.raises(services.MiningError, match=r"6 pages.*at most 5.*GLASSLOOP_PDF_MAX_PAGES"):
        services.extract_pdf_text(data)
    settings.GLASSLOOP_PDF_MAX_PAGES = 6
    assert "page 5" in services.extract_pdf_text(data)


def test_too_much_text_is_refused(settings):
    settings.GLASSLOOP_PDF_MAX_TEXT_CHARS = 500
    data = make_pdf([text_page("Zr57Cu28Al10Ni5 " * 10) for _ in range(5)])
    with pytest.raises(services.MiningError, match=r"more than 500 characters.*GLASSLOOP_PDF_MAX_TEXT_CHARS"):
        services.extract_pdf_text(data)


@pytest.mark.parametrize("error", ["limit", "pypdf", "other"])
def test_pypdf_errors_become_a_refusal(monkeypatch, error):
    from pypdf import PageObject
    from pypdf.errors import LimitReachedError, PyPdfError

    raised = {"limit": LimitReachedError("Declared size 99 exceeds allowed limit of 9!"),
              "pypdf": PyPdfError("odd structure"), "other": IndexError("list index out of range")}[error]

    def boom(self, *args, **kwargs):
        raise raised

    monkeypatch.setattr(PageObject, "extract_text", boom)
    data = make_pdf([text_page("x")])
    with pytest.raises(services.MiningError) as caught:
        services.extract_pdf_text(data)
    message = str(caught.value)
    assert str(raised) in message
    if error == "limit":
        assert "safety limit" in message


def test_control_characters_from_a_pdf_are_stripped():
    data = make_pdf([text_page("Zr57Cu28Al10Ni5 \\000shows Tg = 683 K\\007.")])
    text = services.extract_pdf_text(data)
    assert "\x00" not in text and "\x07" not in text
    assert "Zr57Cu28Al10Ni5" in text
    source = services.create_source(data=data, filename="ok.pdf")
    services.read_pdf(source.pdf_reading.pk)
    source.refresh_from_db()
    assert "Zr57Cu28Al10Ni5" in source.text and "\x00" not in source.text


def test_the_upload_page_shows_the_refusal(reviewer_client, settings):
    settings.GLASSLOOP_PDF_MAX_PAGES = 2
    data = make_pdf([text_page(f"page {i}") for i in range(3)])
    response = reviewer_client.post("/mining/sources/new/", {"file": SimpleUploadedFile("long.pdf", data)})
    source = LiteratureSource.objects.get()
    assert response.status_code == 302 and "reading the PDF" in reviewer_client.get(response.url).content.decode()
    services.read_pdf(source.pdf_reading.pk)  # the worker's part
    page = reviewer_client.get(response.url).content.decode()
    assert "refused: The PDF has 3 pages; at most 2 are read (GLASSLOOP_PDF_MAX_PAGES)" in page
