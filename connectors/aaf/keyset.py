"""Digest of the sorted record keys of a file, in memory bounded by a chunk size.

``record_keys_digest`` = sha256 over the sorted distinct keys, each followed by ``\\n``
(:func:`keys_digest`). Keys are collected in chunks; a full chunk is sorted and spilled to a
temporary file, and the runs are merged at the end, so a file of any size needs only one chunk of
memory. The merge also reveals keys that occur more than once.
"""

from __future__ import annotations

import hashlib
import heapq
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

Entry = tuple[str, int, int]  # key, record index, line (0 when unknown)


def keys_digest(keys: Iterable[str]) -> str:
    """sha256 of the sorted distinct keys, each followed by a newline (for consumers to compare)."""
    h = hashlib.sha256()
    for key in sorted(set(keys)):
        h.update(key.encode("utf-8") + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class KeySummary:
    digest: str
    distinct: int
    duplicates: list[tuple[str, list[tuple[int, int]]]] = field(default_factory=list)


class KeySorter:
    """Collect ``(key, index, line)``; :meth:`finish` gives the digest and the duplicates."""

    def __init__(
        self, chunk_size: int = 20_000, max_duplicates: int = 10_000, max_runs: int = 64
    ) -> None:
        self._chunk: list[Entry] = []
        self._chunk_size = chunk_size
        self._max_duplicates = max_duplicates
        self._max_runs = max_runs
        self._runs: list[IO[str]] = []

    def add(self, key: str, index: int, line: int | None) -> None:
        self._chunk.append((key, index, line or 0))
        if len(self._chunk) >= self._chunk_size:
            self._spill()

    def _spill(self) -> None:
        self._chunk.sort()
        # Closed in close(): the run outlives this method.
        run = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        # Keys are jointure-based: no tab, no newline.
        run.writelines(f"{k}\t{i}\t{n}\n" for k, i, n in self._chunk)
        run.seek(0)
        self._runs.append(run)
        self._chunk = []
        if len(self._runs) >= self._max_runs:
            self._compact()

    def _compact(self) -> None:
        """Merge the runs into one, so that open temporary files stay few for huge files."""
        merged = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        sources = [self._read(r) for r in self._runs]
        merged.writelines(f"{k}\t{i}\t{n}\n" for k, i, n in heapq.merge(*sources))
        merged.seek(0)
        for run in self._runs:
            run.close()
        self._runs = [merged]

    @staticmethod
    def _read(run: IO[str]) -> Iterator[Entry]:
        for line in run:
            key, index, number = line.rstrip("\n").split("\t")
            yield key, int(index), int(number)

    def finish(self) -> KeySummary:
        self._chunk.sort()
        sources: list[Iterable[Entry]] = [self._chunk, *(self._read(r) for r in self._runs)]
        h = hashlib.sha256()
        distinct = 0
        duplicates: list[tuple[str, list[tuple[int, int]]]] = []
        current: str | None = None
        occurrences: list[tuple[int, int]] = []
        try:
            for key, index, line in heapq.merge(*sources):
                if key != current:
                    if len(occurrences) > 1 and len(duplicates) < self._max_duplicates:
                        duplicates.append((current or "", occurrences))
                    current, occurrences = key, []
                    h.update(key.encode("utf-8") + b"\n")
                    distinct += 1
                occurrences.append((index, line))
            if len(occurrences) > 1 and len(duplicates) < self._max_duplicates:
                duplicates.append((current or "", occurrences))
        finally:
            self.close()
        return KeySummary(digest=h.hexdigest(), distinct=distinct, duplicates=duplicates)

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []
        self._chunk = []
