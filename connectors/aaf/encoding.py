"""Encoding lies: UTF-8 bytes under a single-byte declaration (issue 19.6).

An export that writes UTF-8 but declares ISO-8859-1/-15 or windows-1252 parses without error,
every accented letter read as two characters (``Les CÃ¨dres``): mojibake that would reach the
directory. Such a file is refused whole.

Heuristic: the file has at least one non-ASCII byte and every non-ASCII byte sequence in it is
valid UTF-8. Genuine single-byte French text almost never is: an accented letter (``é`` = 0xE9)
followed by an ASCII letter is not a UTF-8 sequence, so the first accented word settles it, and
from then on nothing more is decoded. A file with ASCII bytes only (character references
included) is no lie.

Streaming and bounded: an incremental UTF-8 decoder is fed every chunk the parser reads; it keeps
at most the 3 bytes of a sequence cut between chunks, and its output (one chunk) is discarded.
"""

from __future__ import annotations

import codecs

SINGLE_BYTE = frozenset({"iso-8859-1", "iso-8859-15", "windows-1252"})


class Utf8LieDetector:
    """Fed the bytes of a file declaring ``declared``; :meth:`lie` at the end of the file."""

    def __init__(self, declared: str) -> None:
        self.declared = declared
        self._watching = declared in SINGLE_BYTE
        self._non_ascii = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def feed(self, data: bytes) -> None:
        if not self._watching:
            return
        if data.isascii() and not self._non_ascii:
            return  # nothing pending in the decoder: ASCII cannot change the verdict
        self._non_ascii = self._non_ascii or not data.isascii()
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            self._watching = False  # genuine single-byte text: settled

    def lie(self) -> bool:
        """True when every non-ASCII byte sequence of the whole file was UTF-8."""
        if not self._watching or not self._non_ascii:
            return False
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False  # a sequence cut by the end of the file
        return True

    def reason(self) -> str:
        return (
            f"declared {self.declared} but the bytes are UTF-8 text (accented letters would be "
            "misread): declare UTF-8 or re-export the file in its declared encoding"
        )
