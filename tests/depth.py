"""How far the randomized tests look. By default each draws a few examples, the same ones every
run (derandomized), so that a run repeats and stays fast. `WASTETRACK_TEST_DEPTH=N` draws N
times as many, fresh each run, to look further than CI does: a failure prints the example
(hypothesis) or names the seed in the test's id, to be added to the fixed ones."""

import os
import random
from typing import Any

from hypothesis import HealthCheck, settings


def _depth(text: str) -> int:
    """The depth `WASTETRACK_TEST_DEPTH` asks for: a whole number from 1 up."""
    depth = int(text) if text.strip().isdecimal() else 0
    if depth < 1:
        raise ValueError(f"WASTETRACK_TEST_DEPTH must be a whole number from 1 up, not {text!r}")
    return depth


DEPTH = _depth(os.environ.get("WASTETRACK_TEST_DEPTH", "1"))


def randomized(examples: int, **overrides: Any) -> settings:
    """hypothesis settings for a test that records histories through the service: `examples`
    examples at depth 1 (DEPTH times as many, drawn afresh, deeper), no deadline, the checks
    a slow test with fixtures trips left out, and no example database written to the tree."""
    chosen: dict[str, Any] = {
        "max_examples": examples * DEPTH,
        "derandomize": DEPTH == 1,
        "deadline": None,
        "database": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    }
    return settings(**{**chosen, **overrides})


def seeds(fixed: list[int]) -> list[int]:
    """The seeds of a test that draws its own histories: the fixed ones, and deeper, DEPTH - 1
    times as many more, fresh each run."""
    drawn = random.SystemRandom()
    return fixed + [drawn.randrange(2**31) for _ in range(len(fixed) * (DEPTH - 1))]
