"""Recent samples of each queue's stats, and the small SVG chart drawn from them.

The API keeps no history, so the console samples a queue's ``stats`` each time its page is
rendered (the page refreshes itself every few seconds) and keeps the last samples in this
process's memory: at most one sample a second, ``SAMPLES`` per queue, ``QUEUES`` queues (the
least recently viewed are forgotten). A restarted server, or another node, starts afresh.
Samples are only drawn on a page that has just read the queue through the API, so a caller
who may not read the queue never sees them.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

SAMPLES = 120
QUEUES = 1000
MIN_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Unix time of the sample."""
    dispatched_last_minute: int
    tasks: int


class History:
    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[Sample]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, queue: str, sample: Sample) -> list[Sample]:
        """Add ``sample`` (unless the last one is less than a second old); the queue's samples."""
        with self._lock:
            samples = self._queues.pop(queue, None)
            if samples is None:
                samples = deque(maxlen=SAMPLES)
            self._queues[queue] = samples
            while len(self._queues) > QUEUES:
                self._queues.popitem(last=False)
            if not samples or sample.at - samples[-1].at >= MIN_INTERVAL_S:
                samples.append(sample)
            return list(samples)


WIDTH, HEIGHT, PAD = 560, 140, 28


def chart(samples: list[Sample]) -> str:
    """An SVG line chart: dispatches per second (the last minute's count / 60) and tasks queued,
    each scaled to its own maximum, over the sampled span."""
    if len(samples) < 2:
        return (
            '<p class="muted" id="chart-empty">The chart fills in as this page refreshes '
            f"({len(samples)} sample so far).</p>"
        )
    start, end = samples[0].at, samples[-1].at
    span = max(end - start, 1.0)
    rates = [s.dispatched_last_minute / 60 for s in samples]
    backlog = [float(s.tasks) for s in samples]

    def line(values: list[float], top: float) -> str:
        top = top or 1.0
        points = []
        for sample, value in zip(samples, values, strict=True):
            x = PAD + (sample.at - start) / span * (WIDTH - 2 * PAD)
            y = HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD)
            points.append(f"{x:.1f},{y:.1f}")
        return " ".join(points)

    top_rate, top_backlog = max(rates), max(backlog)
    label = (
        f"Last {span:.0f} s: dispatch rate up to {top_rate:.2f}/s (now {rates[-1]:.2f}/s), "
        f"backlog up to {top_backlog:.0f} tasks (now {backlog[-1]:.0f})"
    )
    return (
        f'<svg id="chart" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(label)}">'
        f"<title>{html.escape(label)}</title>"
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<polyline points="{line(rates, top_rate)}" fill="none" stroke="#1a73e8" stroke-width="2"/>'
        f'<polyline points="{line(backlog, top_backlog)}" fill="none" stroke="#e8710a" stroke-width="2" '
        'stroke-dasharray="5 3"/>'
        f'<text x="{PAD}" y="16" font-size="12" fill="#1a73e8">dispatches/s (max {top_rate:.2f})</text>'
        f'<text x="{WIDTH - PAD}" y="16" font-size="12" fill="#e8710a" text-anchor="end">'
        f"tasks queued (max {top_backlog:.0f})</text>"
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11" fill="#666">−{span:.0f} s</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" fill="#666" text-anchor="end">now</text>'
        "</svg>"
    )
