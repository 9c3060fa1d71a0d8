"""What every printed document draws with: the bundled CJK font (or the Latin fallback when it
is missing), QR codes, and millimetres at print resolution. Labels, label sheets, manifests and
port receipts share these, so a font or QR setting changes in one place.
"""

from collections.abc import Sequence
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


def a4_pdf() -> "FPDF":
    """A new A4 portrait PDF measured in millimetres. fpdf2 is imported on the first document a
    process makes: it adds about 17 MB to a worker, and most workers never print."""
    from fpdf import FPDF

    return FPDF(orientation="P", unit="mm", format="A4")


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


def mm(value: float) -> int:
    """value millimetres, in pixels at DPI."""
    return round(value / 25.4 * DPI)
