"""Error paths through the CLI: exit 1 and one `Error:` line naming the file and the column or row,
never a traceback; and the odd-but-valid inputs that must simply work."""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DATE_FORMAT, SMALL, Cli, ShellOnLoad, TouchOnLoad, assert_user_error, synthetic_frame, write_csv

from forecast import read
from forecast.config import DataConfig
from forecast.panel import load_panel


def base() -> pd.DataFrame:
    return synthetic_frame(300, columns=("a", "b"))


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, date_format=DATE_FORMAT)


def train(cli: Cli, data: Path, *extra: object):
    return cli("train", "--data", data, "--out", data.parent / "run", *SMALL, *extra)


# ---------------------------------------------------------------- files that are not usable CSVs


def with_nan(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[[40, 41, 90], "b"] = np.nan
    return frame


def with_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame["b"] = frame["b"].astype(object)
    frame.loc[40, "b"] = "n/a?"
    return frame


def with_time(value: str, row: int = 50) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame["date"] = frame["date"].dt.strftime(DATE_FORMAT)
        frame.loc[row, "date"] = value
        return frame

    return change


def mixed_zones(frame: pd.DataFrame) -> pd.DataFrame:
    frame["date"] = [t.strftime(DATE_FORMAT) + ("+02:00" if i >= 100 else "") for i, t in enumerate(frame["date"])]
    return frame


def set_cell(row: int, column: str, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return change


def unsorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[[*range(100), *range(150, 300), *range(100, 150)]]


def duplicate_time(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[60, "date"] = frame.loc[59, "date"]
    return frame


def gaps(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(index=range(100, 110))


FRAME_CASES = {
    # name: (change to the frame, extra CLI args, fragments the error line must hold)
    "time column missing": (lambda f: f.drop(columns="date"), [], ["no time column", "columns: a, b"]),
    "named time column missing": (lambda f: f, ["--set", "data.date_column=when"], ["'when' not found", "date, a, b"]),
    "unparseable time": (with_time("not a date"), [], ["time column 'date'", "line 52", "'not a date'"]),
    "empty time": (with_time(""), [], ["time column 'date'", "line 52"]),
    "mixed time zones": (mixed_zones, [], ["mixes time zones", "line 102"]),
    "target missing": (lambda f: f, ["--target", "zz"], ["column 'zz' not found", "columns: date, a, b"]),
    "feature missing": (lambda f: f, ["--features", "zz"], ["column 'zz' not found", "columns: date, a, b"]),
    "time column as target": (lambda f: f, ["--target", "date"], ["column 'date'", "is the time or id column"]),
    "non-numeric value": (with_text, [], ["column 'b'", "non-numeric value at line 42", "'n/a?'"]),
    "non-numeric target named": (with_text, ["--target", "b"], ["column 'b'", "line 42", "'n/a?'"]),
    "missing values": (with_nan, [], ["3 missing values", "column 'b'", "line 42", "data.fill"]),
    "infinite value": (set_cell(40, "b", np.inf), [], ["column 'b'", "infinite value at line 42"]),
    "unsorted": (unsorted, [], ["not sorted by time", "data.sort"]),
    "duplicate timestamps": (duplicate_time, [], ["duplicate timestamps", "2024-01-03 11:00:00"]),
    "irregular gaps": (
        gaps,
        ["--set", "data.gaps=error"],
        ["irregular time steps", "largest gap 0 days 11:00:00", "after 2024-01-05 03:00:00"],
    ),
    # validation and test take the horizon's rows they need first: 25 rows leave 13 for train
    "too few rows": (lambda f: f.head(25), [], ["train split", "no complete window", "13 rows", "30"]),
    "split larger than the file": (
        lambda f: f,
        ["--set", "data.split={train: 200, val: 50, test: 100}"],
        ["asks for 350 rows", "only 300"],
    ),
}


@pytest.mark.parametrize("case", FRAME_CASES)
def test_bad_data(cli: Cli, tmp_path: Path, case: str) -> None:
    change, extra, fragments = FRAME_CASES[case]
    path = write_csv(tmp_path / "bad.csv", change(base()))
    line = assert_user_error(train(cli, path, *extra), *fragments)
    if "--set" not in extra or "data.split" not in " ".join(map(str, extra)):
        assert "bad.csv" in line  # the file is named
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started


RAW_CASES = {
    "empty file": (b"", ["empty.csv is empty"]),
    "header only": (b"date,a,b\n", ["has a header but no data rows"]),
    "binary file": (bytes(range(256)) * 8, ["not a CSV file", "binary"]),
    "html page": (
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>a, b</body></html>\n",
        ["HTML", "not a CSV file"],
    ),
    "one column": (b"date\n2024-01-01\n2024-01-02\n", ["single column"]),
    "a workbook": (b"PK\x03\x04\x14\x00\x06\x00", ["is a spreadsheet workbook", "save its sheet as CSV"]),
    "notes with a comma above the header": (
        b"Retail sales, monthly\nSource: a statistics office\ndate,a\n2024-01-01,1\n",
        ["starts with 2 line(s) of notes ('Retail sales, monthly')", "the columns begin at line 3"],
    ),
    "one column of decimal commas": (b"y\n0,5\n1,5\n", ["single column"]),
    "two blank names holding values": (b"date,,a,\n2024-01-01,1,2,3\n", ["more than one column without a name"]),
    "notes above the header": (
        b"Monthly sales\nSource: a statistics office\n\ndate,a\n2024-01-01,1\n",
        ["starts with 3 line(s) of notes ('Monthly sales')", "the columns begin at line 4"],
    ),
    "duplicate column names": (b"date,a,a\n2024-01-01,1,2\n", ["duplicate column names: a"]),
}


@pytest.mark.parametrize("case", RAW_CASES)
def test_unreadable_files(cli: Cli, tmp_path: Path, case: str) -> None:
    content, fragments = RAW_CASES[case]
    path = tmp_path / {"empty file": "empty.csv", "a workbook": "book.xlsx"}.get(case, "bad.csv")
    path.write_bytes(content)
    line = assert_user_error(train(cli, path), *fragments)
    assert path.name in line


def test_missing_file(cli: Cli, tmp_path: Path) -> None:
    assert_user_error(train(cli, tmp_path / "nope.csv"), "data file", "nope.csv", "not found")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--horizon", "-1"], ["model.horizon must be >= 0, got -1"]),  # 0: chosen from the data
        (["--lookback", "-3"], ["model.lookback must be >= 0, got -3"]),
        (["--epochs", "0"], ["train.epochs must be > 0"]),
        (["--lr", "nan"], ["train.lr must be a finite number"]),
        (["--seed", str(2**64)], ["train.seed", "64 bits"]),
        (["--target", "a", "--target", "a"], ["data.target names 'a' more than once"]),
        (["--target", "a", "--features", "a"], ["both data.target and data.features"]),
        (["--set", "data.split.train=0.9"], ["fractions sum to 1.2"]),
        (["--set", "model.hiden_size=3"], ["unknown key 'model.hiden_size'", "hidden_size"]),
        (["--set", "model.cell=rnn"], ["model.cell must be one of gru, lstm, gru_explicit", "'rnn'"]),
        (["--set", "train.epochs=abc"], ["train.epochs must be an integer, got 'abc'"]),
        (["--set", "train.epochs"], ["--set 'train.epochs' needs the form section.key=value"]),
        (["--set", "data.fill=zero"], ["data.fill must be one of none, ffill, interpolate"]),
        (["--device", "tpu"], ["train.device must be one of"]),
    ],
)
def test_bad_settings(cli: Cli, multi_csv: Path, args: list[str], fragments: list[str]) -> None:
    assert_user_error(train(cli, multi_csv, *args), *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("- data\n- model\n", ["must be a mapping of sections", "got a list"]),
        ("", ["is empty"]),
        ("model:\n  lookback: ten\n", ["model.lookback must be an integer, got 'ten'"]),
        ("modle:\n  lookback: 3\n", ["unknown section 'modle'"]),
        ("data: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_bad_config_files(cli: Cli, tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    line = assert_user_error(cli("train", path), *fragments)
    assert "cfg.yaml" in line


def test_data_file_given_as_config(cli: Cli, multi_csv: Path) -> None:
    assert_user_error(cli("train", multi_csv), "looks like a data file", f"--data {multi_csv}")


def test_no_data_path_says_how_to_give_one(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("model:\n  horizon: 6\n")
    assert_user_error(cli("train", tmp_path / "cfg.yaml"), "no data file given", "--data")


def test_out_is_a_file(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("keep")
    assert_user_error(cli("train", "--data", multi_csv, "--out", tmp_path / "afile", *SMALL), "afile", "is a file")
    assert (tmp_path / "afile").read_text() == "keep"


# ---------------------------------------------------------------- odd inputs that must work


def works(cli: Cli, path: Path, *extra: object) -> Path:
    result = train(cli, path, *extra)
    assert result.exit_code == 0, result.output
    assert "Error" not in result.output
    return path.parent / "run"


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        ("utf-8 BOM", lambda text: "\ufeff" + text),
        ("semicolons", lambda text: text.replace(",", ";")),
        ("tabs", lambda text: text.replace(",", "\t")),
        ("windows line ends", lambda text: text.replace("\n", "\r\n")),
        ("a trailing separator", lambda text: text.replace("\n", ",\n")),  # Excel: blank, empty columns
        ("two trailing separators", lambda text: text.replace("\n", ",,\n")),
    ],
)
def test_dialects_work(cli: Cli, tmp_path: Path, name: str, transform: Callable[[str], str]) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(transform(csv_text(base())).encode())
    run = works(cli, path, "--target", "a", "--set", "data.date_column=date")
    assert torch.load(run / "model.pt", weights_only=True)["columns"] == ["a"]


def test_a_trailing_separator_adds_no_column(cli: Cli, tmp_path: Path) -> None:
    # Excel writes `date,a,b,`: the blank, empty column is neither the default target nor missing values
    path = tmp_path / "data.csv"
    path.write_text(csv_text(base()).replace("\n", ",\n"))
    run = works(cli, path)
    assert torch.load(run / "model.pt", weights_only=True)["columns"] == ["b"]


def test_a_trailing_separator_in_a_long_file_adds_no_column(tmp_path: Path) -> None:
    frame = pd.concat([base().assign(store=k) for k in ("s0", "s1")])[["store", "date", "a"]]
    path = tmp_path / "long.csv"
    path.write_text(
        "\n" + frame.to_csv(index=False, date_format=DATE_FORMAT).replace("\n", ",\n")
    )  # a blank first line too
    panel = load_panel(DataConfig(path=str(path), id_column="store"))
    assert panel.columns == ["a"] and panel.ids == ["s0", "s1"]
    np.testing.assert_allclose(panel.values[:, 0], frame["a"].to_numpy())


def test_decimal_commas_read_as_the_numbers_they_are(tmp_path: Path) -> None:
    # a spreadsheet export from much of Europe: ';' between columns, ',' before the decimals and
    # '.' between thousands (b is in the thousands: 1.234,567)
    frame = base()
    frame["a"], frame["b"] = frame["a"].round(4), (frame["b"] * 1000 + 5000).round(3)
    eu = frame.assign(
        a=frame["a"].map(lambda v: f"{v:.4f}".replace(".", ",")),
        b=frame["b"].map(lambda v: f"{v:,.3f}".replace(",", " ").replace(".", ",").replace(" ", ".")),
    )
    assert eu["b"].str.contains(r"\.\d{3},").all()
    path = tmp_path / "eu.csv"
    path.write_text(eu.to_csv(index=False, sep=";", date_format=DATE_FORMAT))
    got = load_panel(DataConfig(path=str(path), target=["a", "b"])).values
    np.testing.assert_allclose(got, frame[["a", "b"]].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["3,25", "1.234,5", "", "-0,5"], [3.25, 1234.5, np.nan, -0.5]),
        (["3,2", "4,0"], [3.2, 4.0]),
        (["3.25", "1234.5"], [3.25, 1234.5]),
        (["3,527", "1,250"], [np.nan, np.nan]),  # a decimal comma or a thousands one: not guessed
        (["3,25", "3.5"], [np.nan, 3.5]),  # two conventions in one column: not guessed
        (["12.573", "12.100", "1,5"], [12.573, 12.1, np.nan]),  # one stray comma does not make 12573
        (["12,57", "-", "3,5"], [12.57, np.nan, 3.5]),  # a bad cell is left for its line to be named
        (["1,234.5", "3,527", "12.5"], [1234.5, 3527.0, 12.5]),  # thousands commas, settled by 1,234.5
        (["1,234,567", "3,527"], [1234567.0, 3527.0]),  # settled by two comma groups
        (["1,234.5", "3,25"], [np.nan, 3.25]),  # two conventions: the odd one out is named
        (["5.2%", "4%", ""], [5.2, 4.0, np.nan]),  # percent, kept in percent
        (["5,2%", "4,75%"], [5.2, 4.75]),
    ],
)
def test_text_numbers(cells: list[str], expected: list[float]) -> None:
    values, _ = read.text_numbers(pd.Series(cells, dtype=object))
    np.testing.assert_array_equal(values.to_numpy(dtype=float), expected)


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_missing_values_filled(cli: Cli, tmp_path: Path, fill: str) -> None:
    run = works(cli, write_csv(tmp_path / "nan.csv", with_nan(base())), "--set", f"data.fill={fill}")
    cli.ok("predict", run, "--backtest")
    assert np.isfinite(pd.read_csv(run / "predictions.csv")[["y_pred", "y_true"]].to_numpy()).all()


def test_constant_series_trains(cli: Cli, tmp_path: Path) -> None:
    run = works(cli, write_csv(tmp_path / "const.csv", set_cell(slice(None), "b", 3.0)(base())))
    cli.ok("predict", run)
    # every input is 3 (0 after subtracting the last value): two epochs leave only a small bias
    np.testing.assert_allclose(pd.read_csv(run / "forecast.csv")["y_pred"], 3.0, atol=0.5)
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(np.isfinite(m["mae"]) for m in metrics["models"].values())


def test_huge_values_work(cli: Cli, tmp_path: Path) -> None:
    frame = base()
    frame["b"] *= 1e30
    run = works(cli, write_csv(tmp_path / "huge.csv", frame))
    cli.ok("predict", run)
    pred = pd.read_csv(run / "forecast.csv")["y_pred"]
    assert np.isfinite(pred).all() and pred.abs().min() > 1e29
    assert all(np.isfinite(m["mse_z"]) for m in json.loads((run / "metrics.json").read_text())["models"].values())


def test_sort_true_fixes_unsorted(cli: Cli, tmp_path: Path) -> None:
    run = works(cli, write_csv(tmp_path / "unsorted.csv", unsorted(base())), "--set", "data.sort=true")
    (tmp_path / "sorted").mkdir()
    in_order = works(cli, write_csv(tmp_path / "sorted" / "sorted.csv", base()))
    # sorted as it is read: the run is the one the rows in time order give
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["last_timestamp"] == str(base()["date"].max())
    scores = json.loads((run / "metrics.json").read_text())["models"]
    expected = json.loads((in_order / "metrics.json").read_text())["models"]
    assert scores["model"]["mae"] == pytest.approx(expected["model"]["mae"], rel=1e-6)
    assert scores["repeat_last"] == pytest.approx(expected["repeat_last"], rel=1e-9)


@pytest.mark.filterwarnings("default:.*irregular time steps:UserWarning")  # the CLI shows it, then goes on
def test_gaps_warn_by_default(cli: Cli, tmp_path: Path) -> None:
    before = warnings.showwarning
    result = train(cli, write_csv(tmp_path / "gaps.csv", gaps(base())))
    assert result.exit_code == 0, result.output
    assert warnings.showwarning is before  # the CLI's one-line warnings end with the command
    # (a baseline may also be named in a warning of its own: only the gap warning is counted)
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:") and "time steps" in line]
    assert len(warning) == 1 and "largest gap 0 days 11:00:00" in warning[0] and "gaps.csv" in warning[0]
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["freq"] == "h"


def test_daylight_saving_offsets_work(cli: Cli, tmp_path: Path) -> None:
    frame = base()
    local = pd.date_range("2024-03-25", periods=len(frame), freq="h", tz="UTC").tz_convert("Europe/Berlin")
    frame["date"] = [t.isoformat() for t in local]  # +01:00, then +02:00 from March 31st
    run = works(cli, write_csv(tmp_path / "dst.csv", frame))
    assert torch.load(run / "model.pt", weights_only=True)["freq"] == "h"


# ---------------------------------------------------------------- predict / evaluate with other data


@pytest.mark.parametrize("command", [["predict"], ["predict", "--backtest"], ["evaluate"]])
def test_other_data_with_different_columns(cli: Cli, run_copy: Path, tmp_path: Path, command: list[str]) -> None:
    other = write_csv(tmp_path / "other.csv", synthetic_frame(columns=("a", "zz")))
    assert_user_error(cli(*command, run_copy, "--data", other), "other.csv", "'c'", "columns: date, a, zz")


@pytest.mark.parametrize("command", [["predict"], ["evaluate"]])
def test_other_data_with_a_different_frequency(cli: Cli, run_copy: Path, tmp_path: Path, command: list[str]) -> None:
    other = write_csv(tmp_path / "daily.csv", synthetic_frame(columns=("a", "b", "c"), freq="D"))
    assert_user_error(cli(*command, run_copy, "--data", other), "daily.csv", "'D'", "'h'")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["predict", "--backtest", "--split", "holdout"], ["--split", "'holdout'"]),
        (["predict", "--coverage", "1.5"], ["--coverage", "1.5"]),
        (["evaluate", "--split", "all"], ["--split", "'all'"]),
        (["predict", "--split", "val"], ["--split", "--backtest"]),  # a plain forecast has no split
    ],
)
def test_bad_choices_are_usage_errors(cli: Cli, run_copy: Path, args: list[str], fragments: list[str]) -> None:
    result = cli(args[0], run_copy, *args[1:])
    assert result.exit_code == 2, result.output  # a usage error, as for any bad flag
    assert "Traceback" not in result.output and result.stdout == ""
    assert all(fragment in result.stderr for fragment in fragments), result.stderr


