"""The documentation pages and their fenced code blocks, as the docs tests read them."""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
EXPECT = re.compile(r"^\s*# expect: (.+?)\s*$", re.M)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    flags: tuple[str, ...]
    code: str

    @property
    def runs(self) -> bool:
        """Only ```bash blocks run; ```bash no-run ones are shown, like every other language."""
        return self.lang == "bash" and "no-run" not in self.flags

    @property
    def expects(self) -> list[str]:
        return EXPECT.findall(self.code)


def pages() -> list[Path]:
    """README.md first, then every page under docs/, in path order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        lang, *flags = match.group(1).split() or [""]
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(line=line, lang=lang, flags=tuple(flags), code=match.group(2)))
    return found
