"""QR labels: single PNGs for 50×30 mm label printers, A4 PDF sheets of pre-printed stock, and
the hazardous-waste label of HJ 1276-2022 (100, 150 or 200 mm square, see docs/labels.md).

Chinese is drawn with the font bundled in ``wastetrack.core.fonts``; only when that file is
missing (or a caller passes other candidates that are) does a label fall back to English.
"""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import qrcode
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from qrcode.constants import ERROR_CORRECT_M

from wastetrack.batches import identifiers
from wastetrack.core.errors import ValidationFailed
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
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("RGB")


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
    labels: Sequence[LabelText],
    *,
    title: str,
    pins: "PinPage | None" = None,
    cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES,
) -> bytes:
    """A4 sheets, 3 × 8 labels of 70 × 37 mm: QR, code and category, for pre-printed stock;
    with `pins`, the producer's one-time PIN list on a last page of its own."""
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
    if pins is not None:
        _pin_page(pdf, pins, cjk=cjk)
    return bytes(pdf.output())


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


@dataclass(frozen=True, slots=True)
class PinPage:
    """A producer's list of one-time handover PINs (wastetrack.cosign), as printed."""

    organization: str
    serial: int
    codes: Sequence[str]
    issued_on: date  # the city's calendar day


def render_pin_list_pdf(pins: PinPage, *, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES) -> bytes:
    """The PIN list alone, on one A4 page."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(f"wastetrack PIN list {pins.serial}")
    pdf.set_creator("wastetrack")
    cjk = add_cjk_font(pdf, "label", cjk_fonts)
    _pin_page(pdf, pins, cjk=cjk)
    return bytes(pdf.output())


def _pin_page(pdf: FPDF, pins: PinPage, *, cjk: bool) -> None:
    """One A4 page of the producer's one-time PINs (交接确认码), numbered, each with a box to
    tick when it is given to a carrier; kept by the producer with its label stock."""
    family = "label" if cjk else "Helvetica"
    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.set_xy(15, 15)
    heading = "交接确认码（一次性）" if cjk else "One-time handover PINs"
    pdf.cell(180, 9, heading)
    pdf.set_font(family, size=11)
    pdf.set_xy(15, 26)
    pdf.cell(180, 6, pins.organization if cjk else latin1(pins.organization))
    pdf.set_xy(15, 33)
    dated = f" · {pins.issued_on.isoformat()}" if cjk else ""
    pdf.cell(180, 6, f"No. {pins.serial}{dated}")
    pdf.set_font(family, size=9)
    pdf.set_xy(15, 41)
    pdf.multi_cell(
        180,
        5,
        "收运人员取走废物时，把下一个未用的确认码告诉他，并在方框内打勾。每个码只能用一次；"
        "新清单发放后，本清单作废。请勿交给收运单位保管。"
        if cjk
        else "Give the next unused PIN to the carrier at each handover and tick its box. Each"
        " PIN works once; a new list cancels this one. Never leave it with the carrier.",
    )
    columns, top, row_h, col_w = 4, 58.0, 9.0, 45.0
    rows = -(-len(pins.codes) // columns)
    for index, code in enumerate(pins.codes):
        x = 15 + (index // rows) * col_w
        y = top + (index % rows) * row_h
        pdf.rect(x, y + 1.5, 4, 4)
        pdf.set_font("Courier", size=9)
        pdf.set_xy(x + 5, y)
        pdf.cell(8, 7, f"{index + 1:02d}")
        pdf.set_font("Courier", style="B", size=14)
        pdf.set_xy(x + 13, y)
        pdf.cell(28, 7, code)


# HJ 1276-2022 labels -------------------------------------------------------------------------
# Minimum label sides and text heights by container volume (HJ 1276-2022, 危险废物标签尺寸):
# ≤ 50 L 100 × 100 mm, text ≥ 3 mm; > 50 L to ≤ 450 L 150 × 150 mm, 5 mm; above 450 L
# 200 × 200 mm, 6 mm, on two opposite faces.
HJ1276_BACKGROUND = "#FF9600"  # the standard's 醒目的橘黄色 [S]; RGB value [U]


@dataclass(frozen=True, slots=True)
class LabelSize:
    side_mm: int
    text_mm: float
    max_volume_l: Decimal | None  # None: any larger container

    @property
    def pixels(self) -> int:
        return _mm(self.side_mm)


HJ1276_SIZES = (
    LabelSize(100, 3, Decimal(50)),
    LabelSize(150, 5, Decimal(450)),
    LabelSize(200, 6, None),
)


def size_for(*, side_mm: int | None = None, volume_l: Decimal | None = None) -> LabelSize:
    """The label size asked for by its side, or the smallest HJ 1276 allows for a container
    of volume_l litres; the smallest size when neither is given."""
    if side_mm is not None:
        for size in HJ1276_SIZES:
            if size.side_mm == side_mm:
                return size
        sides = ", ".join(str(size.side_mm) for size in HJ1276_SIZES)
        raise ValidationFailed(f"HJ 1276 labels measure {sides} mm a side", field="size")
    if volume_l is not None:
        for size in HJ1276_SIZES:
            if size.max_volume_l is None or volume_l <= size.max_volume_l:
                return size
    return HJ1276_SIZES[0]


@dataclass(frozen=True, slots=True)
class Hazard:
    name_zh: str
    precaution_zh: str


# The five hazard characteristics of the 名录 and the precautions printed for them. The
# precaution wording is ours [U]: HJ 1276 leaves 注意事项 to the producer.
HAZARDS: dict[str, Hazard] = {
    "T": Hazard("毒性", "避免接触皮肤和吸入"),
    "C": Hazard("腐蚀性", "佩戴防护手套和护目镜"),
    "I": Hazard("易燃性", "远离火源和热源"),
    "R": Hazard("反应性", "避免撞击，与不相容物分开存放"),
    "In": Hazard("感染性", "密闭包装，防止破损"),
}


@dataclass(frozen=True, slots=True)
class HazardousLabelText:
    code: str
    url: str
    identifier: str | None
    waste_name: str
    category: str  # "HW08 废矿物油与含矿物油废物"
    waste_code: str | None
    hazards: tuple[str, ...]
    producer: str
    contact: str | None
    tagged_on: date
    weight: str
    form: str | None = None
    components: str | None = None


def render_hj1276_png(
    text: HazardousLabelText,
    *,
    size: LabelSize = HJ1276_SIZES[0],
    cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES,
) -> bytes:
    """A hazardous-waste label as HJ 1276-2022 draws it, at its true size in mm at 300 dpi:
    title, the label's fields on the left, the hazard pictograms and the QR on the right, the
    数字识别码 across the foot. No text is drawn smaller than the size's minimum height.

    PNG text chunks: ``Standard`` (HJ 1276-2022), ``Size`` (e.g. ``100x100mm``),
    ``MinTextHeightPx`` (the smallest glyph height drawn, in pixels), ``Identifier`` and
    ``OverflowPx`` (how far the fields ran into the foot or squeezed the QR: 0 when they fit;
    callers refuse a label that does not).
    """
    side = size.pixels
    canvas = Image.new("RGB", (side, side), HJ1276_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    cjk = find_font(cjk_fonts)
    unit = _mm(size.text_mm)
    body = _font_of_height(cjk, unit)
    title_font = _font_of_height(cjk, round(unit * 1.6))
    margin, border = _mm(3), max(_mm(1), 1)
    # The standard's frame: a black border, with blank room outside it.
    draw.rectangle(
        [margin, margin, side - margin - 1, side - margin - 1], outline="black", width=border
    )
    inner = margin + border + round(unit * 0.5)
    right_edge = side - inner
    title = "危险废物" if cjk else "HAZARDOUS WASTE"
    draw.text((side // 2, inner), title, fill="black", font=title_font, anchor="mt")
    top = inner + _height(title_font, title) + round(unit * 0.6)
    draw.line([(inner, top), (right_edge, top)], fill="black", width=border)
    top += round(unit * 0.5)
    pitch = round(unit * 1.3)
    # The foot first, from the bottom up: the 数字识别码 across the whole width, split at a
    # segment when it must be.
    shown = identifiers.spaced(text.identifier) if text.identifier else "—"
    foot = _wrap(draw, f"数字识别码：{shown}", body, right_edge - inner, split=" ")
    foot_top = side - inner - len(foot) * pitch
    y = foot_top
    for part in foot:
        draw.text((inner, y), part, fill="black", font=body)
        y += pitch
    foot_top -= round(unit * 0.4)
    draw.line([(inner, foot_top), (right_edge, foot_top)], fill="black", width=border)
    column = inner + round((right_edge - inner) * 0.64)
    precautions = "；".join(HAZARDS[h].precaution_zh for h in text.hazards if h in HAZARDS)
    rows = [
        ("废物名称", text.waste_name),
        ("废物类别", text.category),
        ("废物代码", text.waste_code or "—"),
        ("废物形态", text.form or "______"),
        ("主要成分", text.components or "______"),
        ("注意事项", precautions or "______"),
        ("产生/收集单位", text.producer),
        ("联系人和联系方式", text.contact or "______"),
        ("产生日期", text.tagged_on.isoformat()),
        ("废物重量", text.weight),
        ("备注", f"批次 {text.code}"),
    ]
    y = top
    for name, value in rows:
        line = f"{name}：{value}" if cjk else f"{name}: {value}"
        for part in _wrap(draw, line, body, column - inner - round(unit * 0.5)):
            draw.text((inner, y), part, fill="black", font=body)
            y += pitch
    overflow = max(0, y - foot_top)
    # Right column: the hazard characteristics, three pictograms a row, then the QR as large
    # as the room above the foot allows.
    width = right_edge - column
    draw.text((column, top), "危险特性", fill="black", font=body)
    cell = width // 3
    diamond = min(cell - round(unit * 0.2), round(unit * 4))
    y = top + pitch
    for index, hazard in enumerate(text.hazards):
        x = column + (index % 3) * cell
        if index and index % 3 == 0:
            y += diamond + pitch
        _pictogram(draw, hazard, (x + cell // 2, y + diamond // 2), diamond)
        label = HAZARDS[hazard].name_zh if hazard in HAZARDS else hazard
        draw.text((x + cell // 2, y + diamond), label, fill="black", font=body, anchor="mt")
    y += diamond + pitch if text.hazards else 0
    qr_side = min(width, foot_top - round(unit * 0.3) - y)
    overflow = max(overflow, round(unit * 6) - qr_side)  # a QR under 6 text heights: no room
    qr = qr_image(text.url).resize((qr_side, qr_side), Image.Resampling.NEAREST)
    canvas.paste(qr, (right_edge - qr_side, foot_top - round(unit * 0.3) - qr_side))
    info = PngInfo()
    info.add_itxt("Standard", "HJ 1276-2022")
    info.add_itxt("Size", f"{size.side_mm}x{size.side_mm}mm")
    info.add_itxt("MinTextHeightPx", str(_height(body, "危")))
    info.add_itxt("OverflowPx", str(overflow))
    info.add_itxt("Identifier", text.identifier or "")
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(DPI, DPI), pnginfo=info)
    return out.getvalue()


def _height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, sample: str) -> int:
    _, top, _, bottom = font.getbbox(sample)
    return int(bottom - top)


def _font_of_height(path: str | None, pixels: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The smallest font whose ideograph (or capital, without a CJK font) is pixels high."""
    sample = "危" if path else "H"
    size = pixels
    while _height(_font(path, size), sample) < pixels:
        size += 1
    return _font(path, size)