def test_bad_flags_of_predict_and_evaluate(cli: Cli, run_copy: Path) -> None:
    assert_user_error(cli("predict", run_copy, "--out", run_copy), "is a folder")
    assert_user_error(cli("plot", run_copy, "--out", run_copy / "model.pt"), "model.pt is a file")


def test_predict_never_writes_over_a_file_it_did_not_write(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "recent.csv", synthetic_frame(n=340, columns=("a", "b", "c")))
    kept = {path: path.read_bytes() for path in (data, run_copy / "model.pt")}
    for path in kept:  # the input, and the run's checkpoint
        result = cli("predict", run_copy, "--data", data, "--out", path)
        assert_user_error(result, str(path), "not a file that forecast predict wrote")
    assert all(path.read_bytes() == before for path, before in kept.items())
    out = tmp_path / "forecast-copy.csv"
    cli.ok("predict", run_copy, "--out", out)
    cli.ok("predict", run_copy, "--backtest", "--out", out)  # its own output is replaced, the way it was written
    assert "y_true" in pd.read_csv(out).columns


# ---------------------------------------------------------------- broken run directories


def test_missing_run_directory(cli: Cli, tmp_path: Path) -> None:
    for command in ("predict", "evaluate", "plot", "info"):
        assert_user_error(cli(command, tmp_path / "nope"), "run directory", "nope", "not found")
    data = write_csv(tmp_path / "sales.csv", synthetic_frame(n=50, columns=("y",)))  # the data, given for the run
    assert_user_error(cli("predict", data), "sales.csv", "is a file, not a run directory")
    assert_user_error(cli("train", "--resume", data), "sales.csv", "is a file, not a run directory")


