"""Every shell example in README.md and docs/ runs against a real service with the demo loaded.

Conventions (docs/architecture.md repeats them for writers):

- a ```` ```bash ```` block is run; ```` ```bash no-run ```` and any other language are shown only;
- the runnable blocks of one page run in order in one `bash -euo pipefail` process, so a page
  defines its variables and helpers in its first block; `BASE` (the service), `PATH` (with the
  virtualenv's `wastetrack`) and the database settings are exported by the test;
- a line `# expect: <text>` in a block asserts that the block's output contains <text>.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import free_port
from tests.docs.pages import ROOT, Block, blocks, pages
from wastetrack.core import db

MARK = "@@docs-test-block@@"


@pytest.fixture(scope="module")
def service(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The demo on a real uvicorn over loopback, in a database of its own."""
    if not shutil.which("curl"):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's curl (.ci/run does)", pytrace=False)
        pytest.skip("the documented examples use curl, which is not installed")
    data_dir = tmp_path_factory.mktemp("docs-data")
    url = db.with_database(server_url, f"wastetrack_docs_{uuid.uuid4().hex[:8]}")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WASTETRACK_")},
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(data_dir),
        "BASE": f"http://127.0.0.1:{port}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    demo = subprocess.run(
        [sys.executable, "-m", "wastetrack.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    log = data_dir / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "wastetrack.cli", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            if server.poll() is not None:
                break
            try:
                if httpx.get(f"{env['BASE']}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            server.kill()
        if server.poll() is not None:
            pytest.fail(f"the service did not start:\n{log.read_text()[-3000:]}", pytrace=False)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(db.drop_database(url))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shell_example_of_the_page_runs(
    page: Path, service: dict[str, str], tmp_path: Path
) -> None:
    runnable = [b for b in blocks(page) if b.runs]
    if not runnable:
        return
    # A block's output may lack its last newline: the mark starts a line of its own.
    script = "\n".join(f"printf '\\n{MARK} {i}\\n'\n{b.code}" for i, b in enumerate(runnable))
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=service,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outputs = _split(done.stdout, len(runnable))
    reached = max((i for i, out in enumerate(outputs) if out is not None), default=0)
    if done.returncode != 0:
        block = runnable[reached]
        pytest.fail(
            f"{page.name}:{block.line}: exit {done.returncode}\n{block.code}\n"
            f"--- stdout\n{outputs[reached]}\n--- stderr\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    for block, output in zip(runnable, outputs, strict=True):
        for expected in block.expects:
            assert expected in (output or ""), (
                f"{page.name}:{block.line}: output lacks {expected!r}\n{block.code}\n"
                f"--- stdout\n{output}"
            )


def _split(stdout: str, count: int) -> list[str | None]:
    outputs: list[str | None] = [None] * count
    current = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith(MARK):
            current = int(line.split()[1])
            outputs[current] = ""
        elif current is not None:
            outputs[current] = (outputs[current] or "") + line
    return outputs


def test_expect_comments_are_found_and_checked() -> None:
    block = Block(line=1, lang="bash", flags=(), code="echo hi\n# expect: hi\n#expect:no")
    assert block.runs and block.expects == ["hi"]
    assert not Block(line=1, lang="bash", flags=("no-run",), code="x").runs
    assert not Block(line=1, lang="console", flags=(), code="x").runs
    assert _split(f"{MARK} 0\na\n{MARK} 1\nb\n", 3) == ["a\n", "b\n", None]


def test_readme_is_short_and_links_only_to_what_exists() -> None:
    readme = ROOT / "README.md"
    size = len(readme.read_bytes())
    assert size <= 8704, f"README.md is {size} bytes, over 8.5 KB: move detail to docs/"
    for page in [readme, *pages()]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_readme_test_command_is_what_ci_runs_last() -> None:
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [b.code.strip() for b in blocks(ROOT / "README.md")]
    assert any(ci[-1] in c.splitlines() for c in commands), (ci[-1], commands)
    install = re.findall(r"^python3 -m venv .*$", readme, re.M)
    assert len(install) == 1 and install[0].endswith("wastetrack serve"), install
