"""Sorted-keys digest in bounded memory (spilled runs, compaction, duplicates)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.aaf.keyset import KeySorter, keys_digest


@settings(max_examples=50)
@given(
    keys=st.lists(st.from_regex(r"pupil:[0-9]{1,4}", fullmatch=True), max_size=400),
    chunk=st.integers(1, 50),
    runs=st.integers(2, 6),
)
def test_digest_and_duplicates_match_in_memory(keys: list[str], chunk: int, runs: int) -> None:
    sorter = KeySorter(chunk_size=chunk, max_runs=runs)
    for index, key in enumerate(keys):
        sorter.add(key, index, index + 10)
    summary = sorter.finish()
    assert summary.digest == keys_digest(keys)
    assert summary.distinct == len(set(keys))
    counts = Counter(keys)
    assert {k: len(o) for k, o in summary.duplicates} == {k: n for k, n in counts.items() if n > 1}
    for key, occurrences in summary.duplicates:
        assert [i for i, _ in occurrences] == sorted(i for i, k in enumerate(keys) if k == key)


def test_empty() -> None:
    assert KeySorter().finish().digest == keys_digest([])
