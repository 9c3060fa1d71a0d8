"""What every printed document draws with: the bundled CJK font (or the Latin fallback when it
is missing), QR codes, and millimetres at print resolution. Labels, label sheets, manifests and
port receipts share these, so a font or QR setting changes in one place.
"""

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import qrcode
from PIL import Image, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from wastetrack.core.fonts import CJK_FONT

if TYPE_CHECKING:
    from fpdf import FPDF

DPI = 300
CJK_FONT_CANDIDATES: tuple[str, ...] = (str(CJK_FONT),)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_font(candidates: Sequence[str]) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


MISSING_GLYPH = "□"
"""What a document prints for a character its font cannot draw (beyond GBK, say U+4DAE): fpdf2
would leave it out, and a name printed short names someone else; Pillow draws the font's empty
box for it on a label, as this is."""


@lru_cache(maxsize=1)
def _document_class() -> "type[FPDF]":
    from fpdf import FPDF

    class Document(FPDF):
        """A PDF whose text in a TrueType font prints a character the font lacks as
        `MISSING_GLYPH`, never dropping it: composed first (e and a combining acute are é), a
        tab as a space, a character with no glyph of its own (`_invisible`) left out."""

        def normalize_text(self, text: str) -> str:
            font = self.current_font
            if self.is_ttf_font and font is not None:
                drawable = font.cmap  # type: ignore[union-attr]
                text = "".join(_printed(c, drawable) for c in unicodedata.normalize("NFC", text))
            return super().normalize_text(text)

    return Document


# Unicode's default-ignorable code points (DerivedCoreProperties, Default_Ignorable_Code_Point):
# what the labels' text layout (HarfBuzz, through Pillow) draws as nothing. Not the Hangul
# fillers, which it draws as the font's box, as a PDF prints them; nor the other format
# characters (an Arabic number sign), which have a glyph of their own.
_IGNORABLE = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, joiners, direction marks
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),  # tags and the ideographic variation selectors among them
)


def _invisible(char: str) -> bool:
    """A character with no glyph of its own (a zero-width space, a variation selector, which
    picks a variant of the character before it), printed as nothing on a label and in a PDF
    alike."""
    point = ord(char)
    return any(first <= point <= last for first, last in _IGNORABLE)


def _printed(char: str, drawable: dict[int, str]) -> str:
    """What a PDF prints for `char` in a font that draws `drawable` (code points)."""
    if _invisible(char):
        return ""
    if ord(char) in drawable or char in "\r\n":
        return char
    return " " if char == "\t" else MISSING_GLYPH


def one_line(text: str) -> str:
    """Text as a PNG label prints it on one line, as a PDF would: composed, each line break (a
    name may hold one) and tab a space, a character with no glyph of its own left out. Pillow
    measures no text holding a line break, its layout fails on a carriage return, and it draws
    a tab as the font's empty box."""
    spaced = " ".join(unicodedata.normalize("NFC", text).replace("\t", " ").splitlines())
    return "".join(c for c in spaced if not _invisible(c))


def a4_pdf() -> "FPDF":
    """A new A4 portrait PDF measured in millimetres, printing a character its font lacks as
    `MISSING_GLYPH`. fpdf2 is imported on the first document a process makes: it adds about
    17 MB to a worker, and most workers never print."""
    return _document_class()(orientation="P", unit="mm", format="A4")


def add_cjk_font(pdf: "FPDF", family: str, candidates: Sequence[str]) -> bool:
    """Register the first CJK font found as family; False when none is (core fonts only)."""
    path = find_font(candidates)
    if path is None:
        return False
    pdf.add_font(family, "", path)
    return True


def latin1(value: object) -> str:
    """Text the PDF core fonts can carry (Latin-1), for when no CJK font is at hand."""
    text = "" if value is None else str(value)
    return text.encode("latin-1", "replace").decode("latin-1")


@lru_cache(maxsize=32)
def load_font(path: str | None, size: int) -> Font:
    """The font file at path in size pixels (cached: labels draw the same few sizes); Pillow's
    built-in Latin font when path is None."""
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


def qr_image(url: str, *, box_size: int = 10) -> Image.Image:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("RGB")


QR_GAP_MM = 3.0


@dataclass(frozen=True, slots=True)
class CornerQR:
    """A QR code drawn in a page's top right corner, and the one rule that keeps text off it
    (text printed over its modules or quiet zone, a long berth's name, left it unreadable):
    a text starting beside it wraps short of its left edge, one starting below it runs to the
    right margin."""

    left: float
    bottom: float

    def width(self, pdf: "FPDF") -> float:
        """The width of a text cell starting at the page's cursor (0: to the right margin)."""
        if pdf.get_y() < self.bottom:
            return self.left - QR_GAP_MM - pdf.get_x()
        return 0


def corner_qr(pdf: "FPDF", url: str, *, x: float, y: float, size: float) -> CornerQR:
    """Draw url's QR code at (x, y), size millimetres square, on the current page."""
    image = io.BytesIO()
    qr_image(url, box_size=6).save(image, format="PNG")
    pdf.image(image, x=x, y=y, w=size, h=size)
    return CornerQR(left=x, bottom=y + size)


def mm(value: float) -> int:
    """value millimetres, in pixels at DPI."""
    return round(value / 25.4 * DPI)
