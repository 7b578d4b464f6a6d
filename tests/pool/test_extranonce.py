"""Extranonce prefixes: unique while live, sized per channel kind, a clear error when full."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.errors import PoolError
from sv2proxy.pool.extranonce import ExtranonceAllocator, ExtranonceLayout


def test_layout_bounds():
    with pytest.raises(ValueError, match="1..32"):
        ExtranonceLayout(33, 4)
    with pytest.raises(ValueError, match="leave no room"):
        ExtranonceLayout(8, 4, fixed=b"\x00" * 5)
    layout = ExtranonceLayout(16, 4, fixed=b"\xaa\xbb")
    assert (layout.prefix_size, layout.rollable_size) == (6, 10)


def test_prefixes_by_kind():
    allocator = ExtranonceAllocator(ExtranonceLayout(12, 2, fixed=b"\xaa"))
    value = allocator.allocate()
    assert allocator.extended_prefix(value) == b"\xaa\x00\x00"
    assert allocator.standard_prefix(value) == b"\xaa\x00\x00" + b"\x00" * 9
    assert len(allocator.standard_prefix(value)) == 12


def test_exhaustion_is_a_clear_error_and_freed_values_come_back_last():
    allocator = ExtranonceAllocator(ExtranonceLayout(4, 1))
    values = [allocator.allocate() for _ in range(256)]
    assert sorted(values) == list(range(256))
    with pytest.raises(PoolError, match="all 256 channel prefixes are in use"):
        allocator.allocate()
    allocator.release(5)
    assert allocator.allocate() == 5


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=200))
def test_no_two_live_channels_share_a_prefix(operations):
    allocator = ExtranonceAllocator(ExtranonceLayout(4, 1))
    live: list[int] = []
    recently_freed: list[int] = []
    for allocate, index in operations:
        if allocate or not live:
            value = allocator.allocate()
            assert value not in live
            live.append(value)
        else:
            value = live.pop(index % len(live))
            allocator.release(value)
            recently_freed.append(value)
    assert len(set(live)) == len(live) == allocator.live
