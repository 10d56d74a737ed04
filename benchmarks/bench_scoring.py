"""Benchmark: bulk import with scoring, full rescore vs a hand-written DuckDB query, peak memory.

Usage (prints one JSON document; the figures go into docs/benchmarks.md):

    python benchmarks/bench_scoring.py --contacts 100000 --events 2000000 [--repeat 3] [--no-postgres]

Each measured step runs in its own child process, so its peak resident memory is its own.

- import: `leadscore import events` on a fresh SQLite file (contacts imported first, untimed
  in the events figure), events/s; the same on PostgreSQL.
- ceiling: the raw ADBC insert of the same stored rows into a table with no key and no index.
- rescore: `leadscore rescore` (read the log, match, decay, limits, write the state) against the
  hand-written DuckDB SQL computing the same decayed sums, given the same events read from the
  same store and writing its result to the same table, alternated `--repeat` times; medians and
  their ratio, plus the largest difference between the two results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import machine_facts  # benchmarks/machine_facts.py, beside this script

ROOT = Path(__file__).resolve().parent
MODEL = ROOT / "model.yml"

DUCKDB_SQL = r"""
WITH ev AS (
    SELECT contact_id, message_id, ts / 1000.0 AS ts, type, event,
           json_extract_string(properties, '$.path') AS path,
           coalesce(regexp_matches(json_extract_string(context, '$.userAgent'),
                                   '(?i)(bot|crawler|spider|headless|preview|scanner)'), false)
           OR coalesce(json_extract_string(properties, '$.machine_activity') = 'true', false) AS machine
    FROM events
),
matched AS (
    SELECT contact_id, message_id, ts,
           CASE
               WHEN type = 'track' AND event = 'Email Opened' THEN 'email-open'
               WHEN type = 'track' AND event = 'Email Link Clicked' THEN 'email-click'
               WHEN type = 'page' AND regexp_matches(path, '^/pricing') THEN 'pricing-page'
               WHEN type = 'page' AND regexp_matches(path, '^/product') THEN 'product-page'
               WHEN type = 'page' AND regexp_matches(path, '^/blog') THEN 'blog-page'
               WHEN type = 'page' AND regexp_matches(path, '^/careers') THEN 'careers-page'
               WHEN type = 'track' AND event = 'Form Submitted' THEN 'form'
               WHEN type = 'track' AND event = 'Webinar Attended' THEN 'webinar'
               WHEN type = 'track' AND event = 'Video Playback Completed' THEN 'video'
               WHEN type = 'track' AND event = 'Demo Requested' THEN 'demo-request'
               WHEN type = 'track' AND event = 'Meeting Booked' THEN 'meeting'
               WHEN type = 'track' AND event = 'Live Chat Conversation Started' THEN 'chat'
               WHEN type = 'track' AND event = 'Unsubscribed' THEN 'unsubscribe'
           END AS rule_id
    FROM ev
    WHERE NOT machine
),
rules(rule_id, points, half_life, lim, per) AS (
    VALUES ('email-open', 1.0, 14 * 86400.0, NULL, NULL), ('email-click', 3.0, 30 * 86400.0, NULL, NULL),
           ('pricing-page', 10.0, 30 * 86400.0, 3, 86400.0), ('product-page', 4.0, 30 * 86400.0, 5, 86400.0),
           ('blog-page', 1.0, 30 * 86400.0, NULL, NULL), ('careers-page', -10.0, NULL, 1, NULL),
           ('form', 15.0, 30 * 86400.0, NULL, NULL), ('webinar', 20.0, 45 * 86400.0, NULL, NULL),
           ('video', 5.0, 30 * 86400.0, NULL, NULL), ('demo-request', 40.0, 60 * 86400.0, NULL, NULL),
           ('meeting', 50.0, 60 * 86400.0, NULL, NULL), ('chat', 8.0, 30 * 86400.0, NULL, NULL),
           ('unsubscribe', -25.0, NULL, NULL, NULL)
),
limited AS (
    SELECT contact_id, rule_id, ts FROM (
        SELECT m.contact_id, m.rule_id, m.ts, r.lim,
               row_number() OVER (PARTITION BY m.contact_id, m.rule_id,
                                  CASE WHEN r.per IS NULL THEN 0 ELSE floor(m.ts / r.per) END
                                  ORDER BY m.ts, m.message_id) AS rn
        FROM matched m JOIN rules r USING (rule_id) WHERE r.lim IS NOT NULL
    ) WHERE rn <= lim
),
counted AS (
    SELECT m.contact_id, m.rule_id, m.ts FROM matched m JOIN rules r USING (rule_id) WHERE r.lim IS NULL
    UNION ALL
    SELECT contact_id, rule_id, ts FROM limited
),
latest AS (
    SELECT contact_id, rule_id, ts, max(ts) OVER (PARTITION BY contact_id, rule_id) AS t_ref FROM counted
)
SELECT l.contact_id, l.rule_id,
       sum(r.points * CASE WHEN r.half_life IS NULL THEN 1.0 ELSE pow(2.0, -(l.t_ref - l.ts) / r.half_life) END) AS s,
       max(l.t_ref) AS t_ref
