"""The paging plan against SRS's start/count rule, with lists that change between pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.srs.api import Paging


def srs_window(ids: list[str], start: int, count: int) -> list[str]:
    """What SRS returns: items [start, start+max(10,count)) of its id-sorted std::map
    (srs_app_http_api.cpp: `count = srs_max(10, atoi(rcount))`; srs_app_statistic.cpp
    dumps_streams loops `i < start + count`)."""
    count = max(10, count)
    return sorted(ids)[max(0, start) : max(0, start) + count]


def page_through(
    paging: Paging, answer: Callable[[int, int], list[str]], limit: int = 10_000
) -> tuple[list[str], int]:
    collected: list[str] = []
    requests = 0
    while not paging.done:
        requests += 1
        assert requests < limit, "paging did not stop"
        page = answer(paging.start, paging.page_size)
        fresh = paging.feed(page)
        collected.extend(item for item, new in zip(page, fresh, strict=True) if new)
    return collected, requests


def ids(n: int, prefix: str = "vid-") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


@pytest.mark.parametrize("total", [0, 1, 9, 10, 11, 99, 100, 101, 2500])
def test_collects_every_item_once(total: int) -> None:
    items = ids(total)
    collected, _ = page_through(Paging(100), lambda s, c: srs_window(items, s, c))
    assert sorted(collected) == items


def test_request_count_for_2500_items() -> None:
    items = ids(2500)
    paging = Paging(500)
    collected, requests = page_through(paging, lambda s, c: srs_window(items, s, c))
    assert len(collected) == 2500
    assert paging.overlap == 16
    # windows start at 0, 484, 968, 1452, 1936, 2420; the last one is short (80 items)
    assert requests == 6


def test_server_ignoring_start_stops_after_one_repeat() -> None:
    """SRS 3's streams/ returns the whole list whatever start and count say."""
    items = ids(30)
    collected, requests = page_through(Paging(10), lambda s, c: sorted(items))
    assert sorted(collected) == items
    assert requests == 2


def test_items_vanishing_before_the_window_are_not_missed() -> None:
    """Up to `overlap` removals ahead of the window between two pages lose nothing."""
    items = ids(1000)
    paging = Paging(100)
    removed: set[str] = set()

    def answer(start: int, count: int) -> list[str]:
        if start:
            # remove `overlap` items that were already returned, shifting the rest left
            for victim in sorted(items)[:paging.overlap]:
                items.remove(victim)
                removed.add(victim)
        return srs_window(items, start, count)

    collected, _ = page_through(paging, answer)
    survivors = set(items)
    assert survivors <= set(collected)
    assert len(collected) == len(set(collected))


def test_items_appearing_are_deduplicated() -> None:
    items = ids(1000)
    newcomers = iter(ids(1000, prefix="a-"))  # "a-..." sorts before every "vid-..."

    def answer(start: int, count: int) -> list[str]:
        items.extend(next(newcomers) for _ in range(7))  # shifts the window right
        return srs_window(items, start, count)

    collected, _ = page_through(Paging(100), answer)
    assert len(collected) == len(set(collected))
    assert set(ids(1000)) <= set(collected)


def test_page_size_below_srs_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        Paging(9)
    with pytest.raises(ValueError, match="overlap"):
        Paging(10, overlap=10)
