"""A one-line progress display on stderr that works in a terminal and in Jupyter.

In a terminal (or a notebook, whose output area honours carriage returns) the line is
redrawn in place with a spinner and the elapsed time; elsewhere (a log file, captured
output) a line is written only when the job's state changes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_SPINNER = "|/-\\"


def _redraws(stream: TextIO) -> bool:
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Callable given to the native ``wait``: ``progress(message, phase, slots, reveals, replicas)``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._redraw = _redraws(self._stream)
        self._start = time.monotonic()
        self._ticks = 0
        self._last = ""
        self._width = 0

    def __call__(self, message: str, phase: str, slots: int, reveals: int, replicas: int) -> None:
        elapsed = time.monotonic() - self._start
        if self._redraw:
            spin = _SPINNER[self._ticks % len(_SPINNER)]
            line = f"{spin} {message} [{elapsed:5.1f}s]"
            pad = " " * max(0, self._width - len(line))
            self._stream.write(f"\r{line}{pad}")
            self._width = len(line)
        elif message != self._last:
            self._stream.write(f"[{elapsed:6.1f}s] {message}\n")
        self._stream.flush()
        self._ticks += 1
        self._last = message

    def close(self, final: str) -> None:
        """Ends the display with ``final`` on its own line."""
        elapsed = time.monotonic() - self._start
        if self._redraw:
            line = f"{final} [{elapsed:.1f}s]"
            self._stream.write("\r" + line + " " * max(0, self._width - len(line)) + "\n")
        else:
            self._stream.write(f"[{elapsed:6.1f}s] {final}\n")
        self._stream.flush()
