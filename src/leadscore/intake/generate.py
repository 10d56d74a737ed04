"""Deterministic synthetic B2B data: contacts with their companies, and their activity.

Everything is drawn from a numpy ``Generator`` seeded by the caller, vectorially, so the same
seed gives byte-identical files and 100,000 contacts with 2,000,000 events take seconds.

Contacts work at companies (a few large accounts, many small ones); a quarter use a free
e-mail address. Activity is skewed the way marketing data is: most contacts do little, a
minority do most of it, and demo requests and meetings come mostly from decision makers at
target companies (so a scoring model has something to find). About one event in ten comes from
an anonymous visitor. A few percent of user agents are bots or e-mail privacy proxies, and a
share of e-mail opens are flagged ``properties.machine_activity = true``.

Command line (benchmark data)::

    python -m leadscore.intake.generate --contacts 100000 --events 2000000 --out DIR --format csv
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from leadscore.intake import vocabulary as vocab
from leadscore.intake.jsonbuild import KeyTree, object_column, with_objects

DEMO_DAYS = 120
"""Days of activity before ``now`` in the demo data."""


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], size: int) -> np.ndarray:
    """Indices into ``options`` drawn with their weights."""
    weights = np.array([weight for _, weight in options], dtype=float)
    return rng.choice(len(options), size=size, p=weights / weights.sum())


def _labels(options: tuple[tuple[str, float], ...] | tuple[str, ...], indices: np.ndarray) -> pl.Series:
    """The option names at ``indices`` (gathered by polars, not through Python objects)."""
    names = [option[0] if isinstance(option, tuple) else option for option in options]
    return pl.Series(names, dtype=pl.String).gather(pl.Series(indices, dtype=pl.Int64))


def generate_accounts(n: int, *, seed: int) -> pl.DataFrame:
    """``n`` companies: ``account.id/name/domain/industry/employees/country`` columns."""
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(n)
    prefixes, suffixes = len(vocab.COMPANY_PREFIXES), len(vocab.COMPANY_SUFFIXES)
    prefix, suffix, generation = order % prefixes, (order // prefixes) % suffixes, order // (prefixes * suffixes)
    country = _pick(rng, vocab.COUNTRIES, n)
    employees = np.clip(np.round(rng.lognormal(mean=4.3, sigma=1.6, size=n)), 2, 80_000).astype(np.int64)
    frame = pl.DataFrame(
        {
            "p": _labels(vocab.COMPANY_PREFIXES, prefix),
            "s": _labels(vocab.COMPANY_SUFFIXES, suffix),
            "g": generation,
            "tld": _labels(tuple(vocab.COUNTRY_TLD[c] for c, _ in vocab.COUNTRIES), country),
        }
    )
    number = pl.when(pl.col("g") > 0).then((pl.col("g") + 1).cast(pl.String)).otherwise(pl.lit(""))
    return frame.select(
        pl.format("acc-{}", pl.int_range(1, n + 1)).alias("account.id"),
        pl.concat_str([pl.col("p"), pl.lit(" "), pl.col("s"), pl.when(pl.col("g") > 0).then(pl.lit(" ") + number).otherwise(pl.lit(""))]).alias("account.name"),
        (pl.col("p") + pl.col("s")).str.to_lowercase().str.replace_all(r"[^a-z0-9]", "").add(number).add(pl.lit(".")).add(pl.col("tld")).alias("account.domain"),
        _labels(vocab.INDUSTRIES, _pick(rng, vocab.INDUSTRIES, n)).alias("account.industry"),
        pl.Series(employees).alias("account.employees"),
        _labels(vocab.COUNTRIES, country).alias("account.country"),
    )


def generate_contacts(n: int, *, seed: int) -> pl.DataFrame:
    """``n`` contacts in the contacts CSV shape (``userId``, ``traits.*``, ``account.*``)."""
    rng = np.random.default_rng([seed, 2])
    accounts = generate_accounts(max(1, n // 4), seed=seed)
    account_of = np.minimum((accounts.height * rng.random(n) ** 2.2).astype(np.int64), accounts.height - 1)
    first = rng.integers(0, len(vocab.FIRST_NAMES), n)
    last = rng.integers(0, len(vocab.LAST_NAMES), n)
    free_mail = rng.random(n) < 0.25
    people = pl.DataFrame(
        {
            "userId": [f"u-{i}" for i in range(1, n + 1)],
            "first": _labels(vocab.FIRST_NAMES, first),
            "last": _labels(vocab.LAST_NAMES, last),
            "free": free_mail,
            "free_domain": _labels(vocab.FREE_EMAIL_DOMAINS, rng.integers(0, len(vocab.FREE_EMAIL_DOMAINS), n)),
            "title": _labels(vocab.TITLES, _pick(rng, vocab.TITLES, n)),
        }
    ).hstack(accounts[account_of])
    full_name = pl.concat_str([pl.col("first"), pl.lit("."), pl.col("last")]).str.to_lowercase()
    local = full_name.str.normalize("NFKD").str.replace_all(r"[^a-z.]", "")
    domain = pl.when(pl.col("free")).then(pl.col("free_domain")).otherwise(pl.col("account.domain"))
    email = pl.concat_str([local, pl.lit("@"), domain])
    duplicate = pl.int_range(pl.len()).over(email)
    email = pl.when(duplicate > 0).then(pl.concat_str([local, duplicate.cast(pl.String), pl.lit("@"), domain])).otherwise(email)
    return people.select(
        "userId",
        email.alias("traits.email"),
        pl.col("first").alias("traits.first_name"),
        pl.col("last").alias("traits.last_name"),
        pl.col("title").alias("traits.title"),
        pl.col("^account\\..*$"),
    )


def _hex_ids(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` uuid-like hex ids (8-4-4-4-12) from the generator, built as bytes by numpy."""
    digits = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)
    hex_digits = digits[rng.integers(0, 256, size=(n, 16), dtype=np.uint8)].view(np.uint8).reshape(n, 32)
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for source, target, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        text[:, target : target + width] = hex_digits[:, source : source + width]
    fixed = pa.Array.from_buffers(pa.binary(36), n, [None, pa.py_buffer(text)])
    return pl.Series("messageId", fixed.cast(pa.binary()).cast(pa.string()))