def test_run_directory_without_model(cli: Cli, run_copy: Path) -> None:
    (run_copy / "model.pt").unlink()
    assert_user_error(cli("predict", run_copy), "model.pt", "not found")


def corrupt(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def foreign_tensor(path: Path) -> None:
    torch.save(torch.zeros(3), path)


def future_format(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["format_version"] = 999
    torch.save(ckpt, path)


def other_config(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["model"]["hidden_size"] = 5  # no longer matches the weights
    torch.save(ckpt, path)


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (corrupt, ["not a readable checkpoint", "truncated or corrupt"]),
        (lambda p: p.write_bytes(b"garbage" * 100), ["not a readable checkpoint"]),
        (foreign_tensor, ["not a forecast checkpoint"]),
        (lambda p: torch.save({"weights": torch.ones(2)}, p), ["missing format_version"]),
        (future_format, ["format 999", "upgrade forecast"]),
        (other_config, ["does not match its own config"]),
    ],
)
@pytest.mark.parametrize("command", ["predict", "info"])
def test_damaged_model_file(cli: Cli, run_copy: Path, damage, fragments: list[str], command: str) -> None:
    damage(run_copy / "model.pt")
    assert_user_error(cli(command, run_copy), "model.pt", *fragments)


@pytest.mark.parametrize("evil", [TouchOnLoad, ShellOnLoad])
@pytest.mark.parametrize("command", ["predict", "evaluate", "plot", "info"])
def test_malicious_model_file_runs_no_code(cli: Cli, run_copy: Path, tmp_path: Path, evil: type, command: str) -> None:
    marker = tmp_path / "PWNED"
    ckpt = torch.load(run_copy / "model.pt", weights_only=True)
    torch.save({**ckpt, "config": evil(marker)}, run_copy / "model.pt")
    assert_user_error(cli(command, run_copy), "model.pt", "refused as unsafe")
    assert not marker.exists()


def test_plain_pickle_model_file_runs_no_code(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with open(run_copy / "model.pt", "wb") as f:
        pickle.dump(ShellOnLoad(marker), f, protocol=4)
    assert_user_error(cli("info", run_copy), "model.pt")
    assert not marker.exists()


def test_resume_errors(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    assert_user_error(cli("train", "--resume", tmp_path / "nope"), "run directory", "nope", "not found")
    assert_user_error(cli("train", "--resume", tmp_path), "no config.yaml")
    assert_user_error(cli("train", "--resume", run_copy), "no state.pt to resume from")
    # flags that would change the saved config are refused, not silently ignored
    assert_user_error(cli("train", "--resume", run_copy, "--epochs", "50"), "--resume", "drop --epochs")


@pytest.mark.parametrize(
    ("horizon", "fragments"),
    [
        (150, ["the horizon (150) is too long", "validation and test take 150 rows each", "(300 rows)"]),
        (100, ["train split", "has 100 rows", "after validation and test took 100 rows (the horizon) each"]),
    ],
)
def test_too_long_a_horizon_is_named_as_the_cause(cli: Cli, tmp_path: Path, horizon: int, fragments: list[str]) -> None:
    data = write_csv(tmp_path / "d.csv", synthetic_frame(n=300, columns=("y",)))
    result = cli("train", "--data", data, "--out", tmp_path / "run", *SMALL[:2], "--horizon", horizon, *SMALL[4:])
    assert_user_error(result, *fragments)


def test_one_row_count_in_the_split_says_to_give_all_three(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    result = cli("train", "--data", multi_csv, "--out", tmp_path / "run", *SMALL, "--set", "data.split.train=200")
    assert_user_error(result, "mixes fractions and row counts", "--set data.split.val=")
