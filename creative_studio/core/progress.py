"""The progress/cancel token handed to every generator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import Cancelled

ProgressListener = Callable[[float, "float | None", Any], None]


class Progress:
    """One job's progress: ``update(fraction, preview)``, ``cancelled``, ``check()``.

    Generators call ``update`` between steps/tokens/tiles and ``check`` wherever stopping
    is safe; ``check`` raises :class:`Cancelled` once the user cancelled the job.
    """

    def __init__(self, listener: ProgressListener | None = None) -> None:
        self._listener = listener
        self._cancel = threading.Event()
        self.started = time.monotonic()
        self.fraction = 0.0
        self.message = ""  # what the job is doing now ("Loading model…"), shown to the user
        # fraction per second of an earlier job on the same model (the runner sets it): the
        # ETA before this job has a pace of its own
        self.prior_rate: float | None = None
        self._first: tuple[float, float] | None = None  # (time, fraction) of the first step
        self._last: tuple[float, float] | None = None

    # -- generator side -------------------------------------------------
    def update(self, fraction: float, preview: Any = None) -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
        if self.fraction > 0.0:
            now = time.monotonic()
            if self._first is None:
                self._first = (now, self.fraction)
            self._last = (now, self.fraction)
        if self._listener is not None:
            self._listener(self.fraction, self.eta(), preview)

    def say(self, message: str) -> None:
        """Tell the user what is happening (no progress change, no preview)."""
        self.message = message
        if self._listener is not None:
            self._listener(self.fraction, self.eta(), None)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    # -- runner side -----------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    def restart_clock(self) -> None:
        self.started = time.monotonic()
        self._first = self._last = None

    def eta(self) -> float | None:
        """Seconds left: from this job's own pace since its first step (loading a model and
        reading a prompt are not steps) once it has done 5 %, else from the pace of an
        earlier job on the same model; None ("estimating…") until either is known."""
        if self._first is not None:
            t0, f0 = self._first
            done, elapsed = self.fraction - f0, time.monotonic() - t0
            if done >= 0.05 and elapsed > 0:
                return max(0.0, elapsed * (1.0 - self.fraction) / done)
        if self.prior_rate:
            return max(0.0, (1.0 - self.fraction) / self.prior_rate)
        return None

    def measured_rate(self) -> float | None:
        """This job's pace (fraction per second from its first step to its last), for the
        next job's estimate."""
        if self._first is None or self._last is None:
            return None
        (t0, f0), (t1, f1) = self._first, self._last
        return (f1 - f0) / (t1 - t0) if f1 - f0 >= 0.05 and t1 > t0 else None


class Part:
    """A share of a job's progress for one piece of it (a tile of several): its fractions
    0…1 land in ``start``…``start + span`` of ``progress``; cancelling and messages are the
    job's own."""

    def __init__(self, progress: Progress, start: float, span: float) -> None:
        self.progress, self.start, self.span = progress, start, span

    def update(self, fraction: float, preview: Any = None) -> None:
        self.progress.update(self.start + self.span * max(0.0, min(1.0, fraction)), preview)

    def say(self, message: str) -> None:
        self.progress.say(message)

    @property
    def fraction(self) -> float:
        return self.progress.fraction

    @property
    def cancelled(self) -> bool:
        return self.progress.cancelled

    def check(self) -> None:
        self.progress.check()
