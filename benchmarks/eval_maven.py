"""Sales-pipeline evaluation on the Maven CRM opportunities (docs/evaluation.md, "Maven CRM
pipeline"): writes docs/evaluation-maven.json.

Data: ``../shared/data/maven_crm_sales_opportunities`` (Maven Analytics teaching data, a
fictitious B2B hardware company): 8,800 opportunities with their *current* stage only
(Prospecting, Engaging, Won, Lost), the engage and close dates, the close value, the sales
agent, the product and the account; side tables for agents (manager, regional office),
products (series, list price) and accounts (sector, ...).

- Joins: agents on ``sales_agent``; products after spelling the pipeline's ``GTXPro`` as the
  product table's ``GTX Pro`` (the only mismatch); accounts on ``account`` (blank on 1,425 open
  deals: reported as ``(blank account)``). The sector ``technolgy`` is spelt ``technology``.
- Win rate: won / (won + lost), closed deals only. Velocity: days from engage date to close
  date of closed deals, median and p90 (linear interpolation, as ``leadscore report stages``),
  apart for won and lost.
- Breakdowns by product, series, sales agent (all 35 of the team table, with or without deals),
  manager, regional office, account sector and engage month; revenue of won deals
  (``close_value``) by each of them.
- Stage conversion: what the snapshot allows (reached Engaging = has an engage date; closed of
  engaged; won of closed) and the age of the open deals at the export date (the last close
  date), since open deals are right-censored.

leadscore's reports (funnel, time in stage) read its own stage history in the database; this
export is not a stage history, so every figure is computed here with polars.

Run: ``.venv/bin/python benchmarks/eval_maven.py`` (about a second).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import machine_facts  # benchmarks/machine_facts.py, beside this script

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "maven_crm_sales_opportunities"
OUT = ROOT / "docs" / "evaluation-maven.json"
BLANK_ACCOUNT = "(blank account)"


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def load(folder: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per opportunity with its agent's team, its product's series and price and its
    account's sector; and what had to be fixed to join them."""
    pipeline = pl.read_csv(folder / "sales_pipeline.csv", try_parse_dates=True)
    teams = pl.read_csv(folder / "sales_teams.csv")
    products = pl.read_csv(folder / "products.csv")
    accounts = pl.read_csv(folder / "accounts.csv")
    fixes = {
        "product_renamed_GTXPro_to_GTX_Pro": int((pipeline["product"] == "GTXPro").sum()),
        "products_unmatched_before_fix": sorted(set(pipeline["product"]) - set(products["product"])),
        "sector_renamed_technolgy_to_technology": int((accounts["sector"] == "technolgy").sum()),
        "blank_account_by_stage": dict(pipeline.filter(pl.col("account").is_null()).group_by("deal_stage").len()
                                       .sort("deal_stage").rows()),
        "agents_in_team_table": teams.height,
        "agents_with_deals": pipeline["sales_agent"].n_unique(),
    }
    frame = (
        pipeline.with_columns(pl.col("product").replace({"GTXPro": "GTX Pro"}))
        .join(teams, on="sales_agent", how="left")
        .join(products, on="product", how="left")
        .join(accounts.select("account", sector=pl.col("sector").replace({"technolgy": "technology"})),
              on="account", how="left")
        .with_columns(
            pl.col("sector").fill_null(pl.when(pl.col("account").is_null()).then(pl.lit(BLANK_ACCOUNT))),
            won=pl.col("deal_stage") == "Won",
            lost=pl.col("deal_stage") == "Lost",
            days=(pl.col("close_date") - pl.col("engage_date")).dt.total_days(),
            engage_month=pl.col("engage_date").dt.strftime("%Y-%m"),
        )
    )
    unmatched = {
        "agent": int(frame["manager"].is_null().sum()),
        "product": int(frame["series"].is_null().sum()),
        "account": int((frame["sector"].is_null()).sum()),
    }
    fixes["unmatched_after_fix"] = unmatched
    return frame, fixes


