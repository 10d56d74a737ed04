"""CSV fast path (polars alone, vouched for by byte counts) versus the exact path, and JSON objects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.intake import MAX_MESSAGE_BYTES, read_events
from leadscore.intake.csv_exact import parse_exactly
from leadscore.intake.csv_fast import parse_quickly
from leadscore.intake.jsonbuild import JSON_SCALAR, KeyTree, object_column, with_objects

ARRIVAL = 1_800_000_000_000
HEADER = ["event", "userId", "timestamp", "properties.note"]
SCHEMA: dict[str, pl.DataType] = {name: pl.String() for name in HEADER}


def read_all(path: Path, chunk_rows: int = 250_000) -> tuple[list[int], pl.DataFrame, pl.DataFrame]:
    chunks = list(read_events(path, received_at_ms=ARRIVAL, chunk_rows=chunk_rows))
    return [c.rows_read for c in chunks], pl.concat([c.frame for c in chunks]), pl.concat([c.rejects for c in chunks])


def test_fast_and_exact_paths_parse_a_clean_piece_alike() -> None:
    piece = b"".join(
        f'E{i},u-{i},2026-01-01T00:00:00Z,"note, {i}"\r\n'.encode() if i % 3 else f"E{i},u-{i},,n{i}\n".encode()
        for i in range(50)
    )
    fast = parse_quickly(piece, SCHEMA, ",", 7)
    exact = parse_exactly(piece, SCHEMA, ",", 7)
    assert fast is not None and fast.clean_text
    assert fast.next_line == exact.next_line == 57
    columns = ["_row", "line", "_fields", *HEADER]
    assert fast.wide.select(columns).equals(exact.wide.select(columns))
    # the fast size leaves out the quotes around quoted fields: never more than the true size
    assert (fast.wide.get_column("size") <= exact.wide.get_column("size")).all()
    assert fast.raw_rows([1, 3]) == exact.raw_rows([1, 3])


@pytest.mark.parametrize(
    "piece",
    [
        b'A,u-1,t,"two\nlines"\nB,u-2,t,x\n',  # a quoted newline
        b"A,u-1,t,x\n\nB,u-2,t,x\n",  # a blank line
        b"A,u-1,t,x\nB,u-2\n",  # too few fields
        b"A,u-1,t,x,y\n",  # too many fields
        b"A,u-1,t,\xff\n",  # invalid UTF-8
        b'A,u-1,t,12"\nB,u-2,t,3\n',  # a stray quote
        b"A,u-1,t,x",  # no final newline
    ],
)
def test_the_fast_path_hands_irregular_pieces_to_the_exact_path(piece: bytes) -> None:
    assert parse_quickly(piece, SCHEMA, ",", 2) is None


@pytest.mark.parametrize(
    ("piece", "clean"),
    [
        (b"A,u-1,t,plain\r\n", True),
        (b'A,u-1,t,"say ""hi"""\n', False),
        (b"A,u-1,t,back\\slash\n", False),
        (b'A,u-1,t,"tab\there"\n', False),
    ],
)
def test_the_fast_path_tells_whether_cells_need_json_escaping(piece: bytes, clean: bool) -> None:
    parsed = parse_quickly(piece, SCHEMA, ",", 2)
    assert parsed is not None
    assert parsed.clean_text is clean