FROM latest l JOIN rules r USING (rule_id)
GROUP BY l.contact_id, l.rule_id
"""


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child(target: Any, queue: Any, args: tuple[Any, ...]) -> None:
    result = target(*args)
    result["peak_rss_mb"] = _peak_rss_mb()
    queue.put(result)


def run_isolated(target: Any, *args: Any) -> dict[str, Any]:
    """Run ``target(*args)`` in a fresh process; return its dict plus its peak RSS."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, queue, args))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return result


LEAN_COLUMNS = ["type", "event", "userId", "anonymousId", "messageId", "timestamp", "properties.path",
                "properties.machine_activity", "properties.position", "properties.team"]


def generate(out: Path, contacts: int, events: int) -> tuple[Path, dict[str, Path]]:
    """Contacts and two shapes of the same events: ``rich`` Segment messages (user agent and
    campaign context on every event, ~217 bytes a row in CSV) and ``lean`` rows as a CRM or
    e-mail platform exports them (ids, type, time, a few properties, ~90 bytes a row)."""
    import polars as pl

    from leadscore.intake.generate import main as generate_main

    contacts_file, events_file, lean_file = out / "contacts.csv", out / "events.csv", out / "events-lean.csv"
    stamp = out / f"generated-{contacts}-{events}"
    if not stamp.exists():
        generate_main(["--contacts", str(contacts), "--events", str(events), "--out", str(out)])
        stamp.touch()
    if not lean_file.exists() or lean_file.stat().st_mtime < events_file.stat().st_mtime:
        pl.read_csv(events_file, infer_schema=False).select(LEAN_COLUMNS).write_csv(lean_file)
    return contacts_file, {"rich": events_file, "lean": lean_file}


def prepare(url: str, contacts_file: Path) -> dict[str, Any]:
    from leadscore.services import importing
    from leadscore.services.models import publish_file
    from leadscore.store.engine import make_engine
    from leadscore.store.migrate import upgrade
    from leadscore.store.uow import UnitOfWork

    upgrade(url)
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        uow.commit()
    engine.dispose()
    started = time.perf_counter()
    report = importing.import_contacts(url, contacts_file)
    seconds = time.perf_counter() - started
    return {"contacts": report.imported, "seconds": round(seconds, 3), "contacts_per_s": round(report.imported / seconds)}


def import_events(url: str, events_file: Path) -> dict[str, Any]:
    from leadscore.services import importing

    started = time.perf_counter()
    report = importing.import_events(url, events_file)
    seconds = time.perf_counter() - started
    return {"events": report.imported, "rejected": report.rejected, "seconds": round(seconds, 3),
            "events_per_s": round(report.imported / seconds)}


def raw_ceiling(url: str, scratch: Path) -> dict[str, Any]:
    import adbc_driver_sqlite.dbapi as adbc

    from leadscore.store.adbc import AdbcWriter
    from leadscore.store.schemas import STORED_EVENT_SCHEMA

    # the rows exactly as leadscore stores them (contexts by reference), read back raw
    source = AdbcWriter.connect(url, read_only=True)
    try:
        rows = source.query(f"SELECT {', '.join(STORED_EVENT_SCHEMA)} FROM events", STORED_EVENT_SCHEMA).to_arrow()
    finally:
        source.close()
    target = scratch / f"ceiling-{uuid.uuid4().hex}.db"
    connection = adbc.connect(str(target), autocommit=True)
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("BEGIN")
    started = time.perf_counter()
    cursor.adbc_ingest("events", rows, mode="create")
    cursor.execute("COMMIT")
    seconds = time.perf_counter() - started
    cursor.close()
    connection.close()
    target.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    return {"rows": rows.num_rows, "seconds": round(seconds, 3), "rows_per_s": round(rows.num_rows / seconds)}


def leadscore_rescore(url: str) -> dict[str, Any]:
    from leadscore.services.rescoring import rescore

    started = time.perf_counter()
    report = rescore(url)
    return {"seconds": time.perf_counter() - started, "events": report.events, "state_rows": report.state_rows}


