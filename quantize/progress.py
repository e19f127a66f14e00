"""Stage-by-stage progress lines for long host builds (to stderr, so stdout stays clean)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, TextIO

__all__ = ["Progress"]


class Progress:
    """`with progress.stage("Exporting ONNX"):` prints `[2/5] Exporting ONNX ... 1.2 s`.

    Notes added during a stage are printed, indented, under its line once it finishes.
    """

    def __init__(self, total: int, *, stream: Optional[TextIO] = None, quiet: bool = False):
        self.total = total
        self.index = 0
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.timings: Dict[str, float] = {}
        self._notes: List[str] = []
        self._broken = False

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def note(self, text: str) -> None:
        self._notes.append(text)

    def live(self, text: str) -> None:
        """A line printed at once, under the running stage (long stages: the INT8 search)."""
        if not self._broken:
            self._write("\n")
            self._broken = True
        self._write(f"      {text}\n")

    def _flush_notes(self) -> None:
        for text in self._notes:
            self._write(f"      {text}\n")
        self._notes = []

    @contextmanager
    def stage(self, title: str, key: Optional[str] = None) -> Iterator[None]:
        self.index += 1
        self._broken = False
        self._write(f"[{self.index}/{self.total}] {title} ... ")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._write("failed\n")
            self._flush_notes()
            raise
        elapsed = time.perf_counter() - start
        self.timings[key or title] = round(elapsed, 3)
        self._write(f"      done in {elapsed:.1f} s\n" if self._broken else f"{elapsed:.1f} s\n")
        self._flush_notes()
