"""forecast: train GRU forecasters on time series in CSV files, and use them."""

__version__ = "0.1.0"
