"""What a wheel ships: every data file under a package (the phone app, templates, fonts, pinned
reference editions) is named by the package data in pyproject.toml, so `pip install .` serves
the same service as an editable install."""

import fnmatch
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _matches(path: str, pattern: str) -> bool:
    """A setuptools glob: `*` stays within one directory."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))


def test_every_data_file_of_a_package_is_package_data() -> None:
    # The tracked files are git's answer: an unpacked sdist or zip has no history to ask.
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    tracked = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    missing = []
    for name in tracked:
        package, _, inside = name.partition("/")
        if name.endswith(".py") or "/__pycache__/" in name:
            continue
        if not any(_matches(inside, p) for p in patterns[package]):
            missing.append(name)
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
