"""CSV imports: dotted headers into nested JSON, line numbers, delimiters, gzip, chunks."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl
import pytest

from leadscore.intake import EVENTS_SCHEMA, REJECTS_SCHEMA, IntakeError, read_contacts, read_events

ARRIVAL = 1_800_000_000_000  # the import moment, ms


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_all(path: Path, *, format: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    chunks = list(read_events(path, received_at_ms=ARRIVAL, format=format))
    frames = [chunk.frame for chunk in chunks] or [pl.DataFrame(schema=EVENTS_SCHEMA)]
    rejects = [chunk.rejects for chunk in chunks] or [pl.DataFrame(schema=REJECTS_SCHEMA)]
    return pl.concat(frames), pl.concat(rejects)


def test_dotted_headers_become_nested_json_objects(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "type,event,userId,messageId,timestamp,properties.path,properties.count,properties.ok,"
        "properties.zip,context.campaign.source,context.campaign.name,traits.email\n"
        'page,,u-1,m-1,2026-01-31T00:00:00Z,/pricing,3,true,0612,ads,"spring, ""big"" sale",a@b.com\n',
    )
    frame, rejects = read_all(path)
    assert rejects.height == 0
    row = frame.row(0, named=True)
    assert orjson.loads(row["properties"]) == {"path": "/pricing", "count": 3, "ok": True, "zip": "0612"}
    assert orjson.loads(row["context"]) == {"campaign": {"source": "ads", "name": 'spring, "big" sale'}}
    assert orjson.loads(row["traits"]) == {"email": "a@b.com"}
    assert frame.schema == pl.Schema(EVENTS_SCHEMA)


def test_empty_cells_are_absent_keys_and_empty_objects_are_null(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "event,userId,messageId,timestamp,properties.a,properties.b,context.campaign.source\n"
        "Signed Up,u-1,m-1,2026-01-31T00:00:00Z,,x,\n"
        "Signed Up,u-1,m-2,2026-01-31T00:00:00Z,,,\n",
    )
    frame, _ = read_all(path)
    assert frame.get_column("properties").to_list() == ['{"b":"x"}', None]
    assert frame.get_column("context").to_list() == [None, None]
    assert frame.get_column("type").to_list() == ["track", "track"]  # type defaults to track with an event


def test_line_numbers_count_the_header_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "event,userId,timestamp,properties.note\n"
        "A,u-1,2026-01-01T00:00:00Z,x\n"
        "\n"
        'B,u-1,2026-01-01T00:00:00Z,"two\nlines"\n'
        "C,u-1,2026-01-01T00:00:00Z,y\n"
        "D,,2026-01-01T00:00:00Z,z\n",
    )
    frame, rejects = read_all(path)
    assert frame.get_column("line").to_list() == [2, 4, 6]
    assert frame.filter(pl.col("event") == "B").get_column("properties").item() == '{"note":"two\\nlines"}'
    assert rejects.get_column("line").to_list() == [7]
    assert rejects.get_column("raw").item() == "D,,2026-01-01T00:00:00Z,z"


def test_line_numbers_stay_right_across_chunks(tmp_path: Path) -> None:
    rows = "".join(f'E{i},u-{i},2026-01-01T00:00:00Z,"a\nb"\n' for i in range(7))
    path = write(tmp_path, "events.csv", "event,userId,timestamp,properties.note\n" + rows)
    chunks = list(read_events(path, received_at_ms=ARRIVAL, chunk_rows=3))
    assert [chunk.rows_read for chunk in chunks] == [3, 3, 1]
    lines = pl.concat([chunk.frame for chunk in chunks]).get_column("line").to_list()
    assert lines == [2, 4, 6, 8, 10, 12, 14]
    assert chunks[-1].bytes_read == chunks[-1].total_bytes == path.stat().st_size


def test_wrong_field_counts_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "event,userId,timestamp\nA,u-1,2026-01-01T00:00:00Z,extra\nB,u-1\nC,u-1,2026-01-01T00:00:00Z\n",
    )
    frame, rejects = read_all(path)
    assert frame.get_column("event").to_list() == ["C"]
    assert rejects.select("line", "reason").rows() == [
        (2, "expected 3 fields, found 4"),
        (3, "expected 3 fields, found 2"),
    ]


def test_a_stray_quote_falls_back_to_the_csv_module(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        'event,userId,timestamp,properties.size\nA,u-1,2026-01-01T00:00:00Z,12"\nB,u-2,2026-01-01T00:00:00Z,3\n',
    )
    frame, rejects = read_all(path)
    assert rejects.height == 0
    assert frame.select("line", "event", "properties").rows() == [
        (2, "A", '{"size":"12\\""}'),
        (3, "B", '{"size":3}'),
    ]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimiters_are_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    header = delimiter.join(["event", "userId", "timestamp", "properties.price"])
    row = delimiter.join(["Bought", "u-1", "2026-01-01T00:00:00Z", "9.5"])
    frame, rejects = read_all(write(tmp_path, "events.csv", f"{header}\n{row}\n"))
    assert rejects.height == 0
    assert frame.get_column("properties").item() == '{"price":9.5}'


def test_gzip_csv_crlf_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    text = "\ufeffevent,userId,timestamp\r\nA,u-1,2026-01-01T00:00:00Z\r\nB,u-2,1767225600\r\n"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    frame, rejects = read_all(path)
    assert rejects.height == 0
    assert frame.select("line", "event", "user_id", "ts").rows() == [
        (2, "A", "u-1", 1_767_225_600_000),
        (3, "B", "u-2", 1_767_225_600_000),
    ]


def test_unknown_and_clashing_headers_are_errors(tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="unknown column 'colour'"):
        read_all(write(tmp_path, "a.csv", "event,userId,colour\nA,u-1,red\n"))
    with pytest.raises(IntakeError, match="nests under"):
        read_all(write(tmp_path, "b.csv", "event,userId,properties.a,properties.a.b\nA,u-1,1,2\n"))
    with pytest.raises(IntakeError, match="appears twice"):
        read_all(write(tmp_path, "c.csv", "event,userId,user_id\nA,u-1,u-2\n"))
    with pytest.raises(IntakeError, match="no header"):
        read_all(write(tmp_path, "d.csv", ""))


def test_missing_file_and_unknown_format_fail_when_called(tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="no such file"):
        read_events(tmp_path / "nope.csv", received_at_ms=ARRIVAL)
    with pytest.raises(IntakeError, match="cannot tell the format"):
        read_events(write(tmp_path, "events.xlsx", "x"), received_at_ms=ARRIVAL)
    with pytest.raises(IntakeError, match="unknown format 'xml'"):
        read_events(write(tmp_path, "events.csv", "x"), received_at_ms=ARRIVAL, format="xml")


def test_format_argument_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "export.txt", "event,userId\nA,u-1\n")
    frame, _ = read_all(path, format="csv")
    assert frame.get_column("ts").to_list() == [ARRIVAL]  # no timestamp: the import moment


def test_contacts_csv_traits_account_and_account_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "contacts.csv",
        "userId,timestamp,traits.email,traits.title,account.name,account.domain,account.employees\n"
        "u-1,2026-01-01T00:00:00Z,a@acme.com,CEO,Acme,acme.com,120\n"
        "u-2,,b@gmail.com,,Solo,,\n"
        "u-3,,c@x.com,,,,\n"
        ",,nobody@x.com,,,,\n",
    )
    chunks = list(read_contacts(path))
    frame = pl.concat([chunk.frame for chunk in chunks])
    rejects = pl.concat([chunk.rejects for chunk in chunks])
    assert frame.select("line", "user_id", "ts", "account_key").rows() == [
        (2, "u-1", 1_767_225_600_000, "acme.com"),
        (3, "u-2", None, "Solo"),
        (4, "u-3", None, None),
    ]
    first = frame.row(0, named=True)
    assert orjson.loads(first["traits"]) == {"email": "a@acme.com", "title": "CEO"}
    assert orjson.loads(first["account"]) == {"name": "Acme", "domain": "acme.com", "employees": 120}
    assert frame.get_column("account").to_list()[2] is None
    assert rejects.select("line", "reason").rows() == [(5, "missing userId and anonymousId")]


def test_account_id_wins_over_domain_and_name(tmp_path: Path) -> None:
    path = write(tmp_path, "contacts.csv", "userId,account.name,account.domain,account.id\nu-1,Acme,acme.com,42\n")
    frame = pl.concat([chunk.frame for chunk in read_contacts(path)])
    assert frame.get_column("account_key").item() == "42"
