"""Progress: a live tqdm bar on a terminal or in a notebook, periodic plain lines in a log.

Outside a terminal (a cluster job's log file) a tqdm bar writes a carriage-return update at
every refresh, hundreds of lines for a long run; there ``get_progress_bar`` prints one line
every ``LOG_INTERVAL`` seconds instead, with rate and ETA, and one at the end.
"""
from __future__ import annotations

import math
import sys
import time

__all__ = ["get_progress_bar", "LOG_INTERVAL"]

LOG_INTERVAL = 30.0      # seconds between lines in a log


class _NoBar:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _clock(seconds):
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class LogBar(_NoBar):
    """Plain progress lines for logs: ``desc: n/total (p%), rate unit/s, eta h:mm:ss``.

    Parameters
    ----------
    total : int;  desc, unit : str;  initial : int
    interval : float   seconds between lines (the first after ``interval``)
    stream : file      default sys.stderr
    """

    def __init__(self, total, desc="", unit="it", initial=0, interval=LOG_INTERVAL, stream=None,
                 clock=time.monotonic):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.interval, self.stream, self.clock = interval, stream or sys.stderr, clock
        self.start = self.last = clock()
        self.postfix = ""

    def _line(self):
        elapsed = self.clock() - self.start
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else math.inf
        pct = 100.0 * self.n / self.total if self.total else 100.0
        extra = f" [{self.postfix}]" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} ({pct:.1f}%), {rate:.4g} {self.unit}/s, "
              f"elapsed {_clock(elapsed)}, eta {_clock(eta)}{extra}", file=self.stream, flush=True)

    def update(self, n=1):
        self.n += n
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._line()

    def set_postfix_str(self, s):
        self.postfix = s

    def close(self):
        if self.stream is not None:
            self._line()
            self.stream = None

    def __exit__(self, *exc):
        self.close()
        return False


def _interactive(stream):
    return "ipykernel" in sys.modules or bool(getattr(stream, "isatty", lambda: False)())


def get_progress_bar(display, total, desc="", unit="it", initial=0):
    """Progress over ``total`` steps (from ``initial``): nothing unless ``display``; a tqdm bar
    on a terminal or in a notebook; ``LogBar`` lines every 30 s when stderr is a file."""
    if not display:
        return _NoBar()
    if not _interactive(sys.stderr):
        return LogBar(total, desc, unit, initial)
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.1, initial=initial,
                delay=2.0)
