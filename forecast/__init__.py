"""forecast: train GRU forecasters on time series in CSV files, and use them.

The Python API (`forecast.fit`, `forecast.load`, `forecast.Config`) is imported on first use,
so that `forecast --help` stays instant.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("fit", "load", "Config", "Run", "api"):
        import importlib

        api = importlib.import_module("forecast.api")  # `from forecast import api` would come back here
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'forecast' has no attribute {name!r}")
