"""Progress of a long run, chunk by chunk, on stderr (issue 20: a full run of millions of lines
was silent for minutes after "full run: 25 chunks").

    progress = Progress.start(total_chunks, total_lines)   # total_lines: None when unknown
    progress.chunk(lines)                                   # as each chunk lands
    progress.done()

On a terminal it draws one bar line, redrawn in place; anywhere else (a log
file, journald, a CronJob's output) it writes one log record per chunk through
`logging`, with the figures as structured fields — so `--log-format json` turns
each into a JSON line. The CLI picks the mode (`configure`), since only it knows
where stderr goes and which log format was asked for; a library caller that
configures nothing gets log records. A run of one chunk reports nothing: it is
not a long run, and its summary says it all.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
BAR_WIDTH = 24
_bar_stream: IO[str] | None = None  # set by `configure`: where bars go (None: log records)


def configure(bar: bool, stream: IO[str] | None = None) -> None:
    """Bars (on `stream`, default stderr) when `bar`, else one log record per chunk."""
    global _bar_stream
    _bar_stream = (stream or sys.stderr) if bar else None


def wants_bar(log_format: str, stream: IO[str] | None = None) -> bool:
    """A bar only for people: stderr is a terminal and the logs are text."""
    stream = stream or sys.stderr
    return log_format == "text" and bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Chunks landed so far, lines, rate and ETA of one run."""

    def __init__(self, total_chunks: int, total_lines: int | None, label: str, stream: IO[str] | None):
        self.total_chunks, self.total_lines, self.label, self.stream = total_chunks, total_lines, label, stream
        self.chunks = self.lines = 0
        self.started = time.perf_counter()
        self.quiet = total_chunks < 2
        self.finished = False

    @classmethod
    def start(cls, total_chunks: int, total_lines: int | None = None, label: str = "full run") -> Progress:
        return cls(total_chunks, total_lines, label, _bar_stream)

    def chunk(self, lines: int) -> None:
        """One more chunk of `lines` invoice lines has landed."""
        self.chunks += 1
        self.lines += lines
        if self.quiet:
            return
        if self.stream is not None:
            self.stream.write("\r" + self.bar() + "\x1b[K")
            self.stream.flush()
            return
        log.info("%s: chunk %d/%d, %s lines (%d in this chunk), %s lines/s, ETA %s", self.label, self.chunks,
                 self.total_chunks, f"{self.lines:,}", lines, f"{self.rate():,.0f}", _clock(self.eta()),
                 extra={"fields": self.fields(lines)})  # fmt: skip

    def done(self) -> None:
        """The last chunk has landed (or the run stopped): end the bar's line."""
        if self.finished or self.quiet:
            return
        self.finished = True
        if self.stream is not None:
            self.stream.write("\r" + self.bar() + "\x1b[K\n")
            self.stream.flush()

    def track(self, items: Iterable[T], lines: Callable[[T], int]) -> Iterator[T]:
        """`items` unchanged, reporting each as a chunk of `lines(item)` lines as it is taken."""
        try:
            for item in items:
                self.chunk(lines(item))
                yield item
        finally:
            self.done()

    # -- figures -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def rate(self) -> float:
        return self.lines / self.elapsed()

    def eta(self) -> float | None:
        """Seconds left: by lines when the total is known, else by chunks; None before any chunk."""
        if self.total_lines and self.lines:
            return max(self.total_lines - self.lines, 0) / self.rate()
        if self.chunks:
            return self.elapsed() / self.chunks * max(self.total_chunks - self.chunks, 0)
        return None

    def fields(self, chunk_lines: int) -> dict:
        eta = self.eta()
        return {"event": "progress", "chunk": self.chunks, "chunks": self.total_chunks, "chunk_lines": chunk_lines,
                "lines": self.lines, "total_lines": self.total_lines, "lines_per_second": round(self.rate(), 1),
                "elapsed_seconds": round(self.elapsed(), 3), "eta_seconds": None if eta is None else round(eta, 1)}  # fmt: skip

    def bar(self) -> str:
        share = self.lines / self.total_lines if self.total_lines else self.chunks / max(self.total_chunks, 1)
        filled = min(int(share * BAR_WIDTH), BAR_WIDTH)
        total = f"/{self.total_lines:,}" if self.total_lines else ""
        return (f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.chunks}/{self.total_chunks} chunks"
                f"  {self.lines:,}{total} lines  {self.rate():,.0f} lines/s  ETA {_clock(self.eta())}")  # fmt: skip


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
