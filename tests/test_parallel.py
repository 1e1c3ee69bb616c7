"""map_in_order: the threads behind reading and encoding folders."""

from __future__ import annotations

import threading
import time

import pytest

from ssgan_core.parallel import map_in_order, torch_threads


def test_results_come_in_order_from_several_threads():
    names: set[str] = set()

    def slow_square(x: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.01 * (5 - x % 5))  # later items finish first
        return x * x

    assert list(map_in_order(slow_square, range(20), 3, name="t")) == [x * x for x in range(20)]
    assert len(names) > 1 and all(n.startswith("t") for n in names)


def test_input_is_read_lazily_with_a_bounded_lead():
    taken = []

    def items():
        for i in range(100):
            taken.append(i)
            yield i

    results = map_in_order(lambda x: x, items(), 2, ahead=4)
    assert next(results) == 0
    assert len(taken) <= 5  # four in flight plus the one being handed out
    assert list(results) == list(range(1, 100))


def test_an_error_is_raised_where_its_result_belonged():
    def fail_on_3(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    seen = []
    with pytest.raises(ValueError, match="three"):
        for value in map_in_order(fail_on_3, range(10), 2):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
