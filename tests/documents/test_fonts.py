"""The bundled CJK font: shipped in the package, small, licensed, and able to draw every
character the project prints; every document uses it, never a system font."""

import io
from importlib.resources import files

import pypdf
from PIL import ImageFont

from wastetrack.batches.drawing import (
    CJK_FONT_CANDIDATES,
    MISSING_GLYPH,
    a4_pdf,
    add_cjk_font,
    one_line,
)
from wastetrack.core.fonts import CJK_FONT, cjk_repertoire
from wastetrack.core.fonts.build_subset import gbk, project_text


def test_font_and_licence_ship_inside_the_package() -> None:
    folder = files("wastetrack.core.fonts")
    assert (folder / CJK_FONT.name).is_file()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (folder / "OFL.txt").read_text("utf-8")
    assert "fonts-noto-cjk" in (folder / "README.md").read_text("utf-8")
    assert CJK_FONT.stat().st_size <= 8 * 1024 * 1024


def test_documents_use_only_the_bundled_font() -> None:
    assert CJK_FONT_CANDIDATES == (str(CJK_FONT),)
    assert ImageFont.truetype(str(CJK_FONT), 12).getname() == ("Noto Sans CJK SC", "Regular")


def test_font_draws_gbk_and_every_character_the_project_prints() -> None:
    drawable = cjk_repertoire()
    # Every character of GBK (GB 2312 within it) but ≒, which the source font lacks: names reach
    # beyond GB 2312 (荣成喆丰, 镕丰, 璟, 垚), and beyond the Unified Ideographs block (荣成﨑丰,
    # 二〇二六 would print as boxes).
    assert gbk() - drawable == {"≒"}
    assert set("喆堃镕昇旻珺璟玥垚〇﨑﨩") <= drawable
    missing = sorted(project_text() - drawable)
    assert missing == [], f"rebuild wastetrack/core/fonts (see its README) for {missing}"
    assert {"≤", "℃", "，", "（", "³", "→"} <= drawable


def _printed_in_a_pdf(text: str) -> str:
    """What a PDF page holding `text` in one cell of the bundled font reads back as."""
    pdf = a4_pdf()
    assert add_cjk_font(pdf, "cjk", CJK_FONT_CANDIDATES)
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    pdf.cell(180, 8, text)
    return pypdf.PdfReader(io.BytesIO(bytes(pdf.output()))).pages[0].extract_text().strip()


def test_a_pdf_prints_a_character_its_font_lacks_as_a_box_never_leaving_it_out() -> None:
    """fpdf2 leaves out a character the font cannot draw: 荣成䶮丰 (Extension A) would print as
    荣成丰, another company. Every PDF prints it as □ instead; GBK's 﨑 and 〇 print as they are."""
    pdf = a4_pdf()
    assert add_cjk_font(pdf, "cjk", CJK_FONT_CANDIDATES)
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    pdf.cell(180, 8, "荣成﨑丰 二〇二六 荣成䶮丰")
    pdf.multi_cell(180, 8, "\n荣成䶮丰")
    # Composed first, a tab as a space, a zero-width space left out: no box for any of them.
    pdf.multi_cell(180, 8, "\nCafe\u0301\t备注\u200b第二列")
    text = pypdf.PdfReader(io.BytesIO(bytes(pdf.output()))).pages[0].extract_text()
    assert "荣成﨑丰" in text and "二〇二六" in text, text
    assert text.count(f"荣成{MISSING_GLYPH}丰") == 2, text
    assert "Café 备注第二列" in text, text


def test_a_default_ignorable_character_prints_as_nothing_in_a_pdf_as_on_a_png_label() -> None:
    """A variation selector picks a variant of the character before it and has no glyph of its
    own, nor has a combining grapheme joiner or a Khmer inherent vowel: a PDF printed
    荣成葛<selector>丰 as 荣成葛□丰 where a PNG label drew 荣成葛丰, one producer under two names.
    Both leave each out."""
    for selector in ("\ufe00", "\U000e0100", "\u034f", "\u17b4", "\u2065", "\U000e0fff"):
        text = _printed_in_a_pdf(f"荣成葛{selector}丰")
        assert text == "荣成葛丰", (selector, text)
        assert one_line(f"荣成葛{selector}丰") == "荣成葛丰"


def test_a_format_character_with_a_glyph_of_its_own_prints_as_a_box_not_left_out() -> None:
    """An Arabic number sign or a Kaithi number sign is a format character with a glyph of its
    own, which the labels' layout draws (the font's box here): left out, a name would print
    short, naming another company. Only a default-ignorable character is left out."""
    for mark in ("\u0600", "\u06dd", "\u070f", "\U000110bd"):
        text = _printed_in_a_pdf(f"荣成{mark}丰")
        assert text == f"荣成{MISSING_GLYPH}丰", (hex(ord(mark)), text)
        assert one_line(f"荣成{mark}丰") == f"荣成{mark}丰"
