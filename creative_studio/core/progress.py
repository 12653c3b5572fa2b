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

    # -- generator side -------------------------------------------------
    def update(self, fraction: float, preview: Any = None) -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
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

    def eta(self) -> float | None:
        """Seconds left, from the pace so far; None until there is a pace."""
        if self.fraction <= 0.0:
            return None
        elapsed = time.monotonic() - self.started
        return max(0.0, elapsed * (1.0 - self.fraction) / self.fraction)
