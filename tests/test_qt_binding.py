"""Guards against Qt binding releases that break the studio."""

import sys
import threading


def test_signal_emit_keeps_reference_counts(qapp):
    """PySide6 6.12.0 dropped a reference to True on every Signal.emit(): the process aborted
    after ~570 emits (job progress, streaming tokens). pyproject excludes that release."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        fired = Signal()

    emitter = Emitter()
    emitter.fired.connect(lambda: None)
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.fired.emit()
    thread = threading.Thread(target=lambda: [emitter.fired.emit() for _ in range(200)])
    thread.start()
    thread.join()
    assert abs(sys.getrefcount(True) - before) < 50
