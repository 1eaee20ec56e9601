"""Every acceptance threshold of the speed benchmarks, and the pass/fail table they make of a report."""

from __future__ import annotations

from typing import Any

GB = 10**9

# same weights, same outputs: forecast's model computes the tutorial's arithmetic (throughput check)
SAME_OUTPUTS_MAX_ABS_DIFF = 1e-5
# forecast's loop at batch 32 trains at least as many windows/s as the tutorial's at batch 32
FORECAST_B32_VS_TUTORIAL_B32_MIN = 1.0
# forecast at its default batch size is this many times faster than the tutorial at batch 32
FORECAST_DEFAULT_BATCH_VS_TUTORIAL_B32_MIN = 2.5
# after equal epochs forecast's test MSE (norm none) is within 10% of the tutorial's, or better
ACCURACY_MSE_RATIO_MAX = 1.10
# training on a long series never materializes windows: the peak RSS stays under this
TRAIN_LONG_SERIES_PEAK_RSS_MAX_BYTES = 2 * GB
# `forecast --help` answers within this many seconds (no heavy imports at start-up)
HELP_LATENCY_MAX_S = 0.5
# `forecast predict RUN_DIR` on ETTh1, on CPU, within this many seconds
PREDICT_LATENCY_MAX_S = 3.0
# (and the streaming backtest's peak RSS grows less than its materialized windows would: a rule, no number)


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the sections in `result`: what it asks, the figure, and whether it passes."""
    t: dict[str, dict[str, Any]] = {}

    def add(name: str, target: str, value: float, ok: bool) -> None:
        t[name] = {"target": target, "value": value, "pass": bool(ok)}

    tp = result.get("throughput")
    if tp:
        default_b = tp["forecast_default_batch_size"]
        r32 = tp["ratio_vs_tutorial_b32"]["forecast_b32"]
        rdef = tp["ratio_vs_tutorial_b32"][f"forecast_b{default_b}"]
        low, high = FORECAST_B32_VS_TUTORIAL_B32_MIN, FORECAST_DEFAULT_BATCH_VS_TUTORIAL_B32_MIN
        add("cpu_forecast_b32_vs_tutorial_b32", f">= {low}", r32, r32 >= low)
        add(f"cpu_forecast_default_batch_b{default_b}_vs_tutorial_b32", f">= {high}", rdef, rdef >= high)
        rdrop = tp["ratio_vs_tutorial_b32"].get(f"forecast_shipped_dropout_b{default_b}")
        if rdrop is not None:  # the same with the shipped dropout
            name = f"cpu_forecast_default_batch_shipped_dropout_b{default_b}_vs_tutorial_b32"
            add(name, f">= {high}", rdrop, rdrop >= high)
    acc = result.get("accuracy")
    if acc:
        r = acc["ratio_mse_forecast_norm_none_vs_tutorial"]
        most = ACCURACY_MSE_RATIO_MAX
        text = f"<= {most:.2f} (forecast's loop, norm none, test MSE within 10% of the tutorial's, or better)"
        add("accuracy_equal_epochs_mse_ratio", text, r, r <= most)
    mem = result.get("memory")
    if mem:
        peak, most = mem["train_long_series"]["peak_rss_bytes"], TRAIN_LONG_SERIES_PEAK_RSS_MAX_BYTES
        add("train_long_series_peak_rss_bytes", f"< {most // GB} GB ({most} bytes)", peak, peak < most)
        bt = mem["backtest"]
        add(
            "backtest_peak_rss_growth_bytes",
            "< the growth of materialized windows (memory bounded: O(T) data, not O(T x lookback) windows)",
            bt["peak_rss_growth_bytes"],
            bt["peak_rss_growth_bytes"] < bt["materialized_windows_growth_bytes"],
        )
    lat = result.get("latency")
    if lat:
        h, p = lat["help"]["median_s"], lat["predict"]["median_s"]
        add("help_latency_s", f"< {HELP_LATENCY_MAX_S}", h, h < HELP_LATENCY_MAX_S)
        add("predict_latency_s", f"< {PREDICT_LATENCY_MAX_S} (CPU)", p, p < PREDICT_LATENCY_MAX_S)
    return t
