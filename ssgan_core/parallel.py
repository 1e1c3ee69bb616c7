"""Work that releases the GIL (libsndfile, FFTs, torch ops), spread over threads in order.

Imports no torch: commands that only read audio start without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_order(
    fn: Callable[[T], R], items: Iterable[T], workers: int, *, ahead: int | None = None, name: str = "ssgan"
) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, results yielded in the items' order.

    At most ``ahead`` (default ``2 * workers``) items are in flight, so memory does not
    grow with the input; ``items`` is consumed lazily on the calling thread. An exception
    in ``fn`` is raised where its result would have been yielded. One worker runs inline.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    limit = ahead or 2 * workers
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block (it is process-wide)."""
    import torch  # not at import: reading files needs no torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