def test_irregular_rows_deep_in_a_large_file_keep_their_physical_lines(tmp_path: Path) -> None:
    rows = [f"E{i},u-{i},2026-01-01T00:00:00Z,n{i}\n" for i in range(60_000)]
    rows[40_000] = 'Q,u-q,2026-01-01T00:00:00Z,"one\ntwo"\n'  # file line 40_002, two lines long
    rows[45_000] = "\n"  # a blank line: not a record
    rows[50_000] = "S,u-s\n"  # too few fields
    path = tmp_path / "events.csv"
    path.write_text(",".join(HEADER) + "\n" + "".join(rows), encoding="utf-8")
    assert path.stat().st_size > 2 * (1 << 20)  # several pieces of at least 1 MiB
    sizes, frame, rejects = read_all(path, chunk_rows=7_000)
    assert sizes == [7_000] * 8 + [3_999]
    lines = dict(zip(frame.get_column("event").to_list(), frame.get_column("line").to_list(), strict=True))
    assert lines["E1"] == 3
    assert lines["Q"] == 40_002
    assert lines["E40001"] == 40_004  # after the quoted newline
    assert lines["E45001"] == 45_004  # after the blank line
    assert lines["E59999"] == 60_002
    assert rejects.select("line", "reason", "raw").rows() == [(50_003, "expected 4 fields, found 2", "S,u-s")]


def test_the_32_kb_limit_counts_the_bytes_of_the_row(tmp_path: Path) -> None:
    prefix = "A,u-1,2026-01-01T00:00:00Z,"
    fits = prefix + '"' + "x" * (MAX_MESSAGE_BYTES - len(prefix) - 2) + '"'
    too_big = prefix + '"' + "y" * (MAX_MESSAGE_BYTES - len(prefix) - 1) + '"'  # one byte over, quotes included
    assert len(fits) == MAX_MESSAGE_BYTES
    path = tmp_path / "events.csv"
    path.write_text(",".join(HEADER) + "\n" + fits + "\n" + too_big + "\n", encoding="utf-8")
    _, frame, rejects = read_all(path)
    assert frame.get_column("line").to_list() == [2]
    assert rejects.select("line", "reason").rows() == [(3, "message larger than 32 KB")]


def test_a_stray_quote_and_a_lone_carriage_return_keep_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"event,userId,timestamp,properties.note\n"
        b'A,u-1,2026-01-01T00:00:00Z,12"\n'
        b'B,u-2,2026-01-01T00:00:00Z,"x\ry"\n'
        b"C,u-3,2026-01-01T00:00:00Z,z\n"
    )
    _, frame, _ = read_all(path)
    assert frame.select("event", "line").rows() == [("A", 2), ("B", 3), ("C", 4)]


def test_stopping_early_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    rows = "".join(f"E{i},u-{i},2026-01-01T00:00:00Z,n{i}\n" for i in range(100_000))
    path.write_text(",".join(HEADER) + "\n" + rows, encoding="utf-8")
    chunks = read_events(path, received_at_ms=ARRIVAL, chunk_rows=1_000)
    first = next(chunks)
    chunks.close()
    assert first.frame.get_column("line").to_list()[:2] == [2, 3]
    path.unlink()  # nothing holds it any more


TREE: KeyTree = {"a": "c0", "b": {"c": "c1", "d": {"e": "c2"}}, "f": "c3"}
CELLS = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "0612", "12", "-2.5", "1e5", "true", "false", "null", "é\"q", "a\\b", "x\ny"]),
    st.text(max_size=6),
)


def _expected(row: dict[str, str | None], tree: KeyTree) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, node in tree.items():
        if isinstance(node, str):
            cell = row[node]
            if cell:
                found[key] = json.loads(cell) if re.match(JSON_SCALAR, cell) else cell
        elif inner := _expected(row, node):
            found[key] = inner
    return found


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({f"c{i}": CELLS for i in range(4)}), min_size=1, max_size=8), st.booleans())
def test_objects_hold_exactly_the_present_cells(rows: list[dict[str, str | None]], rechunk: bool) -> None:
    frame = pl.DataFrame(rows, schema={f"c{i}": pl.String() for i in range(4)})
    clean = not any(cell and re.search(r'["\\\x00-\x1f\x7f]', cell) for row in rows for cell in row.values())
    built = with_objects(frame.rechunk() if rechunk else frame, {"p": TREE}, clean_text=clean)
    for row, text in zip(rows, built.get_column(object_column("p")).to_list(), strict=True):
        expected = _expected(row, TREE)
        assert (json.loads(text) if text is not None else None) == (expected or None)
