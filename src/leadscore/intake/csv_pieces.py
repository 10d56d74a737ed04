"""A CSV stream after its header, read as pieces of whole rows and parsed piece by piece.

A block of about the wanted size is read up to the end of a line and cut after its last row
end (a newline preceded by an even number of double quotes: RFC 4180 quoting); what follows
the cut (part of a row with a quoted newline) starts the next piece. Each piece is parsed by
the fast path (:mod:`leadscore.intake.csv_fast`) or, when that cannot vouch for it, by the
exact path (:mod:`leadscore.intake.csv_exact`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import polars as pl

from leadscore.intake.csv_exact import ParsedPiece, parse_exactly, row_ends
from leadscore.intake.csv_fast import ByteCounts, byte_counts, parse_quickly

_MIN_BLOCK = 1 << 20
_FIRST_GUESS_ROW_BYTES = 200


class PieceReader:
    """Parsed pieces of a CSV stream, each of about ``rows_per_piece`` rows.

    ``first_line`` is the physical line number of the first row after the header; ``position``
    tells how far the underlying file has been read (for progress).
    """

    def __init__(
        self,
        stream: BinaryIO,
        position: Callable[[], int],
        *,
        schema: dict[str, pl.DataType],
        delimiter: str,
        first_line: int,
        rows_per_piece: int,
    ) -> None:
        self._position = position
        self._schema = schema
        self._delimiter = delimiter
        self._line = first_line
        self._rows_per_piece = rows_per_piece
        self._bytes_seen = 0
        self._rows_seen = 0
        self._pieces = _pieces(stream, self._wanted_bytes)

    def next(self) -> tuple[ParsedPiece, int] | None:
        """The next parsed piece and the file position reached, or None at the end."""
        found = next(self._pieces, None)
        if found is None:
            return None
        piece, counts = found
        parsed = parse_quickly(piece, self._schema, self._delimiter, self._line, counts) or parse_exactly(
            piece, self._schema, self._delimiter, self._line
        )
        self._line = parsed.next_line
        self._bytes_seen += len(piece)
        self._rows_seen += parsed.wide.height
        return parsed, self._position()

    def _wanted_bytes(self) -> float:
        average = self._bytes_seen / self._rows_seen if self._rows_seen else _FIRST_GUESS_ROW_BYTES
        return self._rows_per_piece * average


def _pieces(stream: BinaryIO, wanted_bytes: Callable[[], float]) -> Iterator[tuple[bytes, ByteCounts | None]]:
    """The stream in pieces of whole rows of about ``wanted_bytes()`` bytes each, with their byte
    counts when already known. The last piece gets a final newline if it lacks one and is not
    inside quotes."""
    seekable = isinstance(stream, io.BufferedReader)
    carry = b""
    while True:
        size = max(_MIN_BLOCK, int(wanted_bytes()))
        block = _read_to_line_end(stream, size) if seekable and not carry else stream.read(size)
        if not block:
            if carry:
                if not carry.endswith(b"\n") and not _count(carry, b'"') % 2:
                    carry += b"\n"
                yield carry, None
            return
        tail = b"" if block.endswith(b"\n") else stream.readline()
        data = b"".join((carry, block, tail)) if carry or tail else block
        if data.endswith(b"\n"):
            counts = byte_counts(data)
            if not counts.quotes % 2:
                carry = b""
                yield data, counts
                continue
        cut = _last_row_end(data) + 1
        if cut == len(data):
            carry = b""
            yield data, None
        elif cut:
            carry = data[cut:]
            yield data[:cut], None
        else:
            carry = data


def _read_to_line_end(stream: BinaryIO, size: int) -> bytes:
    """About ``size`` bytes from a seekable stream, up to the end of a line, in one read.

    (Reading a block and then the rest of its last line would need a copy to join them.)
    """
    start = stream.tell()
    stream.seek(start + size)
    end = start + size
    while probe := stream.read(1 << 16):
        newline = probe.find(b"\n")
        if newline >= 0:
            end += newline + 1
            break
        end += len(probe)
    stream.seek(start)
    return stream.read(end - start)


def _count(data: bytes | memoryview, byte: bytes) -> int:
    """How many times ``byte`` occurs in ``data`` (vectorised; faster than ``bytes.count``)."""
    codes = pl.Series("b", np.frombuffer(data, dtype=np.uint8))
    return int((codes == ord(byte)).sum())


def _last_row_end(data: bytes) -> int:
    """Offset of the last newline in ``data`` that ends a row, or -1."""
    last = data.rfind(b"\n")
    if last < 0 or not _count(memoryview(data)[:last], b'"') % 2:
        return last
    ends = row_ends(data)
    return int(ends[-1]) if len(ends) else -1
