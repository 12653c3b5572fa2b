"""Reference for bench/startup.py: a bare PySide6 main window, timed to its first paint."""

import time

_STARTED = time.perf_counter()

import sys  # noqa: E402

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMainWindow  # noqa: E402


class Window(QMainWindow):
    painted = False

    def paintEvent(self, event):  # noqa: N802
        super().paintEvent(event)
        if not self.painted:
            self.painted = True
            print(f"FIRST_PAINT {time.perf_counter() - _STARTED:.4f}", flush=True)
            QTimer.singleShot(0, self.close)


app = QApplication(sys.argv)
window = Window()
window.resize(1280, 820)
window.show()
app.exec()
