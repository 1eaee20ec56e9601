"""The one error type users see."""


class ForecastError(Exception):
    """A problem the user can fix; the CLI prints it as one `Error: ...` line and exits 1."""
