"""Benchmark: the worker's due-time index. With 1,000,000 contacts in ``contact_stages`` of which
100 are due, a worker tick must read those 100 rows, not the table.

Usage: .venv/bin/python benchmarks/bench_worker.py [--contacts 1000000] [--due 100] [--ticks 5]
       [--no-postgres] [--out docs/benchmark-worker-results.json]

Prints one JSON document (also written to ``--out``) and a Markdown table on stderr.

- data: contacts, their ``contact_stages`` rows (stages and future timers spread like a live
  base) and one score accumulator each, generated set-based in the database (a recursive CTE on
  SQLite, ``generate_series`` on PostgreSQL), then ANALYZEd;
- claim: the worker's claim query (``due_at <= now ORDER BY due_at LIMIT n``) with its plan and
  the rows it returned, against the same query forced to scan the whole table;
- tick: ``leadscore.services.lifecycle.check_due`` + commit, median of ``--ticks`` ticks, each
  with a fresh set of due MQLs whose recycle grace is over (they move to nurturing). Rows read:
  PostgreSQL's own per-table counters (``pg_stat_user_tables``) before and after the tick;
  SQLite: the query plan of every statement the tick ran (any full scan of a stored table is
  listed) and the virtual-machine instructions it executed, against the full scan's.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import machine_facts  # benchmarks/machine_facts.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MODEL = ROOT / "examples" / "b2b-saas.yml"
PG_BASE = os.environ.get("LEADSCORE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NOW_MS = 1_798_761_600_000  # 2027-01-01T00:00:00Z: the benchmark's clock (simulated)
DAY_MS = 86_400_000
CLAIM = "SELECT contact_id FROM contact_stages WHERE due_at <= {now} ORDER BY due_at LIMIT {limit}"
BIG_TABLES = ("contacts", "contact_stages", "score_state", "stage_history", "events", "identities", "accounts", "alert_state",
              "outbox", "bant", "assignments")


# --------------------------------------------------------------------------------- data


def generate(url: str, dialect: str, contacts: int) -> float:
    """Contacts, stages and accumulators, set-based; returns the seconds it took."""
    from leadscore.store.adbc import AdbcWriter

    series = ("(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n) AS g"
              if dialect == "sqlite" else "generate_series(1, {n}) AS g(i)").format(n=contacts)
    text = "CAST(g.i AS TEXT)"
    started = time.perf_counter()
    writer = AdbcWriter.connect(url)
    try:
        writer.execute(
            "INSERT INTO contacts (id, user_id, email, traits, excluded, fit_raw, first_seen_at, last_event_at, created_at, updated_at)"
            f" SELECT g.i, 'u-' || {text}, 'c' || {text} || '@example.com', '{{}}', false, (g.i % 7) * 10.0,"
            f" {NOW_MS - 90 * DAY_MS}, {(NOW_MS - 5 * DAY_MS) / 1000}, {NOW_MS - 90 * DAY_MS}, {NOW_MS - 90 * DAY_MS} FROM {series}"
        )
        # 60 % leads, 20 % subscribers, 10 % MQLs (recycle check due in 1-30 days), 5 % nurturing
        # (maximum stay in 1-30 days), 5 % SQLs; entered ten days ago
        writer.execute(
            "INSERT INTO contact_stages (contact_id, stage, entered_at, previous_stage, due_at, due_kind, escalated_at, updated_at)"
            " SELECT g.i, CASE WHEN g.i % 20 < 12 THEN 'lead' WHEN g.i % 20 < 16 THEN 'subscriber' WHEN g.i % 20 < 18 THEN 'mql'"
            " WHEN g.i % 20 = 18 THEN 'nurturing' ELSE 'sql' END,"
            f" {NOW_MS - 10 * DAY_MS}, NULL,"
            f" CASE WHEN g.i % 20 IN (16, 17, 18) THEN {NOW_MS} + (1 + g.i % 30) * CAST({DAY_MS} AS BIGINT) END,"
            " CASE WHEN g.i % 20 IN (16, 17) THEN 'recycle_below' WHEN g.i % 20 = 18 THEN 'nurturing_max' END,"
            f" CASE WHEN g.i % 20 IN (16, 17) THEN {NOW_MS - 8 * DAY_MS} END, {NOW_MS - 10 * DAY_MS} FROM {series}"
        )
        writer.execute(
            f"INSERT INTO score_state (contact_id, rule_id, s, t_ref) SELECT g.i, 'email-click', 3.0, {(NOW_MS - 5 * DAY_MS) / 1000}"
            f" FROM {series}"
        )
        writer.commit()
        if dialect == "sqlite":
            writer.execute("ANALYZE")
            writer.commit()
    finally:
        writer.close()
    if dialect == "postgresql":
        import psycopg

        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def make_due(url: str, ids: list[int], now_ms: int) -> None:
    """These contacts become MQLs below the recycle level since 15 days (grace: 14 days), due now."""
    from leadscore.store.adbc import AdbcWriter

    listed = ", ".join(str(i) for i in ids)
    writer = AdbcWriter.connect(url)
    try:
        writer.execute(
            f"UPDATE contact_stages SET stage = 'mql', entered_at = {now_ms - 20 * DAY_MS}, below_since = {now_ms - 15 * DAY_MS},"
            f" due_at = {now_ms - 1000}, due_kind = 'recycle', escalated_at = {now_ms - 19 * DAY_MS} WHERE contact_id IN ({listed})"
        )
        writer.execute(f"UPDATE contacts SET fit_raw = 0 WHERE id IN ({listed})")
        writer.commit()
    finally:
        writer.close()


def due_ids(tick: int, contacts: int, due: int) -> list[int]:
    """``due`` distinct contacts spread over the whole table, different for every tick."""
    stride = 9_973  # prime, so j * stride (mod contacts) are distinct for j < due
    return sorted(1 + (tick * 997 + j * stride) % contacts for j in range(due))


# ------------------------------------------------------------------------------- claim query


def claim_sqlite(path: str, now_ms: int, limit: int, repeat: int = 5) -> dict[str, Any]:
    connection = sqlite3.connect(path)
    try:
        indexed = CLAIM.format(now=now_ms, limit=limit)
        scanned = indexed.replace("FROM contact_stages", "FROM contact_stages NOT INDEXED")
        result = {}
        for name, sql in (("index", indexed), ("full_scan", scanned)):
            plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql)]
            steps = _Steps(connection)
            rows = connection.execute(sql).fetchall()
            instructions = steps.stop()
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                connection.execute(sql).fetchall()
                times.append(time.perf_counter() - started)
            result[name] = {"plan": plan, "rows_returned": len(rows), "vm_instructions": instructions,
                            "seconds_median": statistics.median(times)}
        return result
    finally:
        connection.close()


def claim_postgresql(url: str, now_ms: int, limit: int, repeat: int = 5) -> dict[str, Any]:
    import psycopg

    sql = CLAIM.format(now=now_ms, limit=limit)
    result = {}
    with psycopg.connect(_libpq(url), autocommit=True, prepare_threshold=None) as connection:  # no plan cached across settings
        for name, settings in (("index", ()), ("full_scan", ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"))):
            for setting in settings:
                connection.execute(f"SET {setting} = off")
            plan = [row[0] for row in connection.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql)]
            rows = connection.execute(sql).fetchall()
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                connection.execute(sql).fetchall()
                times.append(time.perf_counter() - started)
            for setting in settings:
                connection.execute(f"RESET {setting}")
            result[name] = {"plan": plan, "rows_returned": len(rows), "seconds_median": statistics.median(times)}
    return result


class _Steps:
    """SQLite virtual-machine instructions run on a connection (counted by hundreds)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection, self.count = connection, 0
        connection.set_progress_handler(self._tick, 100)

    def _tick(self) -> int:
        self.count += 100
        return 0

    def stop(self) -> int:
        self.connection.set_progress_handler(None, 0)
        return self.count


