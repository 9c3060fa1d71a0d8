"""The hazardous-waste label of HJ 1276-2022 (危险废物标签): its sizes by container volume, the
hazard characteristics it names, and the label drawn at its true size (see docs/labels.md).

Chinese is drawn with the font bundled in ``wastetrack.core.fonts``; only when that file is
missing (or a caller passes other candidates that are) does the title fall back to English.
"""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from wastetrack.batches import identifiers
from wastetrack.batches.drawing import (
    CJK_FONT_CANDIDATES,
    DPI,
    Font,
    find_font,
    load_font,
    mm,
    one_line,
    qr_image,
)
from wastetrack.batches.pictograms import draw_pictogram
from wastetrack.core.errors import ValidationFailed

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
        return mm(self.side_mm)


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
    unit = math.ceil(size.text_mm / 25.4 * DPI)  # the minimum, never rounded below it
    body = _font_of_height(cjk, unit)
    title_font = _font_of_height(cjk, round(unit * 1.6))
    margin, border = mm(3), max(mm(1), 1)
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
        draw_pictogram(draw, hazard, (x + cell // 2, y + diamond // 2), diamond)
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
    info.add_itxt("MinTextHeightPx", str(_height(body, "危" if cjk else "H")))
    info.add_itxt("OverflowPx", str(overflow))
    info.add_itxt("Identifier", text.identifier or "")
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(DPI, DPI), pnginfo=info)
    return out.getvalue()


def _height(font: Font, sample: str) -> int:
    _, top, _, bottom = font.getbbox(sample)
    return int(bottom - top)


def _font_of_height(path: str | None, pixels: int) -> Font:
    """The smallest font whose ideograph (or capital, without a CJK font) is pixels high."""
    sample = "危" if path else "H"
    size = pixels
    while _height(load_font(path, size), sample) < pixels:
        size += 1
    return load_font(path, size)


def _wrap(
    draw: ImageDraw.ImageDraw,
    line: str,
    font: Font,
    room: int,
    split: str | None = None,
) -> list[str]:
    """The line broken into pieces that fit room pixels: at split characters when given
    (never inside a segment), else anywhere (Chinese has no spaces to break at)."""
    line = one_line(line)
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
