"""Build the bundled CJK font: Noto Sans CJK SC Regular, subset to GBK (its 21,791 characters:
names of people and companies reach well beyond GB 2312's 6,763 hanzi), the CJK Unified
Ideographs block and every character the project prints, so labels, receipts and manifests
carry Chinese with no system font.

Source (OFL-1.1): Noto Sans CJK 2.004 (googlefonts/noto-cjk), as Debian ships it in the package
``fonts-noto-cjk`` version ``1:20220127+repack1-1``: face 2 ("Noto Sans CJK SC") of
``/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc``. To rebuild without installing it::

    apt-get download fonts-noto-cjk=1:20220127+repack1-1
    dpkg -x fonts-noto-cjk_*.deb /tmp/noto
    python -m wastetrack.core.fonts.build_subset \
        /tmp/noto/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

The run checks the source's SHA-256, subsets with fontTools, and compares the result with the
committed font: it exits 1 when they differ (the repertoire or fontTools changed) unless
``--write`` is given, which replaces the committed font; record the new hash in README.md.
"""

import argparse
import hashlib
import io
import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OUTPUT = HERE / "NotoSansSC-Regular-subset.ttf"
SOURCE_SHA256 = "b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a"
SOURCE_FACE = 2  # Noto Sans CJK SC inside the collection

# Beyond GBK and Latin-1: signs the documents print (≤ in indicators, ℃ in treatment
# methods, m³, arrows, dashes, full-width punctuation) even before any data uses them.
EXTRA = "≤≥±×÷℃°³²·—–→←↑↓…‰※•「」『』【】〔〕《》〈〉“”‘’、。，；：？！（）［］｛｝～・　€¥"

# Where the project keeps text it may print; the vendored JavaScript is not ours.
SCANNED = {
    "wastetrack": ("*.py", "*.json"),
    "mobile_api": ("*.py", "*.html", "*.js", "*.css"),
    "schemas": ("*.py",),
}
SKIPPED = ("mobile_api/static/vendor/", "wastetrack/core/fonts/")


def gbk() -> set[str]:
    """Every character of GBK (GB 2312 within it): lead bytes 0x81–0xFE, trail bytes 0x40–0xFE
    but 0x7F. Beyond the CJK Unified Ideographs it holds hanzi a name may carry — 〇 (二〇二六),
    the compatibility ideographs 﨑 and 﨩 — and the symbols GB 2312 lacks."""
    chars = set()
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            if trail == 0x7F:
                continue
            try:
                chars.add(bytes((lead, trail)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    return chars


def project_text() -> set[str]:
    """Every non-ASCII character in the package's sources, data files and templates."""
    chars: set[str] = set()
    for package, patterns in SCANNED.items():
        for pattern in patterns:
            for path in sorted((ROOT / package).rglob(pattern)):
                relative = path.relative_to(ROOT).as_posix()
                if relative.startswith(SKIPPED):
                    continue
                chars.update(c for c in path.read_text("utf-8") if ord(c) > 0x7F)
    return chars


def unified_ideographs() -> set[str]:
    """The CJK Unified Ideographs block (U+4E00–U+9FFF), which holds GBK's 20,902 hanzi: a
    producer named 荣成喆丰 or 镕丰 prints as it is registered, not as boxes."""
    return {chr(code) for code in range(0x4E00, 0xA000)}


def repertoire() -> set[str]:
    latin = {chr(code) for code in range(0x20, 0x7F)} | {chr(code) for code in range(0xA0, 0x100)}
    return gbk() | unified_ideographs() | latin | set(EXTRA) | project_text()


def build(source: Path) -> bytes:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source}: SHA-256 {digest}, expected {SOURCE_SHA256}")
    font = TTFont(source, fontNumber=SOURCE_FACE, recalcTimestamp=False, lazy=False)
    options = subset.Options()
    # Horizontal text only, and neither fpdf2 nor Pillow's basic layout shapes: kerning suffices.
    options.layout_features = ["kern"]
    options.hinting = False
    options.desubroutinize = False
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    options.drop_tables += ["BASE", "VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options=options)
    available = set(map(chr, font.getBestCmap()))
    subsetter.populate(unicodes=sorted(ord(c) for c in repertoire() & available))
    subsetter.subset(font)
    to_truetype(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def to_truetype(font: TTFont, *, max_err: float = 1.0, reverse_direction: bool = True) -> None:
    """Replace the CFF outlines with quadratic TrueType ones (fontTools' otf2ttf recipe).

    fpdf2 embeds a CID-keyed CFF font with its own encoding CMap, which text extractors such as
    pypdf misread; TrueType outlines are embedded as Identity-H, which every reader handles.
    """
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err, reverse_direction=reverse_direction))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = glyphs
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    glyf.compile(font)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in (
        "maxZones maxTwilightPoints maxStorage maxFunctionDefs maxInstructionDefs "
        "maxStackElements maxSizeOfInstructions maxComponentElements"
    ).split():
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    maxp.maxComponentElements = max(
        (len(g.components) for g in glyphs.values() if g.isComposite()), default=0
    )
    maxp.compile(font)
    # No glyph names (post format 3): they would cost 150 kB and nothing reads them.
    font["post"].formatType = 3.0
    font.sfntVersion = "\x00\x01\x00\x00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="NotoSansCJK-Regular.ttc from fonts-noto-cjk")
    parser.add_argument("--write", action="store_true", help="replace the committed font")
    args = parser.parse_args()
    built = build(args.source)
    digest = hashlib.sha256(built).hexdigest()
    print(f"{OUTPUT.name}: {len(built)} bytes, SHA-256 {digest}")
    if args.write:
        OUTPUT.write_bytes(built)
        return
    committed = hashlib.sha256(OUTPUT.read_bytes()).hexdigest() if OUTPUT.is_file() else None
    if committed != digest:
        print(f"differs from the committed font (SHA-256 {committed})", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
