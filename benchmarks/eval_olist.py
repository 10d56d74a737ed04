"""Attribution and funnel evaluation on real and teaching data (docs/evaluation.md, "Olist
marketing funnel"): writes docs/evaluation-olist.json.

- Olist marketing funnel (``../shared/data/olist_marketing_funnel``): 8,000 MQLs (first contact
  date, landing page, origin) and the 842 deals closed from them. Conversion and time to close by
  origin; attribution by origin and by landing page with every model of
  :mod:`leadscore.analytics.attribution` (each MQL has one touch, so the models must coincide —
  checked); lead type, business segment and behaviour profile of the won deals (described, never
  used as predictors: they exist only for won deals).
- Fictional marketing campaigns (``../shared/data/marketing_campaigns_fictional``): ads served
  per user; a user converts on the first day an ad served to them is marked converted; touches
  are the ads served up to that day (same-day ads count, in file order). Every model side by side.

Run: ``.venv/bin/python benchmarks/eval_olist.py`` (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import polars as pl

from leadscore.analytics.attribution import MODELS, attribute, counted_touches

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "evaluation-olist.json"
DAY = 86_400.0


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def olist(folder: Path) -> dict[str, Any]:
    mqls = pl.read_csv(folder / "olist_marketing_qualified_leads_dataset.csv", try_parse_dates=True)
    deals = pl.read_csv(folder / "olist_closed_deals_dataset.csv", try_parse_dates=True, infer_schema_length=None)
    frame = mqls.with_columns(pl.col("origin").fill_null("(blank)")).join(deals, on="mql_id", how="left").with_columns(
        won=pl.col("won_date").is_not_null(),
        days_to_close=(pl.col("won_date") - pl.col("first_contact_date").cast(pl.Datetime("us"))).dt.total_seconds() / DAY,
    )
    by_origin = frame.group_by("origin").agg(
        mqls=pl.len(), deals=pl.col("won").sum(),
        median_days=pl.col("days_to_close").median(), p90_days=pl.col("days_to_close").quantile(0.9, "linear"),
    ).with_columns(conversion=pl.col("deals") / pl.col("mqls")).sort("deals", descending=True)
    closed = frame.filter("won")

    # attribution: one touch per MQL (its origin / landing page at the first contact)
    paths = frame.with_row_index("path_id").select(
        pl.col("path_id").cast(pl.Int64),
        converted_at=pl.when("won").then(pl.col("won_date").dt.epoch("s").cast(pl.Float64)),
        touch_at=pl.col("first_contact_date").cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64),
        origin=pl.col("origin"), landing_page=pl.col("landing_page_id"),
    )
    # a handful of deals are dated a day before the first contact (date vs timestamp): the touch
    # counts at the conversion at the latest
    paths = paths.with_columns(touch_at=pl.min_horizontal("touch_at", pl.coalesce("converted_at", "touch_at")))
    attribution = {}
    for dimension in ("origin", "landing_page"):
        touches = paths.select("path_id", ts=pl.col("touch_at"), value=pl.col(dimension))
        result = attribute(touches, paths.select("path_id", "converted_at"), MODELS)
        credits = result.credits
        spread = max(float((credits.get_column(m) - credits.get_column("first")).abs().max() or 0.0) for m in MODELS)
        rows = [{"value": row["value"], "converting_paths": row["converting_paths"], "paths": row["paths"],
                 **{m: _r(row[m], 3) for m in MODELS}} for row in credits.iter_rows(named=True)]
        top = rows if dimension == "origin" else rows[:10]
        total = sum(r["first"] or 0 for r in rows)
        attribution[dimension] = {
            "conversions": result.conversions, "values": len(rows), "models_max_difference": _r(spread, 9),
            "rows": top, "top10_share_of_deals": _r(sum(r["first"] or 0 for r in rows[:10]) / total) if total else None,
        }

    def shares(column: str, limit: int = 12) -> list[dict[str, Any]]:
        counts = closed.group_by(pl.col(column).fill_null("(blank)")).len().sort(["len", column], descending=[True, False])
        return [{"value": v, "deals": n, "share": _r(n / closed.height)} for v, n in counts.head(limit).iter_rows()]

    return {
        "mqls": mqls.height, "deals": closed.height, "conversion": _r(closed.height / mqls.height),
        "first_contact": [str(mqls["first_contact_date"].min()), str(mqls["first_contact_date"].max())],
        "won": [str(closed["won_date"].min()), str(closed["won_date"].max())],
        "time_to_close_days": {"median": _r(closed["days_to_close"].median(), 2),
                               "p90": _r(closed["days_to_close"].quantile(0.9, "linear"), 2),
                               "negative": int((closed["days_to_close"] < 0).sum())},
        "by_origin": [{"origin": r["origin"], "mqls": r["mqls"], "deals": r["deals"], "conversion": _r(r["conversion"]),
                       "median_days_to_close": _r(r["median_days"], 2), "p90_days_to_close": _r(r["p90_days"], 2)}
                      for r in by_origin.iter_rows(named=True)],
        "attribution": attribution,
        "won_deals": {"lead_type": shares("lead_type"), "business_segment": shares("business_segment"),
                      "lead_behaviour_profile": shares("lead_behaviour_profile", 6)},
    }


def campaigns(path: Path) -> dict[str, Any]:
    served = pl.read_csv(path, try_parse_dates=True).filter(
        pl.col("date_served").is_not_null() & pl.col("marketing_channel").is_not_null()
    ).with_row_index("order")
    users = served.group_by("user_id").agg(
        converted_at=pl.col("date_served").filter(pl.col("converted").fill_null(False)).min()
    ).with_row_index("path_id")
    epoch = pl.col("converted_at").cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64)
    paths = users.select(pl.col("path_id").cast(pl.Int64), converted_at=epoch)
    touches = served.join(users.select("user_id", "path_id"), on="user_id").sort("order").select(
        pl.col("path_id").cast(pl.Int64), ts=pl.col("date_served").cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64),
        value=pl.col("marketing_channel"),
    )
    result = attribute(touches, paths, MODELS, half_life=7 * DAY)
    counted = counted_touches(touches, paths).filter("converted")
    lengths = counted.group_by("path_id").agg(pl.col("n").first(), channels=pl.col("value").n_unique())
    return {
        "rows_used": served.height, "users": paths.height, "converting_users": result.conversions + result.unattributed,
        "conversions": result.conversions, "unattributed": result.unattributed,
        "converting_paths_with_several_touches": _r(float((lengths["n"] > 1).mean() or 0.0)),
        "converting_paths_with_several_channels": _r(float((lengths["channels"] > 1).mean() or 0.0)),
        "touches_per_converting_path": _r(float(lengths["n"].mean() or 0.0), 3),
        "markov_conversion_probability": _r(result.conversion_probability),
        "removal_effects": {k: _r(v) for k, v in sorted((result.removal_effects or {}).items())},
        "rows": [{"channel": row["value"], "touches": row["touches"], "converting_paths": row["converting_paths"],
                  **{m: _r(row[m], 2) for m in MODELS}} for row in result.credits.iter_rows(named=True)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    document = {
        "command": "python benchmarks/eval_olist.py",
        "olist_marketing_funnel": olist(args.data / "olist_marketing_funnel"),
        "marketing_campaigns_fictional": campaigns(args.data / "marketing_campaigns_fictional" / "marketing.csv"),
    }
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
