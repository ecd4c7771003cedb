"""Progress of a compile for people: a small live table on a terminal, plain lines otherwise.

The driver calls `add(track)` when a segment is scheduled, `event(track, stage, message)` when it
moves on (stage None: a message only, e.g. a warning) and `close()` at the end. A track has
`label`, `res` (its SegmentResult), `stage`, `started` and `ended` (time.monotonic() or None).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time

RUNNING = ("prepare", "parse", "optimize", "compile", "write")
WAITING = ("queued", "pending")
FINAL = ("compiled", "cached", "done", "failed", "retiled")


class PlainProgress:
    """One line per event: `[2/5] hailo_2: optimize (1100 calib windows)...`."""

    def __init__(self, write=print):
        self.write = write
        self._lock = threading.Lock()

    def add(self, track) -> None:
        pass

    def event(self, track, stage, message: str) -> None:
        with self._lock:
            self.write(f"{track.label} {track.res.segment}: {message}")

    def note(self, text: str) -> None:
        with self._lock:
            self.write(text)

    def close(self) -> None:
        pass


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class LiveProgress:
    """A table redrawn in place (ANSI cursor moves): segment, stage, elapsed; one totals line.
    Warnings and failures are printed above it and stay on screen."""

    def __init__(self, stream=None, refresh_s: float = 0.5):
        self.stream = stream or sys.stdout
        self.tracks: list = []
        self._drawn = 0
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(refresh_s,), daemon=True, name="progress")
        self._ticker.start()

    def _tick(self, refresh_s: float) -> None:
        while not self._stop.wait(refresh_s):
            with self._lock:
                self._redraw()

    def add(self, track) -> None:
        with self._lock:
            self.tracks.append(track)
            self._redraw()

    def event(self, track, stage, message: str) -> None:
        with self._lock:
            if stage is None or stage == "failed":
                self._print(f"{track.label} {track.res.segment}: {message}")
            self._redraw()

    def note(self, text: str) -> None:
        with self._lock:
            self._print(text)
            self._redraw()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        with self._lock:
            self._redraw()
            self._drawn = 0  # leave the last table on screen
            self._closed = True

    def _print(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _row(self, t, now: float, widths: tuple) -> str:
        elapsed = "-" if t.started is None else _clock((t.ended or now) - t.started)
        return f"{t.label:<{widths[0]}} {t.res.segment:<{widths[1]}}  {t.stage:<9} {elapsed:>7}"

    def _redraw(self) -> None:
        if self._closed:
            return
        now = time.monotonic()
        rows = self.tracks
        size = shutil.get_terminal_size((100, 24))
        height = max(5, size.lines - 2)
        if len(rows) + 1 > height:  # too many: running first, then failures, then the rest
            order = {**{s: 0 for s in RUNNING}, "failed": 1, "queued": 2, "pending": 3}
            rows = sorted(rows, key=lambda t: order.get(t.stage, 4))[: height - 2]
        widths = (
            max((len(t.label) for t in self.tracks), default=0),
            max((len(t.res.segment) for t in self.tracks), default=0),
        )
        lines = [self._row(t, now, widths) for t in rows]
        if len(rows) < len(self.tracks):
            lines.append(f"... {len(self.tracks) - len(rows)} more")
        counts = {}
        for t in self.tracks:
            key = t.stage if t.stage in FINAL + WAITING else "running"
            counts[key] = counts.get(key, 0) + 1
        order = ("compiled", "cached", "done", "retiled", "failed", "running", "queued", "pending")
        lines.append(", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)) + f"  [{_clock(now - self._t0)}]")
        self._clear()  # a wrapped line would break the cursor-up count: cut to the width
        self.stream.write("".join(line[: size.columns - 1] + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)


def make_progress(progress):
    """None -> no output; an object with .event -> itself; a callable -> plain lines through it."""
    if progress is None:
        return PlainProgress(lambda line: None)
    if hasattr(progress, "event"):
        return progress
    return PlainProgress(progress)
