"""Benchmark: Segment batch intake over HTTP (`POST /v1/batch`), events/s, SQLite and PostgreSQL,
plus a concurrency check on PostgreSQL: concurrent senders and several server processes writing
to overlapping contacts must end with exactly the scores of a single-threaded replay.

Usage: .venv/bin/python benchmarks/bench_intake.py [--events 200000] [--senders 4 8 16 32] [--no-postgres]
Prints one JSON document. The server is a real `leadscore serve` process; the senders are
threads with keep-alive HTTP connections posting pre-encoded gzip-free batches of 500 messages.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "benchmarks" / "model.yml"


def build_bodies(contacts: int, events: int, batch: int, seed: int, scratch: Path) -> tuple[pl.DataFrame, list[bytes]]:
    """Contacts, and batches of Segment messages encoded as the Python client sends them."""
    from leadscore.intake.generate import generate_contacts, generate_events, write_frame

    people = generate_contacts(contacts, seed=seed)
    activity = generate_events(people, events, seed=seed, start=datetime(2026, 1, 1, tzinfo=UTC),
                               end=datetime(2026, 11, 30, tzinfo=UTC))
    lines_file = scratch / f"events-{uuid.uuid4().hex}.jsonl"
    write_frame(activity, lines_file, "jsonl")
    lines = lines_file.read_bytes().splitlines()
    lines_file.unlink()
    sent_at = datetime.now(UTC).isoformat().encode()
    bodies = [
        b'{"batch":[' + b",".join(lines[start:start + batch]) + b'],"sentAt":"' + sent_at + b'"}'
        for start in range(0, len(lines), batch)
    ]
    return people, bodies


def prepare(url: str, people: pl.DataFrame, scratch: Path) -> str:
    from leadscore.services import importing
    from leadscore.services.models import publish_file
    from leadscore.store.engine import make_engine
    from leadscore.store.migrate import upgrade
    from leadscore.store.uow import UnitOfWork

    upgrade(url)
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        _, write_key = uow.keys.create_write_key(name="benchmark")
        uow.commit()
    engine.dispose()
    contacts_file = scratch / f"contacts-{uuid.uuid4().hex}.csv"
    people.write_csv(contacts_file)
    importing.import_contacts(url, contacts_file)
    contacts_file.unlink()
    return write_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """A `leadscore serve` process for the duration of a `with` block."""

    def __init__(self, url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "leadscore", "serve", "--port", str(self.port),
                   "--workers", str(workers), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env={**os.environ, "LEADSCORE_DATABASE_URL": url},
                                        stdout=subprocess.DEVNULL)  # stdout is this script's JSON

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def send(base: str, write_key: str, bodies: list[bytes], senders: int) -> dict[str, Any]:
    """Post every body once from `senders` threads; wall time, statuses, request latencies."""
    queue = list(enumerate(bodies))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def worker(part: list[tuple[int, bytes]]) -> None:
        with httpx.Client(base_url=base, auth=(write_key, ""), timeout=60,
                          headers={"Content-Type": "application/json"}) as client:
            for _, body in part:
                started = time.perf_counter()
                status = client.post("/v1/batch", content=body).status_code
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    parts = [queue[index::senders] for index in range(senders)]
    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(worker, parts))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {"seconds": round(seconds, 3), "requests": len(bodies), "statuses": statuses,
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1)}


def verify(url: str) -> dict[str, Any]:
    """Events stored, and the largest difference between the live state and a full replay."""
    from leadscore.services.rescoring import rescore
    from leadscore.store.bulk import BulkSession

    with BulkSession.open(url) as bulk:
        stored = bulk.read_events(columns=["contact_id"]).height
        live = bulk.load_state()
    rescore(url)
    with BulkSession.open(url) as bulk:
        replayed = bulk.load_state()
    joined = live.join(replayed, on=["contact_id", "rule_id"], how="full", coalesce=True, suffix="_replay")
    only_one = joined.filter(pl.col("s").is_null() | pl.col("s_replay").is_null()).height
    diff = joined.select((pl.col("s") - pl.col("s_replay")).abs().max()).item()
    return {"events_stored": stored, "state_rows": live.height, "rows_in_one_only": only_one,
            "max_abs_diff_vs_replay": diff}


def run(url: str, *, contacts: int, events: int, senders: int, workers: int, seed: int, scratch: Path) -> dict[str, Any]:
    people, bodies = build_bodies(contacts, events, 500, seed, scratch)
    write_key = prepare(url, people, scratch)
    with Served(url, workers) as server:
        sent = send(server.base, write_key, bodies, senders)
    result = {"events": events, "contacts": contacts, "senders": senders, "server_workers": workers, **sent,
              "events_per_s": round(events / sent["seconds"]), **verify(url)}
    return result


def postgres_url() -> str | None:
    import psycopg

    for user in ("postgres", "root"):
        try:
            with psycopg.connect(f"postgresql://{user}@127.0.0.1:5432/test", connect_timeout=3):
                return f"postgresql://{user}@127.0.0.1:5432/test"
        except psycopg.Error:
            continue
    return None


def fresh_schema(admin_url: str) -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return schema


def drop_schema(admin_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--senders", type=int, nargs="+", default=[8, 16, 32, 64],
                        help="concurrent HTTP clients, one SQLite run each")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server processes (SQLite runs)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": {"date": datetime.now(UTC).date().isoformat(), "cores": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="leadscore-intake-") as folder:
        scratch = Path(folder)
        # SQLite: throughput against the number of concurrent senders, with one server process
        # and with one per core (their writers take turns on the database, while the other
        # process decodes and validates: Python's GIL makes one process use one core)
        for workers in args.workers:
            for senders in args.senders:
                url = f"sqlite:///{scratch / f'intake-{workers}-{senders}.db'}"
                label = f"sqlite_{workers}_workers_{senders}_senders"
                results[label] = run(url, contacts=args.contacts, events=args.events, senders=senders,
                                     workers=workers, seed=11, scratch=scratch)
                print(json.dumps({label: results[label]}), file=sys.stderr)
        admin = None if args.no_postgres else postgres_url()
        if admin is not None:
            for label, contacts, events, workers in (("postgresql", args.contacts, args.events, 2),
                                                     ("postgresql_concurrency_check", 500, 80_000, 4)):
                schema = fresh_schema(admin)
                try:
                    url = f"{admin}?options=-csearch_path%3D{schema}"
                    results[label] = run(url, contacts=contacts, events=events, senders=8, workers=workers,
                                         seed=13, scratch=scratch)
                finally:
                    drop_schema(admin, schema)
                print(json.dumps({label: results[label]}), file=sys.stderr)
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
