"""The depth of the randomized tests (tests/depth.py): asked for by a whole number from 1 up,
scaling the examples and seeds it is given."""

import pytest

from tests import depth


@pytest.mark.parametrize("text", ["0", "-2", "two", "", "1.5"])
def test_a_depth_that_is_not_a_whole_number_from_1_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="WASTETRACK_TEST_DEPTH"):
        depth._depth(text)


def test_a_depth_is_read_as_its_number() -> None:
    assert depth._depth("1") == 1
    assert depth._depth(" 40 ") == 40


def test_the_examples_and_seeds_scale_with_the_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    assert depth.randomized(5).max_examples == 5 * depth.DEPTH
    monkeypatch.setattr(depth, "DEPTH", 1)
    assert depth.randomized(5).derandomize
    assert depth.seeds([3, 4]) == [3, 4]
    monkeypatch.setattr(depth, "DEPTH", 3)
    deeper = depth.randomized(5, deadline=1000)
    assert (deeper.max_examples, deeper.derandomize) == (15, False)
    drawn = depth.seeds([3, 4])
    assert drawn[:2] == [3, 4] and len(drawn) == 6
