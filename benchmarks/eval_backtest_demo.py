"""Backtest of the example model on the demo history (docs/evaluation.md, "Backtest of the
example model on the demo history"): writes docs/evaluation-backtest.json and an HTML report.

A fresh SQLite database gets ``examples/b2b-saas.yml`` published and the demo story played into
it (2,000 contacts, 60,000 events, seed 7, 120 days ending 2026-12-01T00:00:00Z: fixed, so the
figures do not depend on the day the script runs). Then, at the cutoff 2026-10-02 (60 days before
the end) with a 45-day window, the example model is backtested for the three outcomes (reached
SQL, opportunity, customer or later) and compared with two variants of itself: fit only
(``combined: {fit: 1.0, engagement: 0.0}``) and engagement only. Last, a predictive score is
trained on the same question (SQL within 45 days of the cutoff) and its figures recorded.

Run: ``.venv/bin/python benchmarks/eval_backtest_demo.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore.analytics import report_html
from leadscore.core.model import parse_model
from leadscore.services import backtest, demo_story, predictive
from leadscore.store.adbc import stdlib_sqlite
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.migrate import upgrade
from leadscore.store.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "b2b-saas.yml"
OUT = ROOT / "docs" / "evaluation-backtest.json"
REPORT = ROOT / "benchmarks" / "out" / "backtest-demo.html"
END = datetime(2026, 12, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 10, 2, tzinfo=UTC).timestamp()
WINDOW = 45 * 86_400.0
WEIGHTS = "combined: {fit: 0.4, engagement: 0.6}"


def variant(text: str, fit: float, engagement: float, label: str) -> backtest.ModelChoice:
    assert WEIGHTS in text
    return backtest.ModelChoice(parse_model(text.replace(WEIGHTS, f"combined: {{fit: {fit}, engagement: {engagement}}}", 1),
                                            source=label), label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", type=Path, default=REPORT)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/demo.db"
        upgrade(url)
        engine = make_engine(url)
        with UnitOfWork(engine) as uow:
            publish_file(uow, MODEL)
            uow.commit()
        engine.dispose()
        story = demo_story.run(url, Path(folder) / "demo", now=END)
        example = backtest.choose_model(url)
        text = MODEL.read_text(encoding="utf-8")
        results: dict[str, Any] = {"demo": {"contacts": story.contacts, "events": story.events, "end": END.isoformat()}}
        for stage in backtest.OUTCOME_STAGES:
            question = backtest.Question(CUTOFF, WINDOW, stage)
            results[stage] = backtest.report_json(backtest.run(url, [example], question))
        question = backtest.Question(CUTOFF, WINDOW, "sql")
        for name, fit, engagement in (("fit_only", 1.0, 0.0), ("engagement_only", 0.0, 1.0)):
            compared = backtest.run(url, [example, variant(text, fit, engagement, name.replace("_", " "))], question)
            results[f"sql_vs_{name}"] = backtest.report_json(compared)
        report_html.write(results["sql_vs_fit_only"], arguments.report)
        # the predictive score on the same question (48 SQL conversions: the floor is lowered to 30)
        training = predictive.Training(window=WINDOW, cutoff=CUTOFF, stage="sql", min_conversions=30)
        with stdlib_sqlite():
            results["predictive_sql"] = predictive.train(url, training, now=END.timestamp(), created_by="evaluation")
    arguments.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    for stage in backtest.OUTCOME_STAGES:
        model = results[stage]["models"][0]
        print(f"{stage}: contacts {model['contacts']}, converted {model['converted']}, AUC {model['auc']:.3f}, "
              f"lift@10% {model['lift_top_decile']:.2f}, MQL precision {model['mql_threshold']['precision']}, "
              f"recall {model['mql_threshold']['recall']}")
    for name in ("fit_only", "engagement_only"):
        other = results[f"sql_vs_{name}"]["models"][1]
        print(f"sql, {name}: AUC {other['auc']:.3f}, lift@10% {other['lift_top_decile']:.2f}")
    model = results["predictive_sql"]
    print(f"predictive (sql): {model['algorithm']}, cross-validated AUC {model['cross_validation']['auc']}, "
          f"held-out AUC {model['held_out']['auc']:.3f} on {model['held_out']['rows']} contacts")
    print(f"wrote {arguments.out} and {arguments.report}")


if __name__ == "__main__":
    main()
