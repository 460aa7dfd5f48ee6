"""External sort of text lines: memory bounded by a chunk, whatever the number of lines.

A full chunk is sorted and spilled to a temporary file; the runs are merged lazily. When runs pile
up they are merged into one, so few temporary files stay open even for huge inputs.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterator
from typing import IO


class LineSorter:
    """``add`` lines (no newline inside), then iterate them in sorted order once."""

    def __init__(self, chunk_size: int = 20_000, max_runs: int = 64) -> None:
        self._chunk: list[str] = []
        self._chunk_size = chunk_size
        self._max_runs = max_runs
        self._runs: list[IO[str]] = []

    def add(self, line: str) -> None:
        self._chunk.append(line)
        if len(self._chunk) >= self._chunk_size:
            self._spill(sorted(self._chunk))
            self._chunk = []

    def _spill(self, lines: Iterator[str] | list[str]) -> None:
        # Closed in close(): the run outlives this method.
        run = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        run.writelines(f"{line}\n" for line in lines)
        run.seek(0)
        self._runs.append(run)
        if len(self._runs) >= self._max_runs:
            runs, self._runs = self._runs, []
            self._spill(heapq.merge(*(self._read(r) for r in runs)))
            for old in runs:
                old.close()

    @staticmethod
    def _read(run: IO[str]) -> Iterator[str]:
        run.seek(0)
        for line in run:
            yield line[:-1]

    def sorted(self) -> Iterator[str]:
        """All lines in order (reads the runs: call once, then :meth:`close`)."""
        self._chunk.sort()
        return heapq.merge(self._chunk, *(self._read(r) for r in self._runs))

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []
        self._chunk = []
