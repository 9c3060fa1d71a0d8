"""QR labels: single PNGs for 50×30 mm label printers and A4 PDF sheets of pre-printed stock.

Chinese is drawn with the font bundled in ``wastetrack.core.fonts``; only when that file is
missing (or a caller passes other candidates that are) does a label fall back to English.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import qrcode
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from qrcode.constants import ERROR_CORRECT_M

from wastetrack.core.fonts import CJK_FONT

DPI = 300
LABEL_MM = (50, 30)
CJK_FONT_CANDIDATES: tuple[str, ...] = (str(CJK_FONT),)


@dataclass(frozen=True, slots=True)
class LabelText:
    code: str
    url: str
    category_zh: str
    category_en: str
    stream_zh: str
    stream_en: str
    colour: str
    tagged_on: date | None = None  # the city's calendar day


def find_font(candidates: Sequence[str]) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


def add_cjk_font(pdf: FPDF, family: str, candidates: Sequence[str]) -> bool:
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
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


def qr_image(url: str, *, box_size: int = 10) -> Image.Image:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    return qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")


def _mm(value: float) -> int:
    return round(value / 25.4 * DPI)


def render_label_png(text: LabelText, *, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES) -> bytes:
    """A 50×30 mm, 300 dpi label: QR on the left, colour band, category and code on the right.

    The PNG's text chunks say what it printed: ``Title`` (the category as drawn) and ``Font``
    (the font file's family name, or ``default`` for Pillow's built-in Latin font).
    """
    width, height = _mm(LABEL_MM[0]), _mm(LABEL_MM[1])
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    qr = qr_image(text.url)
    side = height - 2 * _mm(1)
    canvas.paste(qr.resize((side, side), Image.Resampling.NEAREST), (_mm(1), _mm(1)))
    left = side + _mm(2)
    band = _mm(6)
    draw.rectangle([left, _mm(1), width - _mm(1), _mm(1) + band], fill=text.colour)
    cjk = find_font(cjk_fonts)
    if cjk:
        title, subtitle = text.category_zh, text.stream_zh
    else:
        title, subtitle = text.category_en, text.stream_en
    fit = _fitted(draw, title, cjk, width - left - _mm(2), 40)
    draw.text((left + _mm(1), _mm(1) + band // 2), title, fill="white", anchor="lm", font=fit)
    draw.text(
        (left, _mm(9)),
        subtitle,
        fill="black",
        font=_fitted(draw, subtitle, cjk, width - left - _mm(1), 30),
    )
    code = f"{text.code[:4]}-{text.code[4:8]}-{text.code[8:]}"
    draw.text(
        (left, _mm(15)),
        code,
        fill="black",
        font=_fitted(draw, code, cjk, width - left - _mm(1), 44),
    )
    if text.tagged_on:
        draw.text((left, _mm(23)), text.tagged_on.isoformat(), fill="black", font=_font(cjk, 28))
    info = PngInfo()
    info.add_itxt("Title", title)
    named = _font(cjk, 10) if cjk else None
    family = named.getname()[0] if isinstance(named, ImageFont.FreeTypeFont) else None
    info.add_itxt("Font", family or "default")
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(DPI, DPI), pnginfo=info)
    return out.getvalue()


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, path: str | None, room: int, size: int
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest font up to size whose rendering of text fits in room pixels."""
    while size > 10:
        font = _font(path, size)
        if draw.textlength(text, font=font) <= room:
            return font
        size -= 2
    return _font(path, size)


def render_label_sheet_pdf(
    labels: Sequence[LabelText], *, title: str, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES
) -> bytes:
    """A4 sheets, 3 × 8 labels of 70 × 37 mm: QR, code and category, for pre-printed stock."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.set_creator("wastetrack")
    cjk = add_cjk_font(pdf, "label", cjk_fonts)
    family = "label" if cjk else "Helvetica"
    columns, rows, cell_w, cell_h = 3, 8, 70.0, 37.0
    for index, text in enumerate(labels):
        if index % (columns * rows) == 0:
            pdf.add_page()
        slot = index % (columns * rows)
        x = (slot % columns) * cell_w
        y = 0.5 + (slot // columns) * cell_h
        image = io.BytesIO()
        qr_image(text.url, box_size=6).save(image, format="PNG")
        pdf.image(image, x=x + 2, y=y + 2, w=31, h=31)
        pdf.set_fill_color(*_rgb(text.colour))
        pdf.rect(x + 35, y + 3, cell_w - 38, 5, style="F")
        pdf.set_font(family, size=8)
        pdf.set_xy(x + 35, y + 10)
        pdf.cell(cell_w - 38, 5, text.stream_zh if cjk else latin1(text.stream_en))
        pdf.set_font("Courier", style="B", size=11)
        pdf.set_xy(x + 35, y + 17)
        pdf.cell(cell_w - 38, 6, f"{text.code[:4]}-{text.code[4:8]}-{text.code[8:]}")
    return bytes(pdf.output())


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
