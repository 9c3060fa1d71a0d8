"""QR labels: single PNGs for 50×30 mm label printers and A4 PDF sheets of pre-printed stock."""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import qrcode
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

DPI = 300
LABEL_MM = (50, 30)
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)
LATIN_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)


@dataclass(frozen=True, slots=True)
class LabelText:
    code: str
    url: str
    category_zh: str
    category_en: str
    stream_zh: str
    stream_en: str
    colour: str
    tagged_on: date | None = None


def find_font(candidates: Sequence[str]) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


@lru_cache(maxsize=16)
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
    """A 50×30 mm, 300 dpi label: QR on the left, colour band, category and code on the right."""
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
    latin = find_font(LATIN_FONT_CANDIDATES)
    font_path: str | None
    if cjk:
        title, subtitle, font_path = text.category_zh, text.stream_zh, cjk
    else:
        title, subtitle, font_path = text.category_en, text.stream_en, latin
    fit = _fitted(draw, title, font_path, width - left - _mm(2), 40)
    draw.text((left + _mm(1), _mm(1) + band // 2), title, fill="white", anchor="lm", font=fit)
    draw.text(
        (left, _mm(9)),
        subtitle,
        fill="black",
        font=_fitted(draw, subtitle, font_path, width - left - _mm(1), 30),
    )
    code = f"{text.code[:4]}-{text.code[4:8]}-{text.code[8:]}"
    draw.text(
        (left, _mm(15)),
        code,
        fill="black",
        font=_fitted(draw, code, latin, width - left - _mm(1), 44),
    )
    if text.tagged_on:
        draw.text((left, _mm(23)), text.tagged_on.isoformat(), fill="black", font=_font(latin, 28))
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


def _fitted(draw: ImageDraw.ImageDraw, text: str, path: str | None, room: int, size: int):  # type: ignore[no-untyped-def]
    """The largest font up to size whose rendering of text fits in room pixels."""
    while size > 10:
        font = _font(path, size)
        if draw.textlength(text, font=font) <= room:
            return font
        size -= 2
    return _font(path, size)


def render_label_sheet_pdf(labels: Sequence[LabelText], *, title: str) -> bytes:
    """A4 sheets, 3 × 8 labels of 70 × 37 mm: QR, code and category, for pre-printed stock."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.set_creator("wastetrack")
    cjk = find_font(CJK_FONT_CANDIDATES)
    if cjk:
        pdf.add_font("label", "", cjk)
        family = "label"
    else:
        family = "Helvetica"
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
        pdf.cell(cell_w - 38, 5, text.stream_zh if cjk else text.stream_en)
        pdf.set_font("Courier", style="B", size=11)
        pdf.set_xy(x + 35, y + 17)
        pdf.cell(cell_w - 38, 6, f"{text.code[:4]}-{text.code[4:8]}-{text.code[8:]}")
    return bytes(pdf.output())


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
