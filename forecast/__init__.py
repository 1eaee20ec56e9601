"""forecast: train GRU forecasters on time series in CSV files, and use them.

The Python API (`forecast.fit`, `forecast.load`, `forecast.Config`) is imported on first use,
so that `forecast --help` stays instant.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("fit", "load", "Config", "Run"):
        from forecast import api

        return getattr(api, name)
    raise AttributeError(f"module 'forecast' has no attribute {name!r}")