def duckdb_rescore(url: str) -> dict[str, Any]:
    import polars as pl

    from leadscore.core.model import load_model
    from leadscore.services.rescoring import scored_event_kinds, scoring_columns
    from leadscore.store.bulk import BulkSession

    model = load_model(MODEL)
    types, names = scored_event_kinds(model)
    started = time.perf_counter()
    with BulkSession.open(url) as bulk:
        # the same read as leadscore's rescore: same rows, same columns, no ordering
        events = bulk.read_events(types=types, event_names=names, columns=scoring_columns(model), ordered=False)
        state = _duck(events)
        bulk.replace_state(state.cast({"contact_id": pl.Int64}))
        bulk.commit()
    return {"seconds": time.perf_counter() - started, "events": events.height, "state_rows": state.height}


def _duck(events: Any) -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.register("events", events.to_arrow())
    return connection.sql(DUCKDB_SQL).pl()


def compare_states(url: str) -> dict[str, Any]:
    """Largest difference between leadscore's state and DuckDB's, computed into the same store."""
    import polars as pl

    from leadscore.services.rescoring import rescore
    from leadscore.store.bulk import BulkSession

    rescore(url)
    with BulkSession.open(url) as bulk:
        ours = bulk.load_state()
        events = bulk.read_events()
    theirs = _duck(events).cast({"contact_id": pl.Int64})
    joined = ours.join(theirs, on=["contact_id", "rule_id"], how="full", coalesce=True, suffix="_duckdb")
    missing = joined.filter(pl.col("s").is_null() | pl.col("s_duckdb").is_null()).height
    diff = joined.select((pl.col("s") - pl.col("s_duckdb")).abs().max()).item()
    return {"rows": ours.height, "rows_duckdb": theirs.height, "rows_in_one_only": missing, "max_abs_diff_s": diff}


def machine() -> dict[str, Any]:
    import duckdb
    import polars as pl
    import sqlite3

    return machine_facts.machine(sqlite=sqlite3.sqlite_version, polars=pl.__version__, duckdb=duckdb.__version__)


def postgres_url() -> str | None:
    import psycopg

    base = os.environ.get("LEADSCORE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError:
        return None
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_postgres(url: str) -> None:
    import psycopg

    base, _, options = url.partition("?")
    schema = options.rsplit("%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    contacts_file, event_files = generate(args.out, args.contacts, args.events)
    results: dict[str, Any] = {"machine": machine(), "data": {"contacts": args.contacts, "events": args.events}}

    for shape, events_file in event_files.items():
        database = args.out / f"bench-{shape}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(database) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{database}"
        part: dict[str, Any] = {"csv_bytes_per_row": round(events_file.stat().st_size / args.events)}
        part["contacts_import"] = run_isolated(prepare, url, contacts_file)
        part["events_import"] = run_isolated(import_events, url, events_file)
        part["raw_insert_ceiling"] = run_isolated(raw_ceiling, url, args.out)
        part["import_vs_ceiling"] = round(
            part["events_import"]["events_per_s"] / part["raw_insert_ceiling"]["rows_per_s"], 3
        )
        ours, theirs, peaks = [], [], {"leadscore": 0.0, "duckdb": 0.0}
        for _ in range(args.repeat):
            mine = run_isolated(leadscore_rescore, url)
            duck = run_isolated(duckdb_rescore, url)
            ours.append(mine["seconds"])
            theirs.append(duck["seconds"])
            peaks["leadscore"] = max(peaks["leadscore"], mine["peak_rss_mb"])
            peaks["duckdb"] = max(peaks["duckdb"], duck["peak_rss_mb"])
        part["rescore"] = {
            "leadscore_seconds": [round(x, 3) for x in ours],
            "duckdb_seconds": [round(x, 3) for x in theirs],
            "leadscore_median_s": round(statistics.median(ours), 3),
            "duckdb_median_s": round(statistics.median(theirs), 3),
            "ratio_duckdb_over_leadscore": round(statistics.median(theirs) / statistics.median(ours), 3),
            "peak_rss_mb": peaks,
            "agreement": run_isolated(compare_states, url),
        }
        results[f"sqlite_{shape}"] = part
        print(json.dumps({shape: part}), file=sys.stderr)

    if not args.no_postgres:
        pg = postgres_url()
        if pg is None:
            results["postgresql_events_import"] = "skipped: PostgreSQL unreachable"
        else:
            try:
                results["postgresql_contacts_import"] = run_isolated(prepare, pg, contacts_file)
                results["postgresql_events_import"] = run_isolated(import_events, pg, event_files["rich"])
            finally:
                drop_postgres(pg)
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
