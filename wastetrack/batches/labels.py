"""QR labels for label stock: single PNGs for 50×30 mm label printers, A4 PDF sheets of
pre-printed stock, and the producer's one-time PIN list printed with them. The hazardous-waste
label of HJ 1276-2022 is ``wastetrack.batches.hj1276``.

Chinese is drawn with the font bundled in ``wastetrack.core.fonts``; only when that file is
missing (or a caller passes other candidates that are) does a label fall back to English.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, cast

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from wastetrack.batches.drawing import (
    CJK_FONT_CANDIDATES,
    DPI,
    Font,
    a4_pdf,
    add_cjk_font,
    find_font,
    latin1,
    load_font,
    mm,
    one_line,
    qr_image,
)
from wastetrack.core import codes
from wastetrack.core.errors import ValidationFailed

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.enums import WrapMode

LABEL_MM = (50, 30)


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
    # What a title or subtitle too long to print whole is refused naming (a berth's or site's
    # own name on its plate).
    title_field: str = "category"
    subtitle_field: str = "stream"


def render_label_png(text: LabelText, *, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES) -> bytes:
    """A 50×30 mm, 300 dpi label: QR on the left, colour band, category and code on the right.

    The PNG's text chunks say what it printed: ``Title`` (the category as drawn) and ``Font``
    (the font file's family name, or ``default`` for Pillow's built-in Latin font).
    """
    width, height = mm(LABEL_MM[0]), mm(LABEL_MM[1])
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    qr = qr_image(text.url)
    side = height - 2 * mm(1)
    canvas.paste(qr.resize((side, side), Image.Resampling.NEAREST), (mm(1), mm(1)))
    left = side + mm(2)
    band = mm(6)
    draw.rectangle([left, mm(1), width - mm(1), mm(1) + band], fill=text.colour)
    cjk = find_font(cjk_fonts)
    if cjk:
        title, subtitle = one_line(text.category_zh), one_line(text.stream_zh)
    else:
        title, subtitle = one_line(text.category_en), one_line(text.stream_en)
    fit = _fitted(draw, title, cjk, width - left - mm(2), 40, field=text.title_field)
    draw.text((left + mm(1), mm(1) + band // 2), title, fill="white", anchor="lm", font=fit)
    draw.text(
        (left, mm(9)),
        subtitle,
        fill="black",
        font=_fitted(draw, subtitle, cjk, width - left - mm(1), 30, field=text.subtitle_field),
    )
    code = codes.printed(text.code)
    draw.text(
        (left, mm(15)),
        code,
        fill="black",
        font=_fitted(draw, code, cjk, width - left - mm(1), 44, field="code"),
    )
    if text.tagged_on:
        draw.text((left, mm(23)), text.tagged_on.isoformat(), fill="black", font=load_font(cjk, 28))
    info = PngInfo()
    info.add_itxt("Title", title)
    named = load_font(cjk, 10) if cjk else None
    family = named.getname()[0] if isinstance(named, ImageFont.FreeTypeFont) else None
    info.add_itxt("Font", family or "default")
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(DPI, DPI), pnginfo=info)
    return out.getvalue()


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, path: str | None, room: int, size: int, *, field: str
) -> Font:
    """The largest font up to size, down to 10 px (0.85 mm), whose rendering of text fits in
    room pixels. A text that does not fit even then is refused naming `field`: cut at the
    label's edge (or past its colour band, white on paper), a name printed short names another
    berth or site, or none."""
    while size >= 10:
        candidate = load_font(path, size)
        if draw.textlength(text, font=candidate) <= room:
            return candidate
        size -= 2
    raise ValidationFailed(
        f"{field} {text!r} is too long to print whole on a {LABEL_MM[0]} x {LABEL_MM[1]} mm"
        " label: shorten it",
        field=field,
    )


def render_label_sheet_pdf(
    labels: Sequence[LabelText],
    *,
    title: str,
    pins: "PinPage | None" = None,
    cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES,
) -> bytes:
    """A4 sheets, 3 × 8 labels of 70 × 37 mm: QR, code and category, for pre-printed stock;
    with `pins`, the producer's one-time PIN list on a last page of its own."""
    pdf = a4_pdf()
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
        pdf.cell(cell_w - 38, 6, codes.printed(text.code))
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
    pdf = a4_pdf()
    pdf.set_auto_page_break(False)
    pdf.set_title(f"wastetrack PIN list {pins.serial}")
    pdf.set_creator("wastetrack")
    cjk = add_cjk_font(pdf, "label", cjk_fonts)
    _pin_page(pdf, pins, cjk=cjk)
    return bytes(pdf.output())


def _lines(pdf: "FPDF", text: str, wrap: "WrapMode") -> int:
    """How many lines a 180 mm cell breaks `text` into, at the current size."""
    from fpdf.enums import MethodReturnValue

    # The lines, as `output` asks (fpdf2 types every output its argument may ask).
    broken = pdf.multi_cell(
        180, 3.5, text, dry_run=True, output=MethodReturnValue.LINES, wrapmode=wrap
    )
    return len(cast(list[str], broken))


def _pin_page(pdf: "FPDF", pins: PinPage, *, cjk: bool) -> None:
    """One A4 page of the producer's one-time PINs (交接确认码), numbered, each with a box to
    tick when it is given to a carrier; kept by the producer with its label stock."""
    from fpdf.enums import WrapMode  # fpdf2 is loaded on printing (a4_pdf)

    family = "label" if cjk else "Helvetica"
    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.set_xy(15, 15)
    heading = "交接确认码（一次性）" if cjk else "One-time handover PINs"
    pdf.cell(180, 9, heading)
    pdf.set_font(family, size=11)
    pdf.set_xy(15, 26)
    # A name takes up to 128 characters: it is printed whole, smaller (down to 7 pt) and then
    # on two lines, in the 7 mm above the list's number, never past the page's edge. Its own
    # line breaks are spaces, as on a PNG label: each would add a line over the number. Two
    # lines broken at spaces may not hold it (a long word after one): then broken anywhere.
    name = one_line(pins.organization)
    name = name if cjk else latin1(name)
    text_width = 180 - 2 * pdf.c_margin  # what a 180 mm cell holds of text
    # Smaller until it fits: on one line down to 7 pt, then on two (a letter NFC prints as two
    # or three characters may take it below 7 pt).
    wrap: WrapMode | None = None  # one line
    while pdf.get_string_width(name) > text_width:
        if pdf.font_size_pt <= 7:
            wrap = WrapMode.WORD if _lines(pdf, name, WrapMode.WORD) <= 2 else WrapMode.CHAR
            if _lines(pdf, name, wrap) <= 2 or pdf.font_size_pt <= 1:
                break
        pdf.set_font_size(pdf.font_size_pt - 0.5)
    else:
        wrap = None  # it fits on one line at this size
    if wrap is None:
        pdf.multi_cell(180, 6, name)
    else:
        pdf.multi_cell(180, 3.5, name, wrapmode=wrap)
    pdf.set_font(family, size=11)  # the number keeps its size, whatever the name took
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
