"""Job runner: one queue, one worker thread per device. No Qt import here."""
