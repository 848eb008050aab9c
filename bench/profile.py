"""Profile the Homeport server process with py-spy while a workload runs.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;frame count"); the
summary ranks functions by self time (the leaf frame) and by inclusive time (anywhere on
the stack), as shares of all samples taken while the workload ran.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.servers import stop_process


@contextmanager
def pyspy(pid: int, out: Path, idle: bool = False, rate: int = 200) -> Iterator[None]:
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "-o", str(out)]
    cmd += ["--rate", str(rate), "--nonblocking"]
    if idle:
        cmd.append("--idle")
    log = out.with_suffix(".log")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        stop_process(proc, signal.SIGINT, 60)  # py-spy writes its file on SIGINT


_LINE = re.compile(r":\d+\)$")


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f and not f.startswith("process ")]


def summarise(raw: Path, top: int = 15) -> str:
    """Markdown: the top functions by self and by inclusive share of samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for f in {_LINE.sub(")", f) for f in frames}:  # inclusive: per function
            inclusive[f] += count
    if not total:
        return f"{raw.name}: no samples\n"
    lines = [f"#### {raw.stem} ({total} samples)", "", "| self | function (file:line) |"]
    lines.append("| ---: | --- |")
    for f, c in self_time.most_common(top):
        lines.append(f"| {100 * c / total:.1f}% | `{f}` |")
    lines += ["", "| inclusive | function (file) |", "| ---: | --- |"]
    homeport_first = [(f, c) for f, c in inclusive.most_common() if "homeport" in f]
    for f, c in homeport_first[:top]:
        lines.append(f"| {100 * c / total:.1f}% | `{f}` |")
    return "\n".join(lines) + "\n"