# ------------------------------------------------------------------------------------- ticks


def ticks(url: str, dialect: str, contacts: int, due: int, count: int) -> dict[str, Any]:
    try:
        from leadscore.services.lifecycle import check_due
    except ImportError as error:
        return {"skipped": f"check_due is not available yet: {error}"}
    from leadscore.services.models import load_published_model
    from leadscore.store.adbc import stdlib_sqlite
    from leadscore.store.bulk import BulkSession

    model = load_published_model(url)
    runs = []
    for tick in range(count):  # tick 0's due set is the one the claim was measured with
        now_ms = NOW_MS + tick * 60_000
        make_due(url, due_ids(tick, contacts, due), now_ms)
        history_before = _count(url, f"SELECT COUNT(*) FROM stage_history WHERE at = {now_ms}")
        before = _pg_counters(url) if dialect == "postgresql" else None  # after our own count: only the tick in between
        run: dict[str, Any] = {}
        with stdlib_sqlite(), BulkSession.open(url) as bulk:
            statements: list[str] = []
            steps = None
            if dialect == "sqlite":
                database = bulk.writer._db  # type: ignore[attr-defined]  # instrumentation of the stdlib connection
                database.set_trace_callback(statements.append)
                steps = _Steps(database)
            started = time.perf_counter()
            handled = check_due(bulk, model, now=now_ms / 1000)
            bulk.commit()
            run["seconds"] = time.perf_counter() - started
            run["handled"] = handled
            if dialect == "sqlite":
                assert steps is not None
                run["vm_instructions"] = steps.stop()
                database.set_trace_callback(None)
                run["statements"] = len(statements)
                run["full_scans_of_stored_tables"] = _scans(database, statements)
            else:
                bulk.writer.scalar("SELECT 1 FROM (SELECT pg_stat_force_next_flush()) AS f")
                bulk.commit()
        if dialect == "postgresql":
            run["rows_read"] = _pg_diff(before or {}, _pg_counters(url, wait_for_change=before))
        run["stage_changes_written"] = _count(url, f"SELECT COUNT(*) FROM stage_history WHERE at = {now_ms}") - history_before
        run["still_due_after"] = _count(url, f"SELECT COUNT(*) FROM contact_stages WHERE due_at <= {now_ms}")
        runs.append(run)
    return {"ticks": runs, "seconds_median": statistics.median(r["seconds"] for r in runs),
            "handled_median": statistics.median(r["handled"] for r in runs)}


