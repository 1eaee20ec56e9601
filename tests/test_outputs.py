"""What a run writes is what a reader gets: metrics.json that any JSON reader parses, and plots
that draw the files `predict` wrote."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Cli, synthetic_frame, write_csv


def refuse_constant(name: str) -> None:
    raise AssertionError(f"metrics.json holds {name}, which is not JSON")


def test_metrics_json_writes_undefined_scores_as_null(cli: Cli, tmp_path: Path) -> None:
    frame = synthetic_frame(n=300, columns=("y",))
    frame.loc[240:, "y"] = 0.0  # every test actual is zero: MAPE is undefined
    csv = write_csv(tmp_path / "zeros.csv", frame)
    run = tmp_path / "run"
    cli.train(csv, run)
    metrics = json.loads((run / "metrics.json").read_text(), parse_constant=refuse_constant)
    assert metrics["models"]["model"]["mape"] is None
    assert isinstance(metrics["models"]["model"]["mae"], float)
    info = cli.ok("info", run).stdout  # the table reads the nulls back
    assert "mse_z" in info
