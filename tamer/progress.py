"""A dependency-free progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.last_tenth = 0

    def update(self, status: str = "", n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        filled = int(20 * self.done / self.total)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} "
            f"{elapsed:.0f}s<{eta:.0f}s {status}"
        )
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif (tenth := 10 * self.done // self.total) > self.last_tenth or self.done == self.total:
            self.last_tenth = tenth
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