def _aggregates() -> list[pl.Expr]:
    won_days = pl.col("days").filter("won")
    lost_days = pl.col("days").filter("lost")
    return [
        pl.len().alias("opportunities"),
        (pl.col("deal_stage") == "Prospecting").sum().alias("prospecting"),
        (pl.col("deal_stage") == "Engaging").sum().alias("engaging"),
        pl.col("won").sum().alias("won"),
        pl.col("lost").sum().alias("lost"),
        won_days.median().alias("won_median_days"),
        won_days.quantile(0.9, "linear").alias("won_p90_days"),
        lost_days.median().alias("lost_median_days"),
        lost_days.quantile(0.9, "linear").alias("lost_p90_days"),
        pl.col("close_value").filter("won").sum().alias("won_revenue"),
        pl.col("close_value").filter("won").mean().alias("won_mean_value"),
    ]


def _rows(table: pl.DataFrame, key: str | None) -> list[dict[str, Any]]:
    table = table.with_columns(closed=pl.col("won") + pl.col("lost")).with_columns(
        win_rate=pl.when(pl.col("closed") > 0).then(pl.col("won") / pl.col("closed")),
    )
    out = []
    for row in table.iter_rows(named=True):
        item: dict[str, Any] = {key: row[key]} if key else {}
        item.update({
            "opportunities": row["opportunities"], "prospecting": row["prospecting"], "engaging": row["engaging"],
            "open": row["prospecting"] + row["engaging"], "won": row["won"], "lost": row["lost"],
            "closed": row["closed"], "win_rate": _r(row["win_rate"]),
            "won_days": {"median": _r(row["won_median_days"], 1), "p90": _r(row["won_p90_days"], 1)},
            "lost_days": {"median": _r(row["lost_median_days"], 1), "p90": _r(row["lost_p90_days"], 1)},
            "won_revenue": int(row["won_revenue"] or 0), "won_mean_value": _r(row["won_mean_value"], 1),
        })
        out.append(item)
    return out


def breakdown(frame: pl.DataFrame, key: str, *, extra: list[str] | None = None) -> list[dict[str, Any]]:
    table = frame.group_by(key, *(extra or [])).agg(_aggregates()).sort(
        [pl.col("won") / (pl.col("won") + pl.col("lost")), pl.col(key)], descending=[True, False], nulls_last=True
    )
    rows = _rows(table, key)
    if extra:
        for row, values in zip(rows, table.select(extra).iter_rows(named=True), strict=True):
            row.update(values)
    return rows


def agents(frame: pl.DataFrame, teams: pl.DataFrame) -> list[dict[str, Any]]:
    """Every agent of the team table; the ones without deals with zero counts."""
    per_agent = {row["sales_agent"]: row for row in breakdown(frame, "sales_agent", extra=["manager", "regional_office"])}
    none = {"opportunities": 0, "prospecting": 0, "engaging": 0, "open": 0, "won": 0, "lost": 0, "closed": 0,
            "win_rate": None, "won_days": {"median": None, "p90": None}, "lost_days": {"median": None, "p90": None},
            "won_revenue": 0, "won_mean_value": None}
    out = [per_agent.get(agent) or {"sales_agent": agent, **none, "manager": manager, "regional_office": office}
           for agent, manager, office in teams.iter_rows()]
    out.sort(key=lambda r: (r["win_rate"] is None, -(r["win_rate"] or 0.0), r["sales_agent"]))
    return out


