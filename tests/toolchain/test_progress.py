"""The progress display: a live table on a terminal (ANSI redraw), plain lines otherwise."""

import io
import re
import time
from types import SimpleNamespace

from rewriter.toolchain.progress import LiveProgress, PlainProgress, make_progress


def track(i, stage="queued", started=None, ended=None):
    return SimpleNamespace(
        label=f"[{i}/30]", res=SimpleNamespace(segment=f"hailo_{i}"), stage=stage, started=started, ended=ended
    )


def screen(text: str) -> list:
    """What a terminal shows: apply 'cursor up N lines + clear to end' to the written text."""
    lines = []
    for part in re.split(r"(\x1b\[\d+F\x1b\[J)", text):
        m = re.fullmatch(r"\x1b\[(\d+)F\x1b\[J", part)
        if m:
            del lines[len(lines) - int(m.group(1)) :]
        else:
            lines.extend(part.splitlines())
    return lines


def test_live_table_redraws_in_place_and_keeps_notes(monkeypatch):
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback: SimpleNamespace(lines=40, columns=80))
    out = io.StringIO()
    live = LiveProgress(out, refresh_s=60)
    a, b = track(1), track(2)
    live.add(a)
    live.add(b)
    now = time.monotonic()
    a.stage, a.started = "compile", now - 75
    live.event(a, "compile", "compile (hailo8)...")
    b.stage, b.started, b.ended = "failed", now - 3, now
    live.event(b, "failed", "FAILED at parse: boom")
    live.note("WARNING something")
    live.close()
    shown = screen(out.getvalue())
    assert shown[:2] == ["[2/30] hailo_2: FAILED at parse: boom", "WARNING something"]  # notes stay on top
    assert shown[2].split()[:3] == ["[1/30]", "hailo_1", "compile"] and shown[2].split()[3] in ("1:15", "1:16")
    assert shown[3].split() == ["[2/30]", "hailo_2", "failed", "0:03"]
    assert shown[4].startswith("1 failed, 1 running")
    assert len(shown) == 5
    live.note("after close")  # the summary table printed after close: no redraw
    assert screen(out.getvalue())[-1] == "after close" and len(screen(out.getvalue())) == 6


def test_live_table_fits_a_small_terminal(monkeypatch):
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback: SimpleNamespace(lines=8, columns=30))
    out = io.StringIO()
    live = LiveProgress(out, refresh_s=60)
    tracks = [track(i, "compiled") for i in range(1, 21)]
    tracks[17].stage = "optimize"
    for t in tracks:
        live.add(t)
    live.close()
    shown = screen(out.getvalue())
    assert len(shown) <= 6 and all(len(line) < 30 for line in shown)
    assert shown[0].split()[:3] == ["[18/30]", "hailo_18", "optimize"]  # running rows first
    assert shown[-2].startswith("... ") and shown[-1].startswith("19 compiled, 1 running")


def test_plain_lines_and_no_output():
    lines = []
    plain = make_progress(lines.append)
    assert isinstance(plain, PlainProgress)
    plain.event(track(3), "parse", "parse (start ['a'], end ['b'])...")
    plain.note("table")
    assert lines == ["[3/30] hailo_3: parse (start ['a'], end ['b'])...", "table"]
    make_progress(None).event(track(1), "parse", "nothing printed")