def _intent(contacts: pl.DataFrame) -> np.ndarray:
    """How likely each contact is to ask for a demo: decision makers at target companies most."""
    title = contacts.get_column("traits.title").str.contains(r"(?i)\b(ceo|cto|vp|head|director|directeur)\b")
    industry = contacts.get_column("account.industry").is_in(["software", "fintech"])
    employees = contacts.get_column("account.employees").cast(pl.Int64)
    mid_market = (employees >= 50) & (employees <= 1000)
    return (0.2 + 1.5 * title.to_numpy() + 1.0 * industry.to_numpy() + 1.0 * mid_market.to_numpy()).astype(float)


def generate_events(
    contacts_df: pl.DataFrame, n_events: int, *, seed: int, start: datetime, end: datetime
) -> pl.DataFrame:
    """``n_events`` events in the events CSV shape, between ``start`` and ``end``, in time order."""
    rng = np.random.default_rng([seed, 3])
    n_contacts = contacts_df.height
    activity = rng.lognormal(mean=0.0, sigma=1.4, size=n_contacts)
    kind = _pick(rng, vocab.EVENT_MIX, n_events)
    names = [name for name, _ in vocab.EVENT_MIX]
    conversion = np.isin(kind, [names.index("Demo Requested"), names.index("Meeting Booked")])
    weights = activity / activity.sum()
    # who asks for a demo depends on fit, hardly on how busy they are: spread over many leads
    intent_weights = np.sqrt(activity) * _intent(contacts_df) ** 2
    who = rng.choice(n_contacts, size=n_events, p=weights)
    who[conversion] = rng.choice(n_contacts, size=int(conversion.sum()), p=intent_weights / intent_weights.sum())
    anonymous = (kind == names.index("page")) & (rng.random(n_events) < 0.25)
    visitors = max(1, n_contacts // 2)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    ts = np.sort(rng.integers(start_ms, end_ms, size=n_events))
    page = _pick(rng, vocab.PAGES, n_events)
    campaign = _pick(rng, vocab.CAMPAIGNS, n_events)
    agent = _pick(rng, vocab.USER_AGENTS, n_events)
    is_email = np.isin(kind, [names.index(n) for n in ("Email Opened", "Email Link Clicked", "Unsubscribed")])
    proxy_open = (kind == names.index("Email Opened")) & (rng.random(n_events) < 0.06)
    frame = pl.DataFrame(
        {
            "kind": _labels(vocab.EVENT_MIX, kind),
            "userId": contacts_df.get_column("userId").cast(pl.String).gather(pl.Series(who, dtype=pl.Int64)),
            "anon": anonymous,
            "visitor": rng.integers(0, visitors, n_events),
            "messageId": _hex_ids(rng, n_events),
            "ts": ts,
            "path": _labels(vocab.PAGES, page),
            "campaign": campaign,
            "agent": _labels(vocab.USER_AGENTS, agent),
            "email": is_email,
            "proxy": proxy_open,
            "position": rng.integers(5, 300, n_events),
            "team": rng.random(n_events) < 0.85,
        }
    )
    is_page = pl.col("kind") == "page"
    email_campaign = len(vocab.CAMPAIGN_TAGS)  # the newsletter tag, listed last
    tag = (
        pl.when(pl.col("email"))
        .then(pl.lit(email_campaign))
        .when(is_page & (pl.col("campaign") < email_campaign))
        .then(pl.col("campaign"))
        .otherwise(-1)
    )

    def campaign_part(part: int) -> pl.Expr:
        tags = (*vocab.CAMPAIGN_TAGS, vocab.EMAIL_CAMPAIGN)
        return tag.replace_strict({i: t[part] for i, t in enumerate(tags)}, default=None, return_dtype=pl.String)

    return frame.select(
        pl.when(is_page).then(pl.lit("page")).otherwise(pl.lit("track")).alias("type"),
        pl.when(~is_page).then(pl.col("kind")).alias("event"),
        pl.when(pl.col("anon")).then(None).otherwise(pl.col("userId")).alias("userId"),
        pl.when(pl.col("anon")).then(pl.format("anon-{}", pl.col("visitor"))).alias("anonymousId"),
        "messageId",
        pl.from_epoch("ts", time_unit="ms").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ").alias("timestamp"),
        pl.when(is_page).then(pl.col("path")).alias("properties.path"),
        pl.when(is_page).then(pl.col("path").replace_strict(dict(vocab.PAGE_TITLES), default="leadscore")).alias("properties.title"),
        pl.when(pl.col("proxy")).then(pl.lit("true")).alias("properties.machine_activity"),
        pl.when(pl.col("kind") == "Video Playback Completed").then(pl.col("position").cast(pl.String)).alias("properties.position"),
        pl.when(pl.col("kind") == "Meeting Booked")
        .then(pl.when(pl.col("team")).then(pl.lit("sales")).otherwise(pl.lit("support")))
        .alias("properties.team"),
        campaign_part(0).alias("context.campaign.source"),
        campaign_part(1).alias("context.campaign.medium"),
        campaign_part(2).alias("context.campaign.name"),
        pl.when(pl.col("proxy")).then(pl.lit(vocab.PROXY_AGENT)).otherwise(pl.col("agent")).alias("context.userAgent"),
    )


def write_demo(
    directory: str | Path, *, contacts: int = 2_000, events: int = 60_000, seed: int = 7, now: datetime
) -> tuple[Path, Path]:
    """Write ``contacts.csv`` and ``events.csv`` (the last 120 days before ``now``) for ``make run``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    people = generate_contacts(contacts, seed=seed)
    activity = generate_events(people, events, seed=seed, start=now - timedelta(days=DEMO_DAYS), end=now)
    contacts_path, events_path = out / "contacts.csv", out / "events.csv"
    people.write_csv(contacts_path)
    activity.write_csv(events_path)
    return contacts_path, events_path


def write_frame(frame: pl.DataFrame, path: Path, fmt: str, *, message_type: str | None = None) -> None:
    """Write a dotted-column frame as CSV, Parquet, or JSON lines of nested Segment messages."""
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        tree: KeyTree = {}
        for column in frame.columns:
            node = tree
            *parents, leaf = column.split(".")
            for key in parents:
                child = node.setdefault(key, {})
                assert isinstance(child, dict)
                node = child
            node[leaf] = column
        typed = frame.with_columns(pl.col(pl.Int64).cast(pl.String))
        if message_type is not None:
            typed = typed.with_columns(pl.lit(message_type).alias("type"))
            tree = {"type": "type", **tree}
        lines = with_objects(typed, {"message": tree}).select(pl.col(object_column("message")))
        lines.write_csv(
            path, include_header=False, quote_style="never"
        )


def main(argv: list[str] | None = None) -> int:
    """Write benchmark data: ``contacts.<fmt>`` and ``events.<fmt>`` in ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m leadscore.intake.generate",
        description="Deterministic synthetic B2B contacts and events. "
        "Example: python -m leadscore.intake.generate --contacts 100000 --events 2000000 --out bench/",
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", default="2026-01-01T00:00:00+00:00", help="end of the activity period (ISO 8601)")
    parser.add_argument("--days", type=int, default=365, help="length of the activity period in days")
    args = parser.parse_args(argv)
    end = datetime.fromisoformat(args.end)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    people = generate_contacts(args.contacts, seed=args.seed)
    activity = generate_events(people, args.events, seed=args.seed, start=end - timedelta(days=args.days), end=end)
    write_frame(people, args.out / f"contacts.{args.format}", args.format, message_type="identify")
    write_frame(activity, args.out / f"events.{args.format}", args.format)
    print(args.out / f"contacts.{args.format}")
    print(args.out / f"events.{args.format}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
