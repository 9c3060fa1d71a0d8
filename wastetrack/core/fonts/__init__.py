"""The CJK font shipped inside the package, so every document prints Chinese on a machine with
no system fonts: Noto Sans CJK SC Regular subset to GBK, the CJK Unified Ideographs and the
project's own characters
(SIL Open Font License 1.1, see OFL.txt; origin and rebuild in README.md and build_subset.py).

It is always used, even where a system CJK font exists: labels, receipts and manifests then look
the same on every machine, and tests check the very font the service prints with.
"""

from functools import cache
from pathlib import Path

CJK_FONT = Path(__file__).resolve().with_name("NotoSansSC-Regular-subset.ttf")


@cache
def cjk_repertoire() -> frozenset[str]:
    """The characters the bundled font can draw."""
    from fontTools.ttLib import TTFont

    with TTFont(CJK_FONT, lazy=True) as font:
        return frozenset(map(chr, font.getBestCmap()))
