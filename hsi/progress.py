"""One rule for progress output, shared by the command line and the Python API: a tqdm bar only when stderr is a
terminal; into a file or a pipe, plain log lines (``"log"``) instead of bar redraws."""
from __future__ import annotations

import sys


def progress_mode(progress: bool | str) -> bool | str:
    """``progress`` as it applies here: True (a bar) becomes ``"log"`` (plain lines) when stderr is no terminal."""
    if progress is True and not _stderr_is_a_terminal():
        return "log"
    return progress


def shows_bar(progress: bool | str) -> bool:
    """Whether a tqdm bar is drawn: asked for (True) and stderr is a terminal."""
    return progress_mode(progress) is True


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):        # replaced by an object without isatty, or closed
        return False
