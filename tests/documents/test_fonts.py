"""The bundled CJK font: shipped in the package, small, licensed, and able to draw every
character the project prints; every document uses it, never a system font."""

from importlib.resources import files

from PIL import ImageFont

from wastetrack.batches.drawing import CJK_FONT_CANDIDATES
from wastetrack.core.fonts import CJK_FONT, cjk_repertoire
from wastetrack.core.fonts.build_subset import gb2312, project_text, unified_ideographs


def test_font_and_licence_ship_inside_the_package() -> None:
    folder = files("wastetrack.core.fonts")
    assert (folder / CJK_FONT.name).is_file()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (folder / "OFL.txt").read_text("utf-8")
    assert "fonts-noto-cjk" in (folder / "README.md").read_text("utf-8")
    assert CJK_FONT.stat().st_size <= 8 * 1024 * 1024


def test_documents_use_only_the_bundled_font() -> None:
    assert CJK_FONT_CANDIDATES == (str(CJK_FONT),)
    assert ImageFont.truetype(str(CJK_FONT), 12).getname() == ("Noto Sans CJK SC", "Regular")


def test_font_draws_gb2312_and_every_character_the_project_prints() -> None:
    drawable = cjk_repertoire()
    assert gb2312() <= drawable
    # Every hanzi of GBK: names reach beyond GB 2312 (荣成喆丰, 镕丰, 璟, 垚 would print as boxes).
    gbk = set()
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            try:
                gbk.add(bytes((lead, trail)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    assert (gbk & unified_ideographs()) - drawable == set()
    assert set("喆堃镕昇旻珺璟玥垚") <= drawable
    missing = sorted(project_text() - drawable)
    assert missing == [], f"rebuild wastetrack/core/fonts (see its README) for {missing}"
    assert {"≤", "℃", "，", "（", "³", "→"} <= drawable
