"""The layers depend one way: the HTTP app on contracts and domain, contracts on the domain,
the domain on neither — so a rule the domain owns is never restated in an API model."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The `wastetrack` command is where the layers are put together: `serve` starts the HTTP app.
ENTRY_POINT = "wastetrack/cli"


def imported_packages(package: str) -> dict[str, set[str]]:
    """Every top-level package each module of `package` imports, by module path."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("wastetrack", {"schemas", "mobile_api"}), ("schemas", {"mobile_api"})],
)
def test_a_layer_never_imports_the_layers_above_it(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in imported_packages(package).items()
        if names & forbidden and not module.startswith(ENTRY_POINT)
    }
    assert not offenders