def _wrap(
    draw: ImageDraw.ImageDraw,
    line: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    room: int,
    split: str | None = None,
) -> list[str]:
    """The line broken into pieces that fit room pixels: at split characters when given
    (never inside a segment), else anywhere (Chinese has no spaces to break at)."""
    pieces = line.split(split) if split else list(line)
    glue = split or ""
    lines: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{glue}{piece}" if current else piece
        if current and draw.textlength(candidate, font=font) > room:
            lines.append(current)
            current = piece
        else:
            current = candidate
    lines.append(current)
    return lines


def _pictogram(draw: ImageDraw.ImageDraw, hazard: str, centre: tuple[int, int], side: int) -> None:
    """The hazard's pictogram as simple vector shapes: a white diamond framed in red with a
    black symbol (skull, corrosion, flame, burst, biohazard), after the GHS-style signs
    HJ 1276 prints."""
    cx, cy = centre
    r = side // 2
    draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill="white")
    frame = max(side // 14, 2)
    draw.line(
        [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy), (cx, cy - r)],
        fill="#D00000",
        width=frame,
        joint="curve",
    )
    s = r * 0.5  # the symbol's half-size
    stroke = max(side // 18, 2)
    if hazard == "T":  # skull and crossbones
        draw.line([(cx - s, cy + s * 0.1), (cx + s, cy + s * 0.9)], fill="black", width=stroke)
        draw.line([(cx + s, cy + s * 0.1), (cx - s, cy + s * 0.9)], fill="black", width=stroke)
        draw.ellipse([cx - s * 0.6, cy - s * 0.9, cx + s * 0.6, cy + s * 0.3], fill="black")
        for dx in (-0.25, 0.25):
            e = s * 0.15
            draw.ellipse(
                [cx + dx * s - e, cy - s * 0.4 - e, cx + dx * s + e, cy - s * 0.4 + e],
                fill="white",
            )
    elif hazard == "C":  # liquid dripping from two tubes onto a hand and a bar
        for dx in (-0.5, 0.35):
            x0 = cx + dx * s
            draw.polygon(
                [
                    (x0, cy - s),
                    (x0 + s * 0.25, cy - s * 1.0),
                    (x0 + s * 0.4, cy - s * 0.4),
                    (x0 + s * 0.15, cy - s * 0.4),
                ],
                fill="black",
            )
            e = s * 0.1
            draw.ellipse([x0 + s * 0.2 - e, cy - e, x0 + s * 0.2 + e, cy + e], fill="black")
        draw.rectangle([cx - s, cy + s * 0.4, cx - s * 0.1, cy + s * 0.8], fill="black")
        draw.rectangle([cx + s * 0.1, cy + s * 0.4, cx + s, cy + s * 0.8], fill="black")
        draw.rectangle([cx + s * 0.3, cy + s * 0.4, cx + s * 0.6, cy + s * 0.55], fill="white")
    elif hazard == "I":  # a flame over a base line
        draw.polygon(
            [
                (cx, cy - s * 1.1),
                (cx + s * 0.55, cy - s * 0.2),
                (cx + s * 0.6, cy + s * 0.5),
                (cx, cy + s * 0.75),
                (cx - s * 0.6, cy + s * 0.5),
                (cx - s * 0.5, cy - s * 0.1),
                (cx - s * 0.2, cy + s * 0.2),
            ],
            fill="black",
        )
        draw.line([(cx - s, cy + s), (cx + s, cy + s)], fill="black", width=stroke)
    elif hazard == "R":  # an exploding bomb: a burst of rays round a ball
        for k in range(12):
            angle = k * math.pi / 6
            inner_r, outer_r = s * 0.45, s * (1.05 if k % 2 == 0 else 0.8)
            draw.line(
                [
                    (cx + inner_r * math.cos(angle), cy + inner_r * math.sin(angle)),
                    (cx + outer_r * math.cos(angle), cy + outer_r * math.sin(angle)),
                ],
                fill="black",
                width=stroke,
            )
        draw.ellipse([cx - s * 0.4, cy - s * 0.4, cx + s * 0.4, cy + s * 0.4], fill="black")
    elif hazard == "In":  # biohazard: three rings round a centre
        for k in range(3):
            angle = -math.pi / 2 + k * 2 * math.pi / 3
            ox, oy = cx + s * 0.4 * math.cos(angle), cy + s * 0.4 * math.sin(angle)
            draw.ellipse(
                [ox - s * 0.5, oy - s * 0.5, ox + s * 0.5, oy + s * 0.5],
                outline="black",
                width=stroke,
            )
        draw.ellipse([cx - s * 0.18, cy - s * 0.18, cx + s * 0.18, cy + s * 0.18], fill="black")
    else:
        draw.text((cx, cy), hazard, fill="black", anchor="mm", font=_font(None, max(side // 3, 10)))
