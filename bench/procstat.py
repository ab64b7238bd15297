"""CPU time and memory of a process tree, read from /proc (Linux), sampled in a thread."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class TreeUsage:
    """One reading of a process tree."""

    at: float  # time.monotonic()
    cpu_seconds: float  # user+sys of live processes, plus reaped children of the root
    rss_bytes: int  # sum of RSS over the tree (shared pages counted once per process)
    pss_bytes: int  # sum of PSS (shared pages split between sharers); 0 if unreadable
    processes: int


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text()
            kids.extend(int(child) for child in text.split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def tree(pid: int) -> list[int]:
    """pid and all its descendants that are alive now."""
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(_children(current))
    return pids


def _cpu(pid: int, *, include_reaped: bool) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    ticks = utime + stime + (cutime + cstime if include_reaped else 0)
    return ticks / _TICKS


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def read_tree(pid: int, *, with_pss: bool = True) -> TreeUsage:
    """Read CPU and memory of pid's tree right now."""
    cpu = 0.0
    rss = pss = count = 0
    for member in tree(pid):
        try:
            cpu += _cpu(member, include_reaped=member == pid)
            rss += _rss(member)
            if with_pss:
                pss += _pss(member)
            count += 1
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue  # exited between listing and reading
    return TreeUsage(
        at=time.monotonic(), cpu_seconds=cpu, rss_bytes=rss, pss_bytes=pss, processes=count
    )


def cpu_by_process(pid: int) -> dict[int, tuple[str, float]]:
    """{pid: (command line, user+sys seconds)} for each live process in pid's tree."""
    out: dict[int, tuple[str, float]] = {}
    for member in tree(pid):
        try:
            raw = Path(f"/proc/{member}/cmdline").read_bytes()
            command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            out[member] = (command, _cpu(member, include_reaped=False))
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return out


@dataclass(slots=True)
class TreeSampler:
    """Samples a process tree every `interval` seconds in a background thread."""

    pid: int
    interval: float = 0.1
    samples: list[TreeUsage] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            usage = read_tree(self.pid)
            if usage.processes:
                self.samples.append(usage)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def window(self, start: float, end: float) -> list[TreeUsage]:
        """Samples taken between two time.monotonic() readings."""
        return [s for s in self.samples if start <= s.at <= end]

    @property
    def peak_rss(self) -> int:
        return max((s.rss_bytes for s in self.samples), default=0)

    @property
    def peak_pss(self) -> int:
        return max((s.pss_bytes for s in self.samples), default=0)
