"""What the user is told: the one error type, and where notes and warnings go."""

import sys
from collections.abc import Callable

Log = Callable[[str], None]  # receives one line: a choice made, a note, or a `warning: ...`


class ForecastError(Exception):
    """A problem the user can fix; the CLI prints it as one `Error: ...` line and exits 1."""


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr)


def quiet_log(msg: str) -> None:
    pass
