"""Benchmark: the leads list at 1,000,000 contacts — ``services.scoring.leads_page`` and the
dashboard's ``GET /leads`` — against the targets "leads page under 300 ms server-side" (issue 6)
and "leads list sorted by current score under 100 ms" (DESIGN).

Usage: .venv/bin/python benchmarks/bench_leads.py [--contacts 1000000] [--repeat 3] [--web-repeat 1]
       [--cases ...] [--web-cases unfiltered owner] [--db /tmp/leadscore-bench-leads/bench.db] [--fresh]
       [--out docs/benchmark-leads-results.json]

Prints one JSON document (also written to ``--out``) and a Markdown table on stderr.

- data: SQLite only (the database file stays in /tmp, reused by later runs unless ``--fresh``):
  contacts, their stages and one accumulator each, generated set-based by
  ``bench_worker.generate`` (examples/b2b-saas.yml published), plus ten owners holding the
  contacts in turn, fit from 0 to 100, 1 % excluded and more accumulators (pricing pages for one
  contact in three, demo requests for one in twenty, with varied strengths and ages) so scores,
  grades and temperatures spread; every contact's last event is before the clock, so the stored
  state is valid (the common case).
- leads_page ("now"): the first page (50 rows), unfiltered and with each filter of the
  dashboard (grade A, temperature hot, stage mql, one owner), then the second page after the
  first's cursor; median of ``--repeat`` calls after one warm-up call, in one child process per
  case whose peak resident memory (VmHWM) is reported.
- bound_page ("proposed"): the same pages by the proposed design (:func:`bound_page`: a stored,
  indexed upper bound of each contact's score, here in a side table of the /tmp database), and
  their comparison with leads_page's pages (exact equality, else order, labels and the largest
  numeric difference).
- dashboard: ``GET /leads`` through FastAPI's TestClient (in process: the time is the server's
  plus a negligible transport) with a signed-in session, then the page its "next" link names;
  the current implementation only (the dashboard calls ``scoring.leads_page``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import bench_worker  # benchmarks/bench_worker.py: the set-based 1,000,000-contact generator
import machine_facts
from bench_scoring import run_isolated

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MODEL = ROOT / "examples" / "b2b-saas.yml"
PASSWORD = "correct horse battery"
PAGE = 50
OWNERS = 10
FILTERS: dict[str, dict[str, tuple[str, ...]]] = {
    "unfiltered": {},
    "grade_A": {"grades": ("A",)},
    "temperature_hot": {"temperatures": ("hot",)},
    "stage_mql": {"stages": ("mql",)},
    "owner": {"owners": ("owner-3",)},
}
QUERY = {"unfiltered": "", "grade_A": "grade=A", "temperature_hot": "temperature=hot", "stage_mql": "stage=mql",
         "owner": "owner=owner-3"}


# --------------------------------------------------------------------------------- data


def build(path: Path, contacts: int, fresh: bool) -> dict[str, Any]:
    """The database at ``path`` (reused when its stamp says it holds ``contacts``)."""
    from publishing import publish_model

    from leadscore.store.adbc import AdbcWriter
    from leadscore.store.migrate import upgrade

    stamp = path.with_suffix(f".{contacts}.ready")
    if stamp.exists() and path.exists() and not fresh:
        return json.loads(stamp.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    for old in path.parent.glob(path.stem + ".*.ready"):
        old.unlink()
    url = f"sqlite:///{path}"
    now_ms = int(time.time() * 1000) - 60_000  # the clock: every generated event is before "now"
    bench_worker.NOW_MS = now_ms
    upgrade(url)
    publish_model(url, MODEL)
    started = time.perf_counter()
    bench_worker.generate(url, "sqlite", contacts)
    day = bench_worker.DAY_MS
    writer = AdbcWriter.connect(url)
    try:
        writer.execute(f"INSERT INTO teams (id, key, name, created_at) VALUES (1, 'sales', 'Sales', {now_ms})")
        for owner in range(1, OWNERS + 1):
            writer.execute(f"INSERT INTO owners (id, key, name, team_id, created_at) VALUES ({owner}, 'owner-{owner}',"
                           f" 'Owner {owner}', 1, {now_ms})")
        writer.execute(f"UPDATE contact_stages SET owner_id = 1 + contact_id % {OWNERS}, team_id = 1")
        # strengths and ages spread so engagement (and thus score, level, temperature) varies
        writer.execute(f"UPDATE score_state SET s = 1.0 + (contact_id % 13), t_ref = ({now_ms} - (contact_id % 60) * {day}) / 1000.0")
        writer.execute("INSERT INTO score_state (contact_id, rule_id, s, t_ref) SELECT id, 'pricing-page', 10.0 * (1 + id % 4),"
                       f" ({now_ms} - (id % 45) * {day}) / 1000.0 FROM contacts WHERE id % 3 = 0")
        writer.execute("INSERT INTO score_state (contact_id, rule_id, s, t_ref) SELECT id, 'demo-request', 40.0,"
                       f" ({now_ms} - (id % 30) * {day}) / 1000.0 FROM contacts WHERE id % 20 = 7")
        writer.execute(f"UPDATE contacts SET last_event_at = ({now_ms} - (id % 30) * {day}) / 1000.0, fit_raw = (id % 11) * 10.0,"
                       " excluded = (id % 97 = 5)")
        writer.commit()
        writer.execute("ANALYZE")
        writer.commit()
        state_rows = int(writer.scalar("SELECT COUNT(*) FROM score_state"))
    finally:
        writer.close()
    facts = {"contacts": contacts, "score_state_rows": state_rows, "owners": OWNERS,
             "generate_seconds": round(time.perf_counter() - started, 1), "clock_ms": now_ms,
             "file_mb": round(path.stat().st_size / 2**20, 1)}
    stamp.write_text(json.dumps(facts))
    return facts


# ------------------------------------------------------------------------- the proposed design


BOUND_TABLE = "bench_score_bound"
EPSILON = 1e-9  # the stored bound is computed in SQL, the score in polars: a margin for rounding


def build_bound(url: str) -> dict[str, Any]:
    """The proposal's stored upper bound, here in a side table of the benchmark database (the
    real design: a column of ``contacts`` with an index, written with the score state).

    Bound of a contact = ``w_fit·fit + w_eng·normalise(Σ positive accumulators, each at most its
    rule's cap)``: decay only shrinks a positive accumulator after ``t_ref``, a negative one only
    counts less than 0, and a group cap only scales a group towards zero, so the score at any
    moment after the last write is at most the bound (a contact whose state is newer than the
    moment asked falls back to ranking everyone)."""
    from leadscore.core.vectorized import rule_parameters
    from leadscore.services.models import load_published_model
    from leadscore.store.adbc import AdbcWriter

    model = load_published_model(url)
    caps = ", ".join(f"('{row['rule_id']}', {min(row['_cap'], 1e300)!r})" for row in rule_parameters(model).iter_rows(named=True))
    fit, eng = model.fit_max, model.engagement_max

    def normal(value: str, maximum: float) -> str:
        return f"(CASE WHEN {value} IS NULL OR {value} < 0 THEN 0.0 WHEN {value} > {maximum!r} THEN {maximum!r} ELSE {value} END) * 100.0 / {maximum!r}"

    started = time.perf_counter()
    writer = AdbcWriter.connect(url)
    try:
        writer.execute(f"DROP TABLE IF EXISTS {BOUND_TABLE}")
        writer.execute(
            f"CREATE TABLE {BOUND_TABLE} AS WITH r(rule_id, cap) AS (VALUES {caps}),"
            " e AS (SELECT st.contact_id, SUM(CASE WHEN st.s > 0 THEN CASE WHEN st.s < r.cap THEN st.s ELSE r.cap END ELSE 0.0 END)"
            " AS ub, MAX(st.t_ref) AS t_max FROM score_state st JOIN r ON r.rule_id = st.rule_id GROUP BY st.contact_id)"
            f" SELECT e.contact_id, {model.weight_fit!r} * {normal('c.fit_raw', fit)} + {model.weight_engagement!r} * {normal('e.ub', eng)}"
            " AS bound, e.t_max FROM e JOIN contacts c ON c.id = e.contact_id"
            f" UNION ALL SELECT c.id, {model.weight_fit!r} * {normal('c.fit_raw', fit)}, NULL FROM contacts c"
            " WHERE NOT EXISTS (SELECT 1 FROM score_state st WHERE st.contact_id = c.id)"
        )
        writer.execute(f"CREATE UNIQUE INDEX {BOUND_TABLE}_contact ON {BOUND_TABLE} (contact_id)")
        writer.execute(f"CREATE INDEX {BOUND_TABLE}_bound ON {BOUND_TABLE} (bound)")
        writer.execute(f"CREATE INDEX IF NOT EXISTS {BOUND_TABLE}_last_event ON contacts (last_event_at)")
        writer.commit()
        rows = int(writer.scalar(f"SELECT COUNT(*) FROM {BOUND_TABLE}"))
    finally:
        writer.close()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def bound_page(url: str, at: float, where: Any, after: Any, limit: int) -> tuple[Any, Any]:
    """``leads_page`` by the proposed design: the contacts with the highest stored bounds (an
    index range, filters of stage and owner joined), scored exactly, widened until the best
    bound left out is below the page's last score; then cut exactly as ``leads_page`` does."""
    import polars as pl

    from leadscore.core import vectorized
    from leadscore.services import scoring
    from leadscore.services.models import load_published_model
    from leadscore.store.bulk import BulkSession

    model = load_published_model(url)
    sql, parameters = _candidates_sql(model, at, where)
    wanted = limit + 1  # one more than the page: whether a next page exists
    with BulkSession.open_reader(url) as bulk:
        latest = bulk.writer.scalar("SELECT MAX(last_event_at) FROM contacts")  # an index's last entry
        if latest is not None and latest > at:  # a past moment: the bounds hold from the last write on only
            return scoring.leads_page(url, at, where=where, after=after, limit=limit)
        k = 4 * wanted
        while True:
            found = bulk.writer.query(sql, {"contact_id": pl.Int64(), "bound": pl.Float64()}, [*parameters, k + 1])
            taken = found.head(k).get_column("contact_id")
            contacts = bulk.read_contacts(["user_id", "anonymous_id", "email", "fit_raw", "excluded", "last_event_at"], taken)
            state = scoring._state_at(bulk, model, contacts, at, taken)
            scores = vectorized.score_frame(model, contacts.select("contact_id", "fit_raw", "excluded"), state, at)
            frame = contacts.select("contact_id", pl.coalesce("user_id", "anonymous_id").alias("contact"), "email").join(
                scores, on="contact_id")
            if not where.include_excluded:
                frame = frame.filter(~pl.col("excluded"))
            if where.grades:
                frame = frame.filter(pl.col("grade").is_in(list(where.grades)))
            if where.temperatures:
                frame = frame.filter(pl.col("temperature").is_in(list(where.temperatures)))
            ranked = frame.sort(["score", "contact", "contact_id"], descending=[True, False, False])
            if after is not None:
                score, contact, contact_id = after
                ranked = ranked.filter(
                    (pl.col("score") < score)
                    | ((pl.col("score") == score) & (pl.col("contact") > contact))
                    | ((pl.col("score") == score) & (pl.col("contact") == contact) & (pl.col("contact_id") > contact_id)))
            complete = found.height <= k
            if complete or (ranked.height >= wanted
                            and found.item(k, "bound") < ranked.item(wanted - 1, "score") - EPSILON):
                break
            if k >= 256 * wanted:  # the bound does not narrow this query down: rank everything
                return scoring.leads_page(url, at, where=where, after=after, limit=limit)
            k *= 4
        rows = scoring._with_stages(bulk, model, ranked.head(limit))
    if ranked.height <= limit:
        return rows, None
    last = rows.row(rows.height - 1, named=True)
    return rows, (float(last["score"]), str(last["contact"]), int(last["contact_id"]))


def _candidates_sql(model: Any, at: float, where: Any) -> tuple[str, list[Any]]:
    """Contacts by stored bound, highest first (``LIMIT ?`` last); stage and owner filters as in
    ``bulk_qualification.contacts_in``; a state newer than ``at`` makes the bound infinite."""
    conditions: list[str] = []
    parameters: list[Any] = []
    joins = ""
    if not where.include_excluded:
        conditions.append("NOT COALESCE(c.excluded, false)")
    if where.stages or where.owners:
        joins = " LEFT JOIN contact_stages cs ON cs.contact_id = c.id LEFT JOIN owners o ON o.id = cs.owner_id"
    if where.stages:
        marks = ", ".join("CAST(? AS TEXT)" for _ in where.stages)
        if model.lifecycle.first in where.stages:
            conditions.append(f"COALESCE(cs.stage, CAST(? AS TEXT)) IN ({marks})")
            parameters.append(model.lifecycle.first)
        else:
            conditions.append(f"cs.stage IN ({marks})")
        parameters.extend(where.stages)
    if where.owners:
        ids = [int(owner) for owner in where.owners if owner.isdigit()]
        alternatives = [f"o.key IN ({', '.join('CAST(? AS TEXT)' for _ in where.owners)})"]
        parameters.extend(where.owners)
        if ids:
            alternatives.append(f"cs.owner_id IN ({', '.join('CAST(? AS BIGINT)' for _ in ids)})")
            parameters.extend(ids)
        conditions.append(f"({' OR '.join(alternatives)})")
    filtered = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (f"SELECT b.contact_id, b.bound FROM {BOUND_TABLE} b JOIN contacts c ON c.id = b.contact_id{joins}{filtered}"
           " ORDER BY b.bound DESC LIMIT ?")
    return sql, parameters


def _same(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    rows_a, cursor_a = a
    rows_b, cursor_b = b
    return cursor_a == cursor_b and rows_a.columns == rows_b.columns and rows_a.equals(rows_b)


# ------------------------------------------------------------------------------ measures


def measure_page(url: str, at: float, case: str, repeat: int, design: str) -> dict[str, Any]:
    """First and second page of ``leads_page`` (``design`` "current") or of the proposed
    :func:`bound_page` ("bound") for one filter, in a child process."""
    from leadscore.services import scoring

    where = scoring.LeadFilter(**FILTERS[case])

    def page(after: Any = None) -> tuple[Any, Any]:
        if design == "bound":
            return bound_page(url, at, where, after, PAGE)
        return scoring.leads_page(url, at, where=where, after=after, limit=PAGE)

    page()  # warm-up (imports, the parsed model's cache, the page cache)
    first, second, pages = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        one = page()
        first.append(time.perf_counter() - started)
        two = None
        if one[1] is not None:
            started = time.perf_counter()
            two = page(one[1])
            second.append(time.perf_counter() - started)
        pages = [one, two]
    return {
        "rows": pages[0][0].height, "first_page_ms": [round(x * 1000, 1) for x in first],
        "first_page_median_ms": round(statistics.median(first) * 1000, 1),
        "second_page_ms": [round(x * 1000, 1) for x in second],
        "second_page_median_ms": round(statistics.median(second) * 1000, 1) if second else None,
        "pages": [None if p is None else {"rows": p[0].to_dicts(), "cursor": p[1]} for p in pages],
    }


def measure_dashboard(url: str, case: str, repeat: int) -> dict[str, Any]:
    """``GET /leads`` (and its next link) with a signed-in session (a child process)."""
    from fastapi.testclient import TestClient

    from leadscore.api.app import create_app
    from leadscore.services import users
    from leadscore.store.engine import make_engine
    from leadscore.store.uow import UnitOfWork

    email = f"bench-{time.time_ns()}@example.com"
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        users.create_user(uow.connection, email, PASSWORD, "sales", name="Bench")
        uow.commit()
    engine.dispose()
    path = "/leads" + (f"?{QUERY[case]}" if QUERY[case] else "")
    with TestClient(create_app(url), base_url="http://testserver") as client:
        form = client.get("/login", params={"next": "/leads"})
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        signed = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token.group(1), "next": "/leads"},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.status_code
        client.get(path)  # warm-up
        first, second, rows = [], [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            answer = client.get(path)
            first.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.status_code
            rows = answer.text.count('href="/leads/')
            link = re.search(r'<a href="([^"]+)" rel="next">', answer.text)
            if link is not None:
                target = link.group(1).replace("&amp;", "&")
                started = time.perf_counter()
                again = client.get(target)
                second.append(time.perf_counter() - started)
                assert again.status_code == 200, again.status_code
    return {"path": path, "lead_links_on_page": rows, "first_page_ms": [round(s * 1000, 1) for s in first],
            "first_page_median_ms": round(statistics.median(first) * 1000, 1),
            "next_page_median_ms": round(statistics.median(second) * 1000, 1) if second else None}


# ------------------------------------------------------------------------------------ main


def machine() -> dict[str, Any]:
    import sqlite3

    import polars as pl

    return machine_facts.machine(sqlite=sqlite3.sqlite_version, polars=pl.__version__)


def markdown(result: dict[str, Any]) -> str:
    lines = ["| filter | rows | leads_page now: 1st / 2nd page | proposed bound: 1st / 2nd page | equal | GET /leads now: page / next |"
             " peak RSS now / bound / web |", "|---|---|---|---|---|---|---|"]
    for case, now in result["leads_page"].items():
        bound = result["bound_page"][case]
        web = result["dashboard"].get(case)
        web_text = f"{web['first_page_median_ms']} / {web['next_page_median_ms']} ms" if web else "—"
        lines.append(f"| {case} | {now['rows']} | {now['first_page_median_ms']} / {now['second_page_median_ms']} ms |"
                     f" {bound['first_page_median_ms']} / {bound['second_page_median_ms']} ms | {'exact' if bound['equal_to_current'] else ('same order, max diff ' + format(bound['max_abs_diff'], '.1e') if bound['same_order_and_labels'] else 'DIFFERENT')} |"
                     f" {web_text} | {now['peak_rss_mb']} / {bound['peak_rss_mb']} / {web['peak_rss_mb'] if web else '—'} MB |")
    return "\n".join(lines)


def compare(ours: list[Any], theirs: list[Any]) -> dict[str, Any]:
    """Exact equality of the pages, else: same contacts in the same order with the same labels
    and cursors, and the largest difference of a number (polars sums a contact's rules in an
    order that depends on the frame, so the last bit of a sum may differ)."""
    if ours == theirs:
        return {"equal_to_current": True, "same_order_and_labels": True, "max_abs_diff": 0.0}
    same, diff = True, 0.0
    for one, two in zip(ours, theirs, strict=True):
        if (one is None) != (two is None):
            same = False
            continue
        if one is None:
            continue
        rows_one, rows_two = one["rows"], two["rows"]
        same = same and len(rows_one) == len(rows_two) and (one["cursor"] is None) == (two["cursor"] is None)
        for a, b in zip(rows_one, rows_two):
            for key, value in a.items():
                if isinstance(value, float):
                    diff = max(diff, abs(value - b[key]))
                elif value != b[key]:
                    same = False
        if one["cursor"] is not None and two["cursor"] is not None:
            same = same and one["cursor"][1:] == two["cursor"][1:]
            diff = max(diff, abs(one["cursor"][0] - two["cursor"][0]))
    return {"equal_to_current": False, "same_order_and_labels": same, "max_abs_diff": diff}


def _has_bound(path: Path) -> bool:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (BOUND_TABLE,)).fetchone() is not None
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="measured calls of leads_page per case (after a warm-up)")
    parser.add_argument("--web-repeat", type=int, default=1, help="measured GET /leads per case (after a warm-up)")
    parser.add_argument("--db", type=Path, default=Path("/tmp/leadscore-bench-leads/bench.db"))
    parser.add_argument("--fresh", action="store_true", help="regenerate the database even if it is there")
    parser.add_argument("--cases", nargs="*", default=list(FILTERS))
    parser.add_argument("--web-cases", nargs="*", default=["unfiltered", "owner"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark-leads-results.json")
    args = parser.parse_args()
    if ROOT in args.db.resolve().parents:
        parser.error("keep the generated database out of the repository")
    print(f"data: {args.contacts:,} contacts in {args.db}", file=sys.stderr)
    data = build(args.db, args.contacts, args.fresh)
    url = f"sqlite:///{args.db}"
    if args.fresh or not _has_bound(args.db):
        data["bound_table"] = build_bound(url)
    at = time.time()
    result: dict[str, Any] = {"machine": machine(), "data": data, "page_size": PAGE, "repeat": args.repeat,
                              "web_repeat": args.web_repeat, "targets_ms": {"dashboard_page": 300, "leads_list": 100},
                              "leads_page": {}, "bound_page": {}, "dashboard": {}}
    for case in args.cases:
        now = run_isolated(measure_page, url, at, case, args.repeat, "current")
        bound = run_isolated(measure_page, url, at, case, args.repeat, "bound")
        bound.update(compare(now.pop("pages"), bound.pop("pages")))
        result["leads_page"][case], result["bound_page"][case] = now, bound
        print(f"{case}: now {now}\n  bound {bound}", file=sys.stderr)
    for case in args.web_cases:
        result["dashboard"][case] = run_isolated(measure_dashboard, url, case, args.web_repeat)
        print(f"GET /leads {case}: {result['dashboard'][case]}", file=sys.stderr)
    worst = {name: max((r["first_page_median_ms"] for r in result[name].values()), default=None)
             for name in ("leads_page", "bound_page", "dashboard")}
    result["verdict"] = {
        "worst_median_ms": worst,
        "dashboard_under_300_ms": worst["dashboard"] is not None and worst["dashboard"] < 300,
        "leads_page_under_100_ms": worst["leads_page"] is not None and worst["leads_page"] < 100,
        "bound_page_under_100_ms": worst["bound_page"] is not None and worst["bound_page"] < 100,
        "bound_page_equal_to_current": all(r["equal_to_current"] for r in result["bound_page"].values()),
        "bound_page_same_order_and_labels": all(r["same_order_and_labels"] for r in result["bound_page"].values()),
        "bound_page_max_abs_diff": max((r["max_abs_diff"] for r in result["bound_page"].values()), default=None),
    }
    document = json.dumps(result, indent=2)
    args.out.write_text(document + "\n", encoding="utf-8")
    print(document)
    print(markdown(result), file=sys.stderr)


if __name__ == "__main__":
    main()