def stage_conversion(frame: pl.DataFrame) -> dict[str, Any]:
    counts = dict(frame.group_by("deal_stage").len().iter_rows())
    engaged = int(frame["engage_date"].is_not_null().sum())
    closed = counts.get("Won", 0) + counts.get("Lost", 0)
    snapshot = frame["close_date"].max()
    open_engaging = frame.filter(pl.col("deal_stage") == "Engaging").select(
        age=(pl.lit(snapshot) - pl.col("engage_date")).dt.total_days()
    )["age"]
    closed_days = frame.filter(pl.col("won") | pl.col("lost"))["days"]
    by_stage_dates = frame.group_by("deal_stage").agg(
        engage_date_filled=pl.col("engage_date").is_not_null().sum(),
        close_date_filled=pl.col("close_date").is_not_null().sum(),
        close_value_filled=pl.col("close_value").is_not_null().sum(),
        close_value_zero=(pl.col("close_value") == 0).sum(),
        account_filled=pl.col("account").is_not_null().sum(),
        rows=pl.len(),
    ).sort("deal_stage")
    return {
        "current_stage": {k: counts.get(k, 0) for k in ("Prospecting", "Engaging", "Won", "Lost")},
        "fields_filled_by_stage": by_stage_dates.to_dicts(),
        "reached_engaging": engaged,
        "reached_engaging_share": _r(engaged / frame.height),
        "closed_of_engaged": _r(closed / engaged),
        "won_of_closed": _r(counts.get("Won", 0) / closed),
        "won_of_engaged": _r(counts.get("Won", 0) / engaged),
        "lost_without_engage_date": int(frame.filter(pl.col("lost") & pl.col("engage_date").is_null()).height),
        "snapshot_date_assumed": str(snapshot),
        "open_engaging_age_days": {
            "median": _r(open_engaging.median(), 1), "p90": _r(open_engaging.quantile(0.9, "linear"), 1),
            "max": _r(open_engaging.max(), 1),
            "older_than_closed_p90": int((open_engaging > closed_days.quantile(0.9, "linear")).sum()),
            "older_than_longest_closed": int((open_engaging > closed_days.max()).sum()),
        },
    }


def evaluate(folder: Path) -> dict[str, Any]:
    frame, fixes = load(folder)
    teams = pl.read_csv(folder / "sales_teams.csv")
    closed = frame.filter(pl.col("won") | pl.col("lost"))
    overall = _rows(frame.select(_aggregates()), None)[0]
    return {
        "data": {
            "folder": "../shared/data/maven_crm_sales_opportunities",
            "opportunities": frame.height,
            "engage_date": [str(frame["engage_date"].min()), str(frame["engage_date"].max())],
            "close_date": [str(frame["close_date"].min()), str(frame["close_date"].max())],
            "fixes": fixes,
        },
        "overall": {
            **overall,
            "closed_days": {"median": _r(closed["days"].median(), 1), "p90": _r(closed["days"].quantile(0.9, "linear"), 1),
                            "min": _r(closed["days"].min(), 1), "max": _r(closed["days"].max(), 1)},
            "engaged_before_2017_03_01": {
                "deals": int(frame.filter(pl.col("engage_date") < pl.date(2017, 3, 1)).height),
                "closed": int(closed.filter(pl.col("engage_date") < pl.date(2017, 3, 1)).height),
            },
            # no deal closes before 2017-03-01, so the deals engaged earlier have long times by construction
            "engaged_from_2017_03_01": _rows(frame.filter(pl.col("engage_date") >= pl.date(2017, 3, 1)).select(_aggregates()),
                                             None)[0],
        },
        "stage_conversion": stage_conversion(frame),
        "by_product": breakdown(frame, "product", extra=["series", "sales_price"]),
        "by_series": breakdown(frame, "series"),
        "by_regional_office": breakdown(frame, "regional_office"),
        "by_manager": breakdown(frame, "manager", extra=["regional_office"]),
        "by_sales_agent": agents(frame, teams),
        "by_sector": breakdown(frame, "sector"),
        "by_engage_month": sorted(breakdown(frame, "engage_month"), key=lambda r: r["engage_month"] or ""),
        "won_value_over_list_price": frame.filter("won").group_by("product").agg(
            median=(pl.col("close_value") / pl.col("sales_price")).median(),
            min=(pl.col("close_value") / pl.col("sales_price")).min(),
            max=(pl.col("close_value") / pl.col("sales_price")).max(),
        ).sort("product").with_columns(pl.col("median", "min", "max").round(4)).to_dicts(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the Maven CRM folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate(args.data)
    document = {
        "command": "python benchmarks/eval_maven.py",
        "machine": machine_facts.machine(polars=pl.__version__),
        "seconds": round(time.perf_counter() - started, 2),
        "maven_crm": result,
    }
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