def _scans(database: sqlite3.Connection, statements: list[str]) -> list[str]:
    """Full scans of stored tables in the plans of the statements the tick ran."""
    found = []
    for sql in dict.fromkeys(statements):
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH")):
            continue
        try:
            plan = [row[3] for row in database.execute("EXPLAIN QUERY PLAN " + sql)]
        except sqlite3.Error:  # a temporary table dropped since
            continue
        for line in plan:
            words = line.split()
            if len(words) >= 2 and words[0] == "SCAN" and words[1] in BIG_TABLES:
                found.append(f"{line}  <-  {sql[:160]}")
    return found


def _pg_counters(url: str, wait_for_change: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Per stored table: sequential scans, rows they read, index scans, rows fetched by index."""
    import psycopg

    sql = ("SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), COALESCE(idx_tup_fetch, 0),"
           " n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE schemaname = current_schema()")
    deadline = time.monotonic() + 5
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        while True:
            counters = {row[0]: {"seq_scan": row[1], "seq_tup_read": row[2], "idx_scan": row[3], "idx_tup_fetch": row[4],
                                 "rows_written": row[5]} for row in connection.execute(sql)}
            if wait_for_change is None or counters != wait_for_change or time.monotonic() > deadline:
                return counters
            time.sleep(0.1)
            connection.execute("SELECT pg_stat_clear_snapshot()")


def _pg_diff(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    changed = {}
    for table, now in after.items():
        delta = {key: value - before.get(table, {}).get(key, 0) for key, value in now.items()}
        if any(delta.values()):
            changed[table] = delta
    return changed


def _count(url: str, sql: str) -> int:
    from leadscore.store.adbc import AdbcWriter

    writer = AdbcWriter.connect(url, read_only=True)
    try:
        return int(writer.scalar(sql))
    finally:
        writer.close()


# ------------------------------------------------------------------------------ databases


def _libpq(url: str) -> str:
    from leadscore.store.adbc import libpq_url

    return libpq_url(url)


def run_backend(dialect: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    from publishing import publish_model

    from leadscore.store.migrate import upgrade

    upgrade(url)
    publish_model(url, MODEL)
    print(f"{dialect}: generating {args.contacts:,} contacts", file=sys.stderr)
    seconds = generate(url, dialect, args.contacts)
    now_ms = NOW_MS
    make_due(url, due_ids(0, args.contacts, args.due), now_ms)
    print(f"{dialect}: data in {seconds:.1f} s; measuring", file=sys.stderr)
    if dialect == "sqlite":
        claim = claim_sqlite(url.removeprefix("sqlite:///"), now_ms, 10_000)
    else:
        claim = claim_postgresql(url, now_ms, 10_000)
    return {"generate_seconds": round(seconds, 2), "claim": claim, "tick": ticks(url, dialect, args.contacts, args.due, args.ticks)}


def machine() -> dict[str, Any]:
    import polars as pl

    return machine_facts.machine(sqlite=sqlite3.sqlite_version, polars=pl.__version__)


def markdown(result: dict[str, Any]) -> str:
    lines = ["| database | claim, index: rows returned / time | claim, full scan: rows / time | tick (check_due + commit), median |"
             " rows read by the tick |", "|---|---|---|---|---|"]
    for dialect in ("sqlite", "postgresql"):
        if dialect not in result:
            continue
        data = result[dialect]
        index, scan = data["claim"]["index"], data["claim"]["full_scan"]
        tick = data["tick"]
        if "skipped" in tick:
            tick_text, read_text = tick["skipped"], "—"
        else:
            tick_text = f"{tick['seconds_median'] * 1000:.1f} ms ({tick['handled_median']:.0f} contacts)"
            if dialect == "postgresql":
                reads = [run["rows_read"] for run in tick["ticks"]]
                seq = max(sum(t.get("seq_tup_read", 0) for t in r.values()) for r in reads)
                fetched = statistics.median(sum(t.get("idx_tup_fetch", 0) for t in r.values()) for r in reads)
                read_text = f"{fetched:.0f} rows by index (median), at most {seq} by sequential scan"
            else:
                scans = max(len(run["full_scans_of_stored_tables"]) for run in tick["ticks"])
                steps = statistics.median(run["vm_instructions"] for run in tick["ticks"])
                read_text = f"{scans} full scans of stored tables; {steps:,.0f} VM instructions (full-scan claim: {scan.get('vm_instructions', 0):,})"
        lines.append(f"| {dialect} | {index['rows_returned']} / {index['seconds_median'] * 1000:.2f} ms |"
                     f" {scan['rows_returned']} / {scan['seconds_median'] * 1000:.1f} ms | {tick_text} | {read_text} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark-worker-results.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "contacts": args.contacts, "due_per_tick": args.due}
    with tempfile.TemporaryDirectory() as scratch:
        result["sqlite"] = run_backend("sqlite", f"sqlite:///{scratch}/bench.db", args)
    if not args.no_postgres:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_BASE, autocommit=True) as connection:
            result["postgresql_version"] = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            connection.execute(f"CREATE SCHEMA {schema}")
        try:
            result["postgresql"] = run_backend("postgresql", f"{PG_BASE}?options=-csearch_path%3D{schema}", args)
        finally:
            with psycopg.connect(PG_BASE, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")
    document = json.dumps(result, indent=2)
    args.out.write_text(document + "\n", encoding="utf-8")
    print(document)
    print(markdown(result), file=sys.stderr)


if __name__ == "__main__":
    main()
