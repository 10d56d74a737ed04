"""`leadscore train` end to end on the real X Education leads (../shared/data): a real process,
the JSON contract of DESIGN.md, and AUCs in a sane range with and without the sales-filled
columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared_data import shared_data

SALES_FILLED = ("Tags,Lead Quality,Lead Profile,Asymmetrique Activity Index,Asymmetrique Profile Index,"
                "Asymmetrique Activity Score,Asymmetrique Profile Score,Last Activity,Last Notable Activity")


def leads_file() -> Path:
    return shared_data("x_education_leads", "Leads.csv")


def train(*args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "leadscore", "train", "--data", str(leads_file()), "--target", "Converted",
         "--missing", "Select", "--format", "json", *args],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_on_x_education_without_the_sales_filled_columns(tmp_path: Path) -> None:
    document = train("--exclude", SALES_FILLED, "--model", "logistic", "--save", str(tmp_path / "model"))
    for key in ("auc", "n_train", "n_test", "split", "lift_top_decile", "brier"):
        assert key in document, key
    assert document["n_train"] == 7392 and document["n_test"] == 1848
    assert document["split"] == "stratified random 80/20, seed 42"
    assert 0.83 <= document["auc"] <= 0.93  # type: ignore[operator]
    assert document["lift_top_decile"] > 2.0  # type: ignore[operator]
    assert document["excluded"] == SALES_FILLED.split(",")
    assert (tmp_path / "model" / "logistic.skops").is_file() and (tmp_path / "model" / "card.json").is_file()


def test_train_on_x_education_with_every_column() -> None:
    document = train("--model", "boosting")
    assert document["auc"] >= 0.95  # type: ignore[operator]
    ranked = list(document["univariate_auc"])  # type: ignore[arg-type]
    assert ranked[0] == "Tags"  # the sales-filled status ranks the outcome best on its own
