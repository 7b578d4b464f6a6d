"""Hypothesis strategies for Stratum V1 values and arbitrary JSON.

Text fields the codec hands on (worker names, job ids, user agents) are drawn
from characters UTF-8 can carry: the parsers refuse lone surrogates on
purpose.  Request ids may be any text, since they are only echoed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Longest byte string drawn for a hex field.
MAX_SMALL_BYTES = 40

utf8_text = st.text(st.characters(codec="utf-8"), max_size=20)
#: What a worker may be called: any UTF-8 text without C0 controls or DEL.
worker_names = st.text(
    st.characters(codec="utf-8", exclude_characters="".join(map(chr, [*range(32), 127]))), max_size=20
)
request_ids: st.SearchStrategy[int | str] = st.one_of(st.integers(-(2**63), 2**64), st.text(max_size=20))
u32 = st.integers(0, 0xFFFFFFFF)
small_bytes = st.binary(max_size=MAX_SMALL_BYTES)
hash32 = st.binary(min_size=32, max_size=32)
#: Any positive finite difficulty: subnormals, fractions, integral floats and huge values.
difficulties = st.one_of(
    st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False),
    st.integers(1, 2**70).map(float),
    st.sampled_from([0.0001, 1e-8, 1.0, 1024.0, 65536.0, 2.5]),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
json_objects = st.dictionaries(st.sampled_from(["id", "method", "params", "result", "error"]) | st.text(), json_values)
